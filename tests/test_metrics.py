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


# --- audit against brute-force references -------------------------------------------------------


def _brute_auc(y, s, w):
    """Weighted P(signal outscores background) + half the ties, over all signal-background pairs."""
    ss, sb, ws, wb = s[y == 1], s[y == 0], w[y == 1], w[y == 0]
    gt = (ss[:, None] > sb[None, :]) + 0.5 * (ss[:, None] == sb[None, :])
    return float((ws[:, None] * wb[None, :] * gt).sum() / ws.sum() / wb.sum())


def _brute_curve(is_sig, s, w):
    """Efficiencies of the cuts ``score >= t`` for every distinct score, tightest first, from (0, 0)."""
    es, eb = [0.0], [0.0]
    for t in np.unique(s)[::-1]:
        p = s >= t
        es.append(w[is_sig & p].sum() / w[is_sig].sum())
        eb.append(w[~is_sig & p].sum() / w[~is_sig].sum())
    return np.array(es), np.array(eb)


def _brute_rejection(es, eb, wps):
    """1/eff_b on the straight segment of the curve that crosses each signal efficiency."""
    out = []
    for wp in wps:
        i = int(np.nonzero(es >= wp)[0][0])
        b = eb[i] if es[i] == wp else eb[i - 1] + (wp - es[i - 1]) / (es[i] - es[i - 1]) * (eb[i] - eb[i - 1])
        out.append(1.0 / b if b > 0 else np.inf)
    return np.array(out)


@pytest.mark.parametrize("weights", ["none", "positive", "negative"])
def test_auc_with_ties_and_weights_matches_pair_count(weights):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y, 1.0), 1)  # many tied scores
    w = {"none": np.ones(300), "positive": rng.uniform(0.2, 2.0, 300), "negative": rng.normal(1.0, 1.0, 300)}[weights]
    assert np.any(w < 0) == (weights == "negative")
    ref = _brute_auc(y, s, w)
    assert roc_auc(y, s, None if weights == "none" else w) == pytest.approx(ref, rel=1e-12)
    eff_s, eff_b, _ = efficiency_curve(y, s, w)
    assert efficiency_auc(eff_s, eff_b) == pytest.approx(ref, rel=1e-12)
    if weights != "negative":
        assert roc_auc(y, s, w) == pytest.approx(sklearn.metrics.roc_auc_score(y, s, sample_weight=w), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_rejection_at_matches_hand_sorted_curve_one_vs_rest(weighted):
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 400)
    s = np.round(rng.normal(y == 2, 1.0), 1)  # ties; signal = class 2, classes 0 and 1 are background
    w = rng.uniform(0.2, 2.0, 400) if weighted else np.ones(400)
    eff_s, eff_b, _ = efficiency_curve(y, s, w if weighted else None, signal=2)
    ref_s, ref_b = _brute_curve(y == 2, s, w)
    np.testing.assert_allclose(eff_s, ref_s, atol=1e-12)
    np.testing.assert_allclose(eff_b, ref_b, atol=1e-12)
    wps = np.array([0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    np.testing.assert_allclose(rejection_at(eff_s, eff_b, wps), _brute_rejection(ref_s, ref_b, wps), rtol=1e-12)
    # a working point reached exactly: the lowest background efficiency at that signal efficiency
    k = len(eff_s) // 2
    assert rejection_at(eff_s, eff_b, eff_s[k]) == pytest.approx(1.0 / eff_b[np.argmax(eff_s >= eff_s[k])])


def test_cut_for_efficiency_is_tightest_cut_reaching_working_point():
    from hepnn.metrics import cut_for_efficiency

    rng = np.random.default_rng(9)
    s = np.round(rng.normal(size=500), 1)
    w = rng.uniform(0.1, 3.0, 500)
    for wp in (0.1, 0.3, 0.5, 0.77, 1.0):
        cut = cut_for_efficiency(s, wp, w)
        assert w[s >= cut].sum() / w.sum() >= wp - 1e-12
        tighter = np.unique(s)[np.unique(s) > cut]
        if len(tighter):  # the next tighter cut misses the working point
            assert w[s >= tighter[0]].sum() / w.sum() < wp


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_a_clear_error(bad):
    """Before the fix cut_for_efficiency returned 3.3 (NaN) / -0.3 (inf), ks_test NaN, efficiencies NaN or 0."""
    from hepnn.metrics import confusion_matrix, cut_for_efficiency

    rng = np.random.default_rng(10)
    s, y, w = rng.normal(size=200), rng.integers(0, 2, 200), rng.uniform(0.5, 2.0, 200)
    w[3] = bad
    calls = [
        lambda: cut_for_efficiency(s, 0.5, w),
        lambda: ks_test(s[:100], s[100:], w[:100]),
        lambda: efficiency_hist(s, y == 1, [-3, 0, 3], w),
        lambda: roc_auc(y, s, w),
        lambda: confusion_matrix(y, y, weights=w),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="non-finite"):
            call()


def test_cut_for_efficiency_needs_positive_total_weight():
    from hepnn.metrics import cut_for_efficiency

    with pytest.raises(ValueError, match="positive total weight"):  # returned 0.1 before the fix
        cut_for_efficiency([0.1, 0.2, 0.3], 0.5, [-1.0, -1.0, 0.5])


def test_confusion_matrix_with_signed_weights_normalises_or_names_the_class():
    from hepnn.metrics import confusion_matrix

    t, p = [0, 0, 1, 1, 1], [0, 1, 1, 0, 1]
    # true class 1: predicted 1 with 1 - 0.5, predicted 0 with 1: row [1, 0.5] / 1.5
    cm = confusion_matrix(t, p, normalize="true", weights=[1, 1, 1, 1, -0.5])
    np.testing.assert_allclose(cm, [[0.5, 0.5], [2 / 3, 1 / 3]])
    # a row summing to 0 gave +-1.8e308 (0/0 through nan_to_num), one below 0 sign-flipped fractions
    for w, normalize, where in (([1, 1, 1, 1, -2], "true", "true class 1"), ([1, 1, 1, -3, 1], "pred", "predicted class 0"),
                                ([1, -3, 1, 0.5, 0.2], "all", "all jets")):
        with pytest.raises(ValueError, match=f"weights of {where} sum to"):
            confusion_matrix(t, p, normalize=normalize, weights=w)
    assert confusion_matrix(t, p, weights=[1, 1, 1, 1, -2]).tolist() == [[1.0, 1.0], [1.0, -1.0]]  # counts: kept
    # jets of weight 0 only: an empty row, 0 as scikit-learn gives
    assert confusion_matrix(t, p, normalize="true", weights=[0, 0, 1, 1, 1])[0].tolist() == [0.0, 0.0]


def test_confusion_matrix_refuses_nan_probabilities_and_unknown_classes():
    from hepnn.metrics import confusion_matrix

    proba = np.array([[0.9, 0.1], [np.nan, 0.2], [0.3, 0.7]])
    with pytest.raises(ValueError, match="non-finite"):  # argmax silently called the NaN jet class 0
        confusion_matrix([0, 1, 1], proba)
    with pytest.raises(ValueError, match="outside 0..1"):  # jets of class 2 and 3 were silently dropped
        confusion_matrix([0, 1, 2, 3], [0, 1, 2, 3], n_classes=2)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 1, -1], [0, 1, 1])
    # a class with no jets: its row is 0 when normalised, the others match sklearn
    cm = confusion_matrix([0, 0, 2], [0, 2, 2], n_classes=3, normalize="true")
    np.testing.assert_allclose(cm, [[0.5, 0, 0.5], [0, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("weighted", [False, True])
def test_efficiency_from_hist_matches_hand_binning_and_beta(weighted):
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 100, 300)
    passed = rng.random(300) < x / 120
    w = rng.uniform(0.5, 2.0, 300) if weighted else np.ones(300)
    edges = [0, 10, 40, 100, 150]  # the last bin is empty
    be = efficiency_from_hist(efficiency_hist(x, passed, edges, w if weighted else None))
    a = (1 - 0.6826894921370859) / 2
    for b in range(3):
        inb = (x >= edges[b]) & (x < edges[b + 1])
        eff = w[inb & passed].sum() / w[inb].sum()
        n = w[inb].sum() ** 2 / (w[inb] ** 2).sum()
        k = eff * n
        assert be.eff[b] == pytest.approx(eff, rel=1e-12)
        assert be.n[b] == pytest.approx(n, rel=1e-12)
        lo = 0.0 if k == 0 else scipy.stats.beta.ppf(a, k, n - k + 1)
        hi = 1.0 if k >= n else scipy.stats.beta.ppf(1 - a, k + 1, n - k)
        assert be.lo[b] == pytest.approx(lo, rel=1e-9, abs=1e-12)
        assert be.hi[b] == pytest.approx(hi, rel=1e-9, abs=1e-12)
    assert np.isnan(be.eff[3]) and np.isnan(be.lo[3]) and np.isnan(be.hi[3]) and be.n[3] == 0


def test_weighted_ks_statistic_matches_brute_force_ecdf():
    rng = np.random.default_rng(12)
    a, b = np.round(rng.normal(size=150), 1), np.round(rng.normal(0.2, 1.0, 120), 1)
    wa, wb = rng.uniform(0.5, 2.0, 150), rng.uniform(0.5, 2.0, 120)
    grid = np.union1d(a, b)
    fa = np.array([wa[a <= t].sum() for t in grid]) / wa.sum()
    fb = np.array([wb[b <= t].sum() for t in grid]) / wb.sum()
    res = ks_test(a, b, wa, wb)
    assert res.statistic == pytest.approx(np.abs(fa - fb).max(), rel=1e-12)
    na, nb = effective_count(wa), effective_count(wb)
    assert res.pvalue == pytest.approx(scipy.stats.kstwo.sf(res.statistic, round(na * nb / (na + nb))), rel=1e-12)


def test_rejection_at_negative_weights_interpolates_on_the_crossing_segment():
    """Before the fix the lower end of the segment was the running maximum of eff_s, a point not on the curve."""
    assert rejection_at([0, 0.4, 0.3, 0.6, 1], [0, 0.1, 0.2, 0.5, 1], 0.5) == pytest.approx(2.5)  # was 2.857
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.normal(y, 1.0))  # ties of signal and background jets
    w = rng.normal(1.0, 2.0, 40)  # NLO-like negative weights, the curve dips
    eff_s, eff_b, _ = efficiency_curve(y, s, w)
    ref_s, ref_b = _brute_curve(y == 1, s, w)
    np.testing.assert_allclose(eff_s, ref_s, atol=1e-12)
    assert np.any(np.diff(eff_s) < 0)
    wps = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(rejection_at(eff_s, eff_b, wps), _brute_rejection(ref_s, ref_b, wps), rtol=1e-12)


def test_cut_for_efficiency_negative_weights_with_ties_reaches_working_point():
    """Before the fix a cut inside a group of tied scores was taken (seed 11, wp 0.2: cut 1.0 keeping 14.6 %)."""
    from hepnn.metrics import cut_for_efficiency

    for seed in range(40):
        rng = np.random.default_rng(seed)
        s, w = np.round(rng.normal(size=30)), rng.normal(1.0, 2.0, 30)
        if w.sum() <= 0:
            continue
        cuts = np.unique(s)[::-1]
        frac = np.array([w[s >= c].sum() / w.sum() for c in cuts])
        for wp in (0.2, 0.5, 0.8):
            assert cut_for_efficiency(s, wp, w) == cuts[np.argmax(frac >= wp - 1e-12)]


def test_nan_labels_are_a_clear_error():
    """Before the fix a NaN label counted as background: AUC 0.5 instead of refusing."""
    with pytest.raises(ValueError, match="labels: received 1 non-finite"):
        roc_auc([1, np.nan, 0], [0.5, 0.9, 0.1])
    with pytest.raises(ValueError, match="labels: received 1 non-finite"):
        efficiency_curve([1, np.nan, 0], [0.5, 0.9, 0.1])


def test_weighted_ks_needs_positive_total_weight():
    """Before the fix: statistic 2.33 and p-value 0 (a false overtraining alarm) for weights summing to -1."""
    with pytest.raises(ValueError, match="weights_a must have a positive sum"):
        ks_test([0.1, 0.2, 0.3], [0.1, 0.5, 0.6], [1.0, 1.0, -3.0])
    with pytest.raises(ValueError, match="weights_b must have a positive sum"):
        ks_test([0.1, 0.2, 0.3], [0.1, 0.5, 0.6], None, [0.0, 0.0, 0.0])
