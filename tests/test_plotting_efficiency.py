import numpy as np
import pytest
import scipy.stats

from hepnn.plotting import binned_efficiency, plot_efficiency, plot_mass_sculpting


@pytest.fixture
def jets():
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.integers(0, 2, n)
    pt = rng.uniform(200, 1000, n)
    scores = rng.normal(y * (pt / 500), 1.0)  # better at high pT
    return pt, scores, y


def test_fixed_cut_counts_and_clopper_pearson(jets):
    pt, s, y = jets
    bins = [200, 400, 600, 800, 1000]
    t = binned_efficiency(pt, s, y, bins, working_point=0.5, cl=0.6827)
    cut = t.cuts[0]
    assert np.all(t.cuts == cut)
    assert np.mean(s[y == 1] >= cut) == pytest.approx(0.5, abs=1e-3)
    for b in range(4):
        sel = (pt >= bins[b]) & (pt < bins[b + 1])
        k, n = np.count_nonzero(s[sel & (y == 0)] >= cut), np.count_nonzero(sel & (y == 0))
        assert t.eff_b[b] == k / n
        assert t.eff_b_lo[b] == pytest.approx(scipy.stats.beta.ppf((1 - 0.6827) / 2, k, n - k + 1))
        assert t.eff_b_hi[b] == pytest.approx(scipy.stats.beta.ppf(1 - (1 - 0.6827) / 2, k + 1, n - k))
    assert t.eff_s[-1] > t.eff_s[0]


def test_flat_efficiency_per_bin(jets):
    pt, s, y = jets
    t = binned_efficiency(pt, s, y, [200, 500, 1000], working_point=0.3, flat=True)
    np.testing.assert_allclose(t.eff_s, 0.3, atol=2e-3)
    assert t.cuts[0] != t.cuts[1]


def test_plot_efficiency_and_rejection(jets):
    pt, s, y = jets
    res = plot_efficiency(pt, s, y, [200, 600, 1000])
    assert sorted(res.artists) == ["background", "signal"]
    assert len(res.ax.containers) == 2
    assert res.ax.get_xlabel() == "Jet $p_T$ [GeV]"
    eta = np.random.default_rng(0).uniform(-2.5, 2.5, len(y))
    res = plot_efficiency(eta, s, y, [-2.5, 0, 2.5], quantity="rejection", flat=True, xlabel="Jet $\\eta$")
    assert res.ax.get_yscale() == "log"
    np.testing.assert_allclose(res.artists["rejection"].lines[0].get_ydata(), 1 / res.table.eff_b)
    with pytest.raises(ValueError, match="quantity"):
        plot_efficiency(pt, s, y, [200, 1000], quantity="purity")


def test_mass_sculpting(jets):
    pt, s, y = jets
    mass = np.random.default_rng(1).uniform(0, 300, len(y))
    res = plot_mass_sculpting(mass, s, y, working_points=(0.5, 0.2), bins=30, range=(0, 300))
    assert sorted(res.hists) == ["before", "eff_s=0.2", "eff_s=0.5"]
    assert len(res.artists) == 3
    assert res.hists["before"].sum().value == np.count_nonzero(y == 0)
    assert res.hists["eff_s=0.5"].sum().value == np.count_nonzero((y == 0) & (s >= res.cuts[0.5]))
    assert 0 <= res.jsd[0.5] < 0.05  # score independent of mass: no sculpting


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_binned_efficiency_matches_hand_counts(flat, weighted):
    rng = np.random.default_rng(21)
    n = 600
    y = rng.integers(0, 3, n)  # signal = class 2; classes 0 and 1 are background
    pt = rng.uniform(200, 1000, n)
    s = np.round(rng.normal((y == 2) * pt / 500, 1.0), 2)
    w = rng.uniform(0.3, 2.0, n) if weighted else np.ones(n)
    edges = np.array([200.0, 400, 700, 1000, 1200])  # last bin empty
    t = binned_efficiency(pt, s, y, edges, working_point=0.4, flat=flat, weights=w if weighted else None, signal=2)
    sig = y == 2
    a = (1 - 0.6826894921370859) / 2
    for b in range(3):
        inb = (pt >= edges[b]) & (pt < edges[b + 1])
        cut = t.cuts[b]
        ref_cut = np.sort(s[inb & sig] if flat else s[sig])  # tightest cut keeping >= 40 % of signal weight
        ws = w[inb & sig] if flat else w[sig]
        cand = [c for c in np.unique(ref_cut) if ws[(s[inb & sig] if flat else s[sig]) >= c].sum() >= 0.4 * ws.sum()]
        assert cut == max(cand)
        for key, cls in (("s", sig), ("b", ~sig)):
            sel = inb & cls
            eff = w[sel & (s >= cut)].sum() / w[sel].sum()
            n_eff = w[sel].sum() ** 2 / (w[sel] ** 2).sum()
            assert getattr(t, f"eff_{key}")[b] == pytest.approx(eff, rel=1e-12)
            assert getattr(t, f"n_{key}")[b] == pytest.approx(n_eff, rel=1e-12)
            k = eff * n_eff
            lo = 0.0 if k == 0 else scipy.stats.beta.ppf(a, k, n_eff - k + 1)
            assert getattr(t, f"eff_{key}_lo")[b] == pytest.approx(lo, rel=1e-9, abs=1e-12)
        if flat:
            assert t.eff_s[b] >= 0.4
    assert np.isnan(t.eff_s[3]) and np.isnan(t.eff_b[3])


def test_mass_sculpting_jsd_matches_hand_written_divergence():
    rng = np.random.default_rng(22)
    n = 1500
    y = rng.integers(0, 2, n)
    m = rng.uniform(0, 300, n)
    s = rng.normal(y, 1.0) + m / 300  # the tagger sculpts: high mass looks like signal
    w = rng.uniform(0.5, 1.5, n)
    res = plot_mass_sculpting(m, s, y, working_points=(0.5, 0.3), weights=w, bins=20, range=(0, 300))
    bkg, sig = y == 0, y == 1
    edges = np.linspace(0, 300, 21)
    before, _ = np.histogram(m[bkg], edges, weights=w[bkg])
    for wp in (0.5, 0.3):
        cut = res.cuts[wp]
        assert w[sig & (s >= cut)].sum() / w[sig].sum() == pytest.approx(wp, abs=2 / sig.sum())
        after, _ = np.histogram(m[bkg & (s >= cut)], edges, weights=w[bkg & (s >= cut)])
        p, q = before / before.sum(), after / after.sum()
        mid = (p + q) / 2

        def kl(a, b):
            nz = a > 0
            return np.sum(a[nz] * np.log2(a[nz] / b[nz]))

        assert res.jsd[wp] == pytest.approx(0.5 * kl(p, mid) + 0.5 * kl(q, mid), rel=1e-9)
    assert res.jsd[0.3] > res.jsd[0.5] > 0


def test_mass_sculpting_with_negative_weights_and_a_bad_background_weight():
    m = np.array([10.0, 20.0, 160.0, 170.0, 260.0, 100.0, 200.0])
    y = np.array([0, 0, 0, 0, 0, 1, 1])
    s = np.array([0.97, 0.1, 0.97, 0.97, 0.2, 0.95, 0.5])  # the cut at 50 %: 0.95
    w = np.array([1.0, 1.0, 1.0, -1.5, 1.0, 1.0, 1.0])  # NLO: the middle bin sums to -0.5
    res = plot_mass_sculpting(m, s, y, working_points=(0.5,), weights=w, bins=3, range=(0, 300))
    assert res.cuts[0.5] == 0.95
    # before: [2, -0.5, 1], after: [1, -0.5, 0]; a bin below zero counts as empty
    p, q = np.array([2.0, 0.0, 1.0]) / 3, np.array([1.0, 0.0, 0.0])
    mid = (p + q) / 2
    expected = sum(0.5 * np.sum(a[a > 0] * np.log2(a[a > 0] / mid[a > 0])) for a in (p, q))
    assert res.jsd[0.5] == pytest.approx(expected, rel=1e-9)
    w[0] = np.nan  # a background jet: the cut (set on signal) never sees it
    with pytest.raises(ValueError, match="weights: received 1 non-finite"):
        plot_mass_sculpting(m, s, y, weights=w)


def test_nan_labels_weights_and_scores_are_clear_errors():
    x, s, y = np.array([10.0, 20, 30, 40]), np.array([0.9, 0.1, 0.8, 0.2]), np.array([1.0, 1, 0, 0])
    bins = [0, 25, 50]
    with pytest.raises(ValueError, match="labels: received 1 non-finite"):
        binned_efficiency(x, s, np.array([1.0, np.nan, 0, 0]), bins)
    with pytest.raises(ValueError, match="labels: received 1 non-finite"):
        plot_mass_sculpting(x, s, np.array([1.0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="scores: received 1 non-finite"):
        binned_efficiency(x, np.array([0.9, np.inf, 0.8, 0.2]), y, bins)
    for bad in (np.nan, np.inf):
        w = np.array([1.0, 1.0, bad, 1.0])
        with pytest.raises(ValueError, match="non-finite"):
            binned_efficiency(x, s, y, bins, weights=w)
        with pytest.raises(ValueError, match="non-finite"):
            binned_efficiency(x, s, y, bins, weights=w, flat=True)
        with pytest.raises(ValueError, match="non-finite"):
            plot_mass_sculpting(x, s, y, weights=w[::-1])


def test_flat_efficiency_bin_with_negative_signal_weight_has_no_cut():
    x = np.array([10.0, 20, 30, 40, 60, 70, 80, 90])
    s = np.array([0.9, 0.2, 0.5, 0.4, 0.8, 0.3, 0.6, 0.1])
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    w = np.array([-2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # bin 0: total signal weight -1
    t = binned_efficiency(x, s, y, [0, 50, 100], flat=True, weights=w)
    assert np.isnan(t.cuts[0]) and np.isnan(t.eff_s[0]) and np.isnan(t.eff_b[0])
    assert t.cuts[1] == 0.8 and t.eff_s[1] == 0.5 and t.eff_b[1] == 0.0
