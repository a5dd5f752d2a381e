import numpy as np
import pytest
import sklearn.metrics

from hepnn.plotting import plot_latent, plot_reconstruction_error


def test_reconstruction_error_distributions_and_auc():
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    err = rng.exponential(1.0 + 2.0 * y)
    res = plot_reconstruction_error(err, y, class_names=["QCD", "top"], bins=20)
    assert len(res.artists) == 2
    assert res.ax.get_xscale() == "log"
    assert res.hists["top"].sum().value == 200
    assert res.auc == pytest.approx(sklearn.metrics.roc_auc_score(y, err))
    with pytest.raises(ValueError, match="log_x"):
        plot_reconstruction_error(err - 10, y)


def test_latent_pca_and_2d():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 5)) * [5, 2, 1, 1, 1]
    y = np.arange(300) % 3
    res = plot_latent(z, y, max_points=120)
    assert len(res.artists) == 3
    assert sum(len(a.get_offsets()) for a in res.artists.values()) == 120
    assert res.explained_variance[0] > res.explained_variance[1]
    assert res.ax.get_xlabel() == "PC 1"
    res = plot_latent(z[:, :2], y)
    assert res.explained_variance is None
    np.testing.assert_array_equal(res.projection, z[:, :2])


@pytest.mark.parametrize("log_x", [True, False])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_reconstruction_error_refuses_non_finite_errors(log_x, bad):
    """Before the fix: 'input sequence must be strictly ascending' or 'forward transform ... invalid'."""
    with pytest.raises(ValueError, match="errors: received 1 non-finite"):
        plot_reconstruction_error(np.array([1.0, bad, 2.0, 3.0]), [0, 1, 0, 1], log_x=log_x)


def test_reconstruction_auc_one_vs_rest_with_ties():
    rng = np.random.default_rng(61)
    y = rng.integers(0, 3, 300)
    err = np.round(rng.exponential(1.0 + (y == 2)), 1) + 0.1
    res = plot_reconstruction_error(err, y, anomaly=2, bins=10)
    ss, sb = err[y == 2], err[y != 2]
    ref = ((ss[:, None] > sb[None, :]) + 0.5 * (ss[:, None] == sb[None, :])).mean()
    assert res.auc == pytest.approx(ref, rel=1e-12)
    assert sum(h.sum().value for h in res.hists.values()) == 300  # the largest error is in the last bin
