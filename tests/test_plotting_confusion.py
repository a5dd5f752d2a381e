import numpy as np
import pytest
import sklearn.metrics

from hepnn.plotting import confusion_matrix, plot_confusion_matrix


def test_confusion_matrix_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    proba = rng.dirichlet([1, 1, 1], 200)
    proba[np.arange(200), y] += 0.3
    pred = proba.argmax(axis=1)
    for norm in (None, "true", "pred", "all"):
        np.testing.assert_allclose(
            confusion_matrix(y, proba, normalize=norm), sklearn.metrics.confusion_matrix(y, pred, normalize=norm)
        )
    res = plot_confusion_matrix(y, proba, class_names=["q", "W", "t"])
    assert len(res.texts) == 9
    assert res.texts[0].get_text() == f"{res.matrix[0, 0]:.2f}"
    assert [t.get_text() for t in res.ax.get_xticklabels()] == ["q", "W", "t"]
    assert res.ax.get_ylabel() == "True class"


def test_weighted_matrix_matches_hand_count_and_refuses_nan():
    rng = np.random.default_rng(51)
    y = rng.integers(0, 4, 300)
    y[y == 3] = 0  # class 3 has no jets
    proba = rng.dirichlet([1, 1, 1, 1], 300)
    w = rng.uniform(0.5, 2.0, 300)
    pred = proba.argmax(axis=1)
    ref = np.zeros((4, 4))
    np.add.at(ref, (y, pred), w)
    res = plot_confusion_matrix(y, proba, class_names=["q", "g", "W", "t"], weights=w, normalize=None)
    np.testing.assert_allclose(res.matrix, ref, rtol=1e-12)
    rows = ref.sum(axis=1, keepdims=True)
    norm = confusion_matrix(y, proba, weights=w, normalize="true")
    np.testing.assert_allclose(norm, np.divide(ref, rows, out=np.zeros_like(ref), where=rows > 0), rtol=1e-12)
    assert norm[3].tolist() == [0.0, 0.0, 0.0, 0.0]
    proba[5, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        plot_confusion_matrix(y, proba)
    with pytest.raises(ValueError, match="outside"):  # 4 names, but a jet of class 4
        plot_confusion_matrix(np.r_[y[:-1], 4], proba.argmax(axis=1), class_names=["q", "g", "W", "t"])
