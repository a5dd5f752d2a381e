import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from hepnn.plotting import (
    auc,
    clopper_pearson,
    effective_count,
    ks_test,
    rejection_at,
    rejection_uncertainty,
    roc_curve,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 2000)
    s = rng.normal(1.5 * y, 1.0)
    w = rng.uniform(0.5, 2.0, 2000)
    return s, y, w


@pytest.mark.parametrize("weighted", [False, True])
def test_roc_curve_matches_sklearn(sample, weighted):
    s, y, w = sample
    w = w if weighted else None
    eff_s, eff_b, thr = roc_curve(s, y, w)
    fpr, tpr, sk_thr = sklearn.metrics.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(eff_s, tpr)
    np.testing.assert_allclose(eff_b, fpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert auc(eff_s, eff_b) == pytest.approx(sklearn.metrics.roc_auc_score(y, s, sample_weight=w), rel=1e-12)


def test_roc_curve_ties_and_other_labels():
    eff_s, eff_b, thr = roc_curve([0.5, 0.5, 0.2, 0.9], [2, 0, 2, 1], signal=2)
    assert eff_s.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert eff_b.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert thr[0] == np.inf


def test_roc_curve_needs_both_classes():
    with pytest.raises(ValueError, match="signal .* and background"):
        roc_curve([0.1, 0.2], [1, 1])


def test_rejection_at_half_matches_explicit_cut(sample):
    s, y, _ = sample
    sig = np.sort(s[y == 1])[::-1]
    if len(sig) % 2:
        sig = sig[:-1]
        keep = (y == 0) | np.isin(s, sig)
        s, y = s[keep], y[keep]
    cut = sig[len(sig) // 2 - 1]  # exactly half of the signal has score >= cut
    expected = 1.0 / np.mean(s[y == 0] >= cut)
    eff_s, eff_b, _ = roc_curve(s, y)
    assert rejection_at(eff_s, eff_b, 0.5) == pytest.approx(expected, rel=1e-12)
    # and between points, linear interpolation of sklearn's curve
    fpr, tpr, _ = sklearn.metrics.roc_curve(y, s, drop_intermediate=False)
    wp = 0.4321
    k = np.searchsorted(tpr, wp)
    interp = fpr[k - 1] + (wp - tpr[k - 1]) * (fpr[k] - fpr[k - 1]) / (tpr[k] - tpr[k - 1])
    assert rejection_at(eff_s, eff_b, wp) == pytest.approx(1 / interp)


def test_rejection_at_shapes_and_infinity():
    eff_s, eff_b, _ = roc_curve([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])
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
