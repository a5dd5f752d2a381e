"""The in-order check of a derived sort key block by block (``_in_order_by_blocks``): True exactly
when :func:`order_within_jets` finds every jet in order, whatever the blocks cut; anything unusual
(NaN keys, branches, few elements) leaves the decision to the whole key."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.io import representations as reps
from hepnn.io.derived import DERIVED, Momenta
from hepnn.io.layouts import Elements


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    # blocks of 37 elements over a few thousand: block boundaries fall inside jets and on them
    monkeypatch.setattr(reps, "_FEATURE_BLOCK", 37)
    monkeypatch.setattr(reps, "_KEY_BLOCKS_FROM", 0)


def _jets(rng, n_jets=300, in_order=True, descending=True):
    counts = rng.integers(0, 25, n_jets)
    n = int(counts.sum())
    px, py = rng.normal(0, 20, n).astype(np.float32), rng.normal(0, 20, n).astype(np.float32)
    if in_order:  # each jet's elements by pT, as files store constituents
        pt = np.hypot(px.astype(np.float64), py.astype(np.float64))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for lo, hi in zip(offsets[:-1], offsets[1:]):
            o = lo + np.argsort(-pt[lo:hi] if descending else pt[lo:hi], kind="stable")
            px[lo:hi], py[lo:hi] = px[o], py[o]
    return counts, px, py


def _check(counts, px, py, sort):
    elements = Elements(counts, {"px": px, "py": py})
    m = Momenta({"px": px, "py": py}, where="data.inputs.p")
    m.set_jet_axis({"pt": np.ones(len(counts)), "eta": np.zeros(len(counts)), "phi": np.zeros(len(counts))},
                   elements.jet_index())
    return reps._in_order_by_blocks(elements, m, sort, "data.inputs.p")


def _whole(counts, px, py, var, descending, absolute):
    m = Momenta({"px": px, "py": py})
    m.set_jet_axis({"pt": np.ones(len(counts)), "eta": np.zeros(len(counts)), "phi": np.zeros(len(counts))},
                   np.repeat(np.arange(len(counts)), counts))
    key = DERIVED.get(var)(m)
    return reps.order_within_jets(counts, np.abs(key) if absolute else key, descending) is None


@pytest.mark.parametrize("descending", [True, False])
def test_jets_in_order_are_found_in_order_across_block_boundaries(descending):
    counts, px, py = _jets(np.random.default_rng(1), descending=descending)
    assert _whole(counts, px, py, "log_pt", descending, False)
    assert _check(counts, px, py, ("log_pt", False, descending, False))
    # the reverse order: a disorder in nearly every jet
    assert not _check(counts, px, py, ("log_pt", False, not descending, False))


def test_one_swapped_pair_is_found_wherever_it_lies_and_pairs_across_jets_do_not_count():
    counts, px, py = _jets(np.random.default_rng(2))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    starts = set(offsets.tolist())
    n = int(counts.sum())
    found_at_boundary = 0
    for i in range(n - 1):
        if i + 1 in starts or px[i] == px[i + 1]:
            continue
        a, b = px.copy(), py.copy()
        a[[i, i + 1]], b[[i, i + 1]] = a[[i + 1, i]], b[[i + 1, i]]
        expected = _whole(counts, a, b, "log_pt", True, False)
        assert _check(counts, a, b, ("log_pt", False, True, False)) == expected, i
        assert not expected  # a swapped pair inside a jet (distinct pT) is always a disorder
        found_at_boundary += (i + 1) % 37 == 0  # the pair straddles two blocks
        if i > 800:
            break
    assert found_at_boundary >= 5


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("var,absolute", [("log_pt", False), ("rel_eta", True), ("delta_r", False), ("rel_phi", False)])
def test_agrees_with_order_within_jets_on_random_and_nearly_ordered_jets(seed, var, absolute):
    rng = np.random.default_rng(seed)
    counts, px, py = _jets(rng, n_jets=120, in_order=seed % 2 == 0)
    n = int(counts.sum())
    pz = rng.normal(0, 30, n).astype(np.float32)
    if seed % 3 == 0:  # ties: repeated momenta inside jets
        px[1::2], py[1::2], pz[1::2] = px[::2][: len(px[1::2])], py[::2][: len(py[1::2])], pz[::2][: len(pz[1::2])]
    comps = {"px": px, "py": py, "pz": pz}
    axis = {"pt": np.full(len(counts), 50.0), "eta": rng.normal(0, 1, len(counts)), "phi": rng.uniform(-3, 3, len(counts))}
    elements = Elements(counts, comps)
    for descending in (True, False):
        m = Momenta(comps)
        m.set_jet_axis(axis, elements.jet_index())
        key = DERIVED.get(var)(m)
        expected = reps.order_within_jets(counts, np.abs(key) if absolute else key, descending) is None
        m = Momenta(comps)
        m.set_jet_axis(axis, elements.jet_index())
        got = reps._in_order_by_blocks(elements, m, (var, False, descending, absolute), "x")
        assert got == expected


def test_unusual_keys_and_inputs_leave_the_decision_to_the_whole_key(monkeypatch):
    counts, px, py = _jets(np.random.default_rng(3))
    sort = ("log_pt", False, True, False)
    zero = px.copy(), py.copy()
    zero[0][5], zero[1][5] = 0.0, 0.0  # log(0) = -inf: the NaN policy decides, on the whole key
    assert not _check(counts, *zero, sort)
    assert not _check(counts, px, py, ("px", True, True, False))  # a branch: its values are at hand
    elements = Elements(counts, {"px": px, "py": py})
    assert not reps._in_order_by_blocks(elements, None, sort, "x")  # no momenta
    monkeypatch.setattr(reps, "_KEY_BLOCKS_FROM", int(counts.sum()) + 1)
    assert not _check(counts, px, py, sort)  # too few elements: one array is cheaper
