import numpy as np
import scipy.stats

from hepnn.plotting import plot_scores


def test_overtraining_ks_matches_scipy():
    rng = np.random.default_rng(1)
    y_tr, y_te = rng.integers(0, 2, 800), rng.integers(0, 2, 600)
    s_tr = np.clip(rng.normal(0.3 + 0.4 * y_tr, 0.15), 0, 1)
    s_te = np.clip(rng.normal(0.3 + 0.4 * y_te, 0.15), 0, 1)
    res = plot_scores(s_te, y_te, s_tr, y_tr, bins=20)
    assert len(res.artists) == 4
    assert sorted(res.hists) == ["test/background", "test/signal", "train/background", "train/signal"]
    assert res.hists["test/signal"].sum().value == np.count_nonzero(y_te == 1)
    texts = [t.get_text() for t in res.ax.get_legend().get_texts()]
    for cls, name in [(0, "background"), (1, "signal")]:
        ref = scipy.stats.ks_2samp(s_te[y_te == cls], s_tr[y_tr == cls])
        assert res.ks[name].pvalue == ref.pvalue
        assert f"{name} (train), KS p = {ref.pvalue:.3f}" in texts
    assert res.ax.get_xlim() == (0.0, 1.0)
    assert res.ax.get_xlabel() == "Tagger score"


def test_scores_without_training_multiclass_logy():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    res = plot_scores(rng.normal(y), y, class_names=["q", "W", "t"], logy=True, density=False)
    assert res.ks == {}
    assert len(res.artists) == 3
    assert res.ax.get_yscale() == "log"
    assert res.ax.get_ylabel() == "Entries"
