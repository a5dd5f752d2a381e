import numpy as np
import pytest
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


def test_weighted_overtraining_ks_per_class_matches_brute_force():
    from hepnn.metrics import effective_count

    rng = np.random.default_rng(41)
    y_tr, y_te = rng.integers(0, 3, 400), rng.integers(0, 2, 300)  # class 2 has no test jets
    s_tr, s_te = np.round(rng.normal(y_tr, 1.0), 1), np.round(rng.normal(y_te + 0.1, 1.0), 1)
    w_tr, w_te = rng.uniform(0.5, 2.0, 400), rng.uniform(0.5, 2.0, 300)
    res = plot_scores(s_te, y_te, s_tr, y_tr, test_weights=w_te, train_weights=w_tr, bins=10)
    assert sorted(res.ks) == ["class 0", "class 1"]  # no KS test for a class missing from one sample
    # class 2 has no test jets: its (empty) test histogram is kept but not drawn (0/0 normalised)
    assert ("test", "class 2") not in res.artists and ("train", "class 2") in res.artists
    assert res.hists["test/class 2"].sum(flow=True).value == 0
    for cls in (0, 1):
        a, wa = s_te[y_te == cls], w_te[y_te == cls]
        b, wb = s_tr[y_tr == cls], w_tr[y_tr == cls]
        grid = np.union1d(a, b)
        d = max(abs(wa[a <= t].sum() / wa.sum() - wb[b <= t].sum() / wb.sum()) for t in grid)
        na, nb = effective_count(wa), effective_count(wb)
        ks = res.ks[f"class {cls}"]
        assert ks.statistic == pytest.approx(d, rel=1e-12)
        assert ks.pvalue == pytest.approx(scipy.stats.kstwo.sf(d, round(na * nb / (na + nb))), rel=1e-12)
        h = res.hists[f"test/class {cls}"]
        assert h.sum(flow=True).value == pytest.approx(wa.sum())


def test_scores_refuse_nan():
    with pytest.raises(ValueError, match="train_scores.*non-finite"):
        plot_scores([0.1, 0.9], [0, 1], [0.1, np.nan], [0, 1])


def test_signed_nlo_weights_are_drawn_normalised_by_the_signed_total():
    """Signal bins hold +1.5 and -0.5 (total 1): unit area on 2 bins of width 0.5 gives 3 and -1."""
    s = np.array([0.1, 0.2, 0.8, 0.1, 0.15, 0.85])
    y = np.array([0, 0, 0, 1, 1, 1])
    w = np.array([1.0, 1.0, 1.0, 1.0, 0.5, -0.5])
    res = plot_scores(s, y, test_weights=w, bins=2)
    np.testing.assert_allclose(res.artists[("test", "signal")].stairs.get_data().values, [3.0, -1.0])
    np.testing.assert_allclose(res.hists["test/signal"].values(), [1.5, -0.5])


@pytest.mark.parametrize("with_train", [False, True])
def test_a_class_with_non_positive_total_weight_is_refused_by_name(with_train):
    """Signal bins +1.5 and -2 (total -0.5) were drawn at unit area as -4 and +6: the negative bin as the peak."""
    s = np.array([0.1, 0.2, 0.8, 0.1, 0.15, 0.85])
    y = np.array([0, 0, 0, 1, 1, 1])
    w = np.array([1.0, 1.0, 1.0, 1.0, 0.5, -2.0])
    train = {"train_scores": s, "train_labels": y} if with_train else {}
    with pytest.raises(ValueError, match=r"test_weights: the 3 'signal' jets' weights sum to -0.5 .*unit-area "
                                         r"histogram is undefined.*density=False"):
        plot_scores(s, y, test_weights=w, bins=2, **train)
    # without normalisation the signed entries are drawn as they are; the KS test still needs a positive total
    res = plot_scores(s, y, test_weights=w, bins=2, density=False)
    np.testing.assert_allclose(res.artists[("test", "signal")].stairs.get_data().values, [1.5, -2.0])
    with pytest.raises(ValueError, match=r"train_weights: the 3 'signal' jets' weights sum to -0.5 .*KS test"):
        plot_scores(s, y, s, y, train_weights=w, bins=2, density=False)
