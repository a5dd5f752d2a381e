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
