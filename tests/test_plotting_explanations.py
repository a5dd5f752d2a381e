import numpy as np
import pytest

from hepnn.plotting import plot_beeswarm, plot_importance, plot_position_importance


def test_beeswarm_orders_by_mean_abs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    values = x * np.array([0.1, 3.0, 1.0, 2.0])
    res = plot_beeswarm(values, x, ["a", "b", "c", "d"], max_display=3)
    assert res.order == ["b", "d", "c"]
    assert len(res.artists) == 3
    assert [t.get_text() for t in res.ax.get_yticklabels()] == ["c", "d", "b"]
    np.testing.assert_allclose(res.artists[0].get_offsets()[:, 0], values[:, 1])
    assert res.importance["b"] == pytest.approx(np.mean(np.abs(values[:, 1])))


def test_importance_bars():
    values = np.array([[1.0, -4.0, 0.5], [-1.0, 2.0, 0.5]])
    res = plot_importance(values, ["pt", "eta", "mass"])
    assert res.order == ["eta", "pt", "mass"]
    assert [p.get_width() for p in res.artists] == [0.5, 1.0, 3.0]


def test_position_importance():
    values = np.zeros((10, 4, 2))
    values[:, 0] = 1.5
    values[:, 1, 0] = -1.0
    res = plot_position_importance(values)
    assert [p.get_height() for p in res.artists] == [0.75, 0.25, 0.0, 0.0]
    res = plot_position_importance(values[..., 0], normalize=False)
    assert res.importance["0"] == 1.5
