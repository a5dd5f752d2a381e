import numpy as np
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
