"""Mass sculpting numbers: Jensen-Shannon divergence, rejection and 1/JSD at 50% signal efficiency."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.training.sculpting import jensen_shannon, run_sculpting, sculpting_metrics, sculpting_variable


def _direct_jsd(p, q):
    p = np.asarray(p, float) / np.sum(p)
    q = np.asarray(q, float) / np.sum(q)
    m = (p + q) / 2
    total = 0.0
    for a in (p, q):
        for ai, mi in zip(a, m):
            if ai > 0:
                total += 0.5 * ai * np.log2(ai / mi)
    return total


def test_jensen_shannon_against_direct_and_scipy():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(0)
    for _ in range(5):
        p, q = rng.integers(0, 50, 30), rng.integers(0, 50, 30)
        assert jensen_shannon(p, q) == pytest.approx(_direct_jsd(p, q), rel=1e-12)
        assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-9)
    assert jensen_shannon([3, 0], [0, 5]) == 1.0
    assert jensen_shannon([1, 2, 3], [10, 20, 30]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        jensen_shannon([0, 0], [1, 1])


def test_sculpting_metrics_by_hand():
    # background: masses 0..9 (10 jets), scores rising with mass; signal: 4 jets, half above 0.5
    mass = np.r_[np.arange(10.0), [5.0, 5.0, 5.0, 5.0]]
    scores = np.r_[np.arange(10) / 10, [0.9, 0.8, 0.2, 0.1]]
    is_sig = np.r_[np.zeros(10, bool), np.ones(4, bool)]
    out = sculpting_metrics(mass, scores, is_sig, bins=2)
    # the cut at 50% signal efficiency is 0.8: background jets 8 and 9 pass (both in the upper bin)
    assert out["rejection_50"] == pytest.approx(5.0)
    expected = _direct_jsd([0, 2], [5, 3])
    assert out["jsd_50"] == pytest.approx(expected, rel=1e-6)
    assert out["inv_jsd_50"] == pytest.approx(1 / expected, rel=1e-5)
    assert out["variable"] == "mass" and out["working_point"] == 0.5 and out["bins"] == 2


def test_independent_scores_do_not_sculpt():
    rng = np.random.default_rng(1)
    n = 40000
    y = rng.integers(0, 2, n)
    mass = rng.exponential(50, n)
    flat = sculpting_metrics(mass, rng.normal(size=n) + y, y == 1)
    sculpted = sculpting_metrics(mass, mass / 50 + rng.normal(size=n) + y, y == 1)
    assert flat["inv_jsd_50"] > 20 * sculpted["inv_jsd_50"]
    assert flat["rejection_50"] == pytest.approx(1 / 0.1587, rel=0.05)  # cut at 1 (signal N(1, 1)); N(0, 1) above 1


def test_run_sculpting_picks_the_variable_and_skips_non_binary():
    from hepnn.config import load_config

    config = load_config({"data": {"spectators": ["jet_pt", "jet_mass", "jet_sdmass"]}})
    data = {"spec_jet_pt": 0, "spec_jet_mass": 0, "spec_jet_sdmass": 0}
    assert sculpting_variable(config, data) == "spec_jet_sdmass"
    decor = load_config({"data": {"spectators": ["jet_pt", "jet_mass"]},
                         "training": {"decorrelate": {"method": "disco", "variable": "jet_mass"}}})
    assert sculpting_variable(decor, data) == "spec_jet_mass"
    assert sculpting_variable(config, {"spec_jet_pt": 0}) is None
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    pred = {"task": "binary", "classes": ["qcd", "top"], "label": y, "outputs": rng.uniform(size=(500, 1)),
            "data": {"spec_jet_mass": rng.uniform(0, 300, 500)}}
    entry = run_sculpting(config, pred)["sculpting"]
    assert entry["variable"] == "jet_mass" and entry["rejection_50"] == pytest.approx(2.0, rel=0.25)
    assert run_sculpting(config, {**pred, "task": "multiclass"}) == {}
    assert run_sculpting(config, {**pred, "data": {}}) == {}


def _reference_sculpting(mass, scores, is_sig, weights, wp, bins):
    """Rejection and JSD by loops: the tightest signal cut reaching ``wp``, equal-width bins over
    the finite background masses (last edge included), JSD of the two normalised histograms."""
    sig = sorted(((s, w) for s, w, y in zip(scores, weights, is_sig) if y), key=lambda t: -t[0])
    total, acc, cut = sum(w for _, w in sig), 0.0, None
    for i, (s, w) in enumerate(sig):
        acc += w
        last_of_tie = i + 1 == len(sig) or sig[i + 1][0] != s
        if last_of_tie and acc / total >= wp * (1 - 1e-12):
            cut = s
            break
    bkg = [(m, s, w) for m, s, w, y in zip(mass, scores, weights, is_sig) if not y]
    eff = sum(w for _, s, w in bkg if s >= cut) / sum(w for _, _, w in bkg)
    finite = [m for m, _, _ in bkg if np.isfinite(m)]
    lo, hi = min(finite), max(finite)
    h = {True: [0.0] * bins, False: [0.0] * bins}
    for m, s, w in bkg:
        if np.isfinite(m):
            k = min(int((m - lo) / (hi - lo) * bins), bins - 1)
            h[s >= cut][k] += w
    return 1 / eff, _direct_jsd(h[True], h[False])


@pytest.mark.parametrize("wp", [0.3, 0.5, 0.8])
def test_weighted_sculpting_against_a_loop_reference(wp):
    rng = np.random.default_rng(21)
    n = 600
    y = rng.random(n) < 0.4
    mass = rng.exponential(60, n) + 10
    mass[rng.choice(np.flatnonzero(~y), 5, replace=False)] = np.nan  # no mass: counted in the rejection only
    scores = np.round(rng.normal(size=n) + 1.5 * y + np.nan_to_num(mass, nan=50) / 100, 2)  # ties too
    weights = rng.uniform(0.1, 2.0, n)
    out = sculpting_metrics(mass, scores, y, weights, working_point=wp, bins=12, name="m")
    rejection, jsd = _reference_sculpting(mass, scores, y, weights, wp, 12)
    tag = f"{round(100 * wp)}"
    assert out[f"rejection_{tag}"] == pytest.approx(rejection, rel=1e-6)
    assert out[f"jsd_{tag}"] == pytest.approx(jsd, rel=1e-4, abs=1e-6)
    assert out[f"inv_jsd_{tag}"] == pytest.approx(1 / jsd, rel=1e-5)
    assert 0 < jsd < 1


def test_sculpting_edge_cases_give_none_not_nan():
    mass = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0])
    is_sig = np.array([0, 0, 0, 0, 1, 1], bool)
    # every background jet passes: no failing shape, rejection 1
    out = sculpting_metrics(mass, [0.9, 0.9, 0.9, 0.9, 0.5, 0.4], is_sig, bins=2)
    assert out["rejection_50"] == 1.0 and out["jsd_50"] is None and out["inv_jsd_50"] is None
    # none passes: rejection infinite (None)
    out = sculpting_metrics(mass, [0.1, 0.1, 0.1, 0.1, 0.5, 0.4], is_sig, bins=2)
    assert out["rejection_50"] is None
    # equal shapes: JSD 0, 1/JSD infinite (None)
    out = sculpting_metrics([1.0, 1.0, 3.0, 3.0, 1.0, 2.0], [0.9, 0.1, 0.9, 0.1, 0.5, 0.4], is_sig, bins=2)
    assert out["jsd_50"] == 0.0 and out["inv_jsd_50"] is None and out["rejection_50"] == 2.0
    # a constant background mass: one filled bin, equal shapes
    out = sculpting_metrics([5.0, 5.0, 5.0, 5.0, 1.0, 2.0], [0.9, 0.1, 0.9, 0.1, 0.5, 0.4], is_sig, bins=3)
    assert out["jsd_50"] == 0.0


def test_a_small_jsd_keeps_its_significant_digits():
    # a tagger that ignores the mass: JSD ~1e-4, stored to 6 significant digits (not 6 decimals)
    rng = np.random.default_rng(5)
    n = 40000
    y = rng.random(n) < 0.5
    mass = rng.exponential(60, n) + 10
    scores = rng.normal(size=n) + y
    out = sculpting_metrics(mass, scores, y, np.ones(n), working_point=0.5, bins=12, name="m")
    _, jsd = _reference_sculpting(mass, scores, y, np.ones(n), 0.5, 12)
    assert 1e-6 < jsd < 1e-2
    assert out["jsd_50"] == pytest.approx(jsd, rel=1e-5)
    assert out["jsd_50"] * out["inv_jsd_50"] == pytest.approx(1.0, rel=1e-5)


def test_negative_weights_empty_a_bin_and_bad_weights_are_named():
    # NLO weights: a mass bin whose weights sum below zero is an empty bin, not an infinite JSD
    mass = np.array([1.0, 1.2, 1.1, 2.5, 2.6, 3.5, 3.6, 1.0, 2.0, 3.0, 2.0])
    is_sig = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1], bool)
    scores = np.array([0.95, 0.1, 0.2, 0.95, 0.1, 0.95, 0.05, 0.99, 0.93, 0.2, 0.1])  # cut at 0.93
    weights = np.array([1.0, 1.0, 1.0, 1.0, -2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    out = sculpting_metrics(mass, scores, is_sig, weights, working_point=0.5, bins=3)
    h_pass, h_fail = np.array([1.0, 1.0, 1.0]), np.array([2.0, 0.0, 1.0])  # the middle failing bin: -2 -> 0
    assert out["jsd_50"] == pytest.approx(jensen_shannon(h_pass, h_fail), rel=1e-5)
    assert out["jsd_50"] == pytest.approx(_direct_jsd(h_pass, h_fail), rel=1e-5)
    assert out["rejection_50"] == pytest.approx(4.0 / 3.0)  # passing 3 of a total background weight 4
    with pytest.raises(ValueError, match="non-negative"):
        jensen_shannon([1.0, -0.1, 2.0], [1.0, 1.0, 1.0])
    weights[2] = np.nan
    with pytest.raises(ValueError, match="weights: received 1 non-finite"):
        sculpting_metrics(mass, scores, is_sig, weights)
    with pytest.raises(ValueError, match="scores: received 1 non-finite"):
        sculpting_metrics(mass, np.r_[scores[:-1], np.inf], is_sig)


def test_sculpting_variable_matches_mass_names_in_any_case():
    # the report found spec_FatJet_Mass (its patterns are matched lower-cased), metrics.json did not
    from hepnn.config import load_config

    config = load_config({"data": {"spectators": ["FatJet_pt", "FatJet_Mass"]}})
    assert sculpting_variable(config, {"spec_FatJet_pt": 0, "spec_FatJet_Mass": 0}) == "spec_FatJet_Mass"
