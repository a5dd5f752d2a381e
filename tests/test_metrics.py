import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

import hepnn.plotting
from hepnn.metrics import (
    clopper_pearson,
    effective_count,
    efficiency_auc,
    efficiency_curve,
    efficiency_from_hist,
    efficiency_hist,
    ks_test,
    rejection_at,
    rejection_uncertainty,
    roc_auc,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 2000)
    s = rng.normal(1.5 * y, 1.0)
    w = rng.uniform(0.5, 2.0, 2000)
    return s, y, w


@pytest.mark.parametrize("weighted", [False, True])
def test_efficiency_curve_matches_sklearn(sample, weighted):
    s, y, w = sample
    w = w if weighted else None
    eff_s, eff_b, thr = efficiency_curve(y, s, w)
    fpr, tpr, sk_thr = sklearn.metrics.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(eff_s, tpr)
    np.testing.assert_allclose(eff_b, fpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    expected = sklearn.metrics.roc_auc_score(y, s, sample_weight=w)
    assert efficiency_auc(eff_s, eff_b) == pytest.approx(expected, rel=1e-12)
    assert roc_auc(y, s, w) == pytest.approx(expected, rel=1e-12)
    # direct computation: P(score_signal > score_background) over all weighted pairs
    ws = np.ones(len(s)) if w is None else w
    sig, bkg = y == 1, y == 0
    greater = (s[sig][:, None] > s[bkg][None, :]).astype(float)
    direct = np.sum(ws[sig][:, None] * ws[bkg][None, :] * greater) / (ws[sig].sum() * ws[bkg].sum())
    assert roc_auc(y, s, w) == pytest.approx(direct, rel=1e-9)


def test_efficiency_curve_ties_and_other_labels():
    eff_s, eff_b, thr = efficiency_curve([2, 0, 2, 1], [0.5, 0.5, 0.2, 0.9], signal=2)
    assert eff_s.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert eff_b.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert thr[0] == np.inf


def test_efficiency_curve_needs_both_classes_and_matching_lengths():
    with pytest.raises(ValueError, match="signal .* and background"):
        efficiency_curve([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="signal .* and background"):
        roc_auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="one label per jet"):
        efficiency_curve([1, 0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-finite"):
        efficiency_curve([1, 0], [0.1, np.nan])


def test_rejection_at_half_matches_explicit_cut(sample):
    s, y, _ = sample
    sig = np.sort(s[y == 1])[::-1]
    if len(sig) % 2:
        sig = sig[:-1]
        keep = (y == 0) | np.isin(s, sig)
        s, y = s[keep], y[keep]
    cut = sig[len(sig) // 2 - 1]  # exactly half of the signal has score >= cut
    expected = 1.0 / np.mean(s[y == 0] >= cut)
    eff_s, eff_b, _ = efficiency_curve(y, s)
    assert rejection_at(eff_s, eff_b, 0.5) == pytest.approx(expected, rel=1e-12)
    # and between points, linear interpolation of sklearn's curve
    fpr, tpr, _ = sklearn.metrics.roc_curve(y, s, drop_intermediate=False)
    wp = 0.4321
    k = np.searchsorted(tpr, wp)
    interp = fpr[k - 1] + (wp - tpr[k - 1]) * (fpr[k] - fpr[k - 1]) / (tpr[k] - tpr[k - 1])
    assert rejection_at(eff_s, eff_b, wp) == pytest.approx(1 / interp)


def test_rejection_at_shapes_and_infinity():
    eff_s, eff_b, _ = efficiency_curve([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1])
    out = rejection_at(eff_s, eff_b, [0.5, 1.0])
    assert out.shape == (2,)
    assert np.all(np.isinf(out))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        rejection_at(eff_s, eff_b, 1.5)


def test_rejection_uncertainty():
    assert float(rejection_uncertainty(10.0, 1000)) == pytest.approx(100 * np.sqrt(0.1 * 0.9 / 1000))
    assert np.isinf(rejection_uncertainty(np.inf, 10))
    assert effective_count(np.full(10, 3.0)) == pytest.approx(10.0)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200)])
def test_clopper_pearson_matches_beta(k, n):
    cl = 0.95
    lo, hi = clopper_pearson(k, n, cl=cl)
    exp_lo = 0.0 if k == 0 else scipy.stats.beta.ppf(0.025, k, n - k + 1)
    exp_hi = 1.0 if k == n else scipy.stats.beta.ppf(0.975, k + 1, n - k)
    assert float(lo) == pytest.approx(exp_lo, abs=1e-12)
    assert float(hi) == pytest.approx(exp_hi, abs=1e-12)


def test_clopper_pearson_arrays_and_errors():
    lo, hi = clopper_pearson(np.array([1, 2]), np.array([4, 0]))
    assert lo.shape == (2,) and np.isnan(lo[1]) and np.isnan(hi[1])
    assert lo[0] < 0.25 < hi[0]
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(5, 4)


def test_ks_test_matches_scipy(sample):
    s, y, _ = sample
    a, b = s[:700], s[700:1500]
    res = ks_test(a, b)
    ref = scipy.stats.ks_2samp(a, b)
    assert res.statistic == ref.statistic
    assert res.pvalue == ref.pvalue


def test_weighted_ks_with_unit_weights_is_asymptotic_scipy(sample):
    s, _, _ = sample
    a, b = s[:700], s[700:1500]
    res = ks_test(a, b, np.ones(len(a)), np.ones(len(b)))
    ref = scipy.stats.ks_2samp(a, b, method="asymp")
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(ref.pvalue)


def test_weighted_ks_detects_reweighting():
    rng = np.random.default_rng(3)
    a = rng.normal(size=3000)
    b = rng.normal(size=3000)
    assert ks_test(a, b, np.exp(a), None).pvalue < 1e-6


@pytest.mark.parametrize("weighted", [False, True])
def test_binned_efficiency_of_two_halves_merged_equals_whole(sample, weighted):
    s, y, w = sample
    w = w if weighted else None
    x = np.abs(s) * 100
    passed = s > 0.7
    assert 0 < np.count_nonzero(passed) < len(s)
    edges = [0, 50, 100, 200, float(x.max())]
    whole = efficiency_hist(x, passed, edges, w)
    half = len(x) // 3
    parts = [efficiency_hist(x[sl], passed[sl], edges, None if w is None else w[sl])
             for sl in (slice(None, half), slice(half, None))]
    merged = parts[0] + parts[1]
    np.testing.assert_allclose(merged.view()["value"], whole.view()["value"])
    np.testing.assert_allclose(merged.view()["variance"], whole.view()["variance"])
    a, b = efficiency_from_hist(merged), efficiency_from_hist(whole)
    np.testing.assert_allclose(a.eff, b.eff)
    np.testing.assert_allclose(a.lo, b.lo)
    np.testing.assert_allclose(a.hi, b.hi)
    # against a direct computation per bin (the largest value lands in the last bin)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    ww = np.ones(len(x)) if w is None else w
    for k in range(len(edges) - 1):
        sel = idx == k
        eff = ww[sel & passed].sum() / ww[sel].sum()
        n = ww[sel].sum() ** 2 / (ww[sel] ** 2).sum()
        assert b.eff[k] == pytest.approx(eff, rel=1e-12)
        assert b.n[k] == pytest.approx(n, rel=1e-12)
        lo, hi = clopper_pearson(eff * n, n)
        assert b.lo[k] == pytest.approx(float(lo)) and b.hi[k] == pytest.approx(float(hi))
        if w is None:
            kk, nn = np.count_nonzero(sel & passed), np.count_nonzero(sel)
            expected = scipy.stats.beta.ppf((1 - 0.6826894921370859) / 2, kk, nn - kk + 1) if kk else 0.0
            assert b.lo[k] == pytest.approx(expected)


def test_efficiency_hist_empty_bins_and_bad_input():
    h = efficiency_hist([1.0, 2.0], [True, False], [0, 5, 10])
    e = efficiency_from_hist(h)
    assert e.eff[0] == 0.5 and np.isnan(e.eff[1]) and np.isnan(e.lo[1]) and e.n[1] == 0
    with pytest.raises(ValueError, match="increasing"):
        efficiency_hist([1.0], [True], [5, 0])
    with pytest.raises(ValueError, match="one flag per jet"):
        efficiency_hist([1.0, 2.0], [True], [0, 5])


def test_old_plotting_names_point_to_hepnn_metrics():
    with pytest.warns(DeprecationWarning, match="hepnn.metrics.ks_test"):
        assert hepnn.plotting.ks_test is ks_test
    with pytest.raises(AttributeError, match="efficiency_curve"):
        hepnn.plotting.roc_curve  # noqa: B018


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_counts_weighted_jets(normalize):
    from hepnn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    t, p, w = rng.integers(0, 3, 300), rng.integers(0, 3, 300), rng.uniform(0.5, 2.0, 300)
    counts = np.zeros((4, 4))
    for i, j, wi in zip(t, p, w):
        counts[i, j] += wi
    cm = confusion_matrix(t, p, n_classes=4, normalize=normalize, weights=w)
    axis = {None: None, "true": 1, "pred": 0, "all": None}[normalize]
    total = 1.0 if normalize is None else counts.sum(axis=axis, keepdims=axis is not None)
    with np.errstate(invalid="ignore"):
        expected = np.nan_to_num(counts / total)  # class 3 is never seen: its row and column are 0
    np.testing.assert_allclose(cm, expected)
    probs = np.eye(3)[p]
    np.testing.assert_allclose(confusion_matrix(t, probs, normalize=normalize, weights=w), expected[:3, :3])
