"""Layouts: the offsets shortcut of flatten_jagged gives what ak.num and ak.flatten give."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.io.layouts import _counts_and_flat, flatten_jagged, group_by_jet


def _cases():
    base = ak.Array([[1.5, 2.5], [], [3.5, -0.0, 4.5], [5.5]])
    yield "list-offset", base
    yield "sliced (offsets not from 0)", base[1:3]
    yield "float32", ak.values_astype(base, np.float32)
    yield "list (starts, stops)", ak.Array(ak.contents.ListArray(
        ak.index.Index64(np.array([2, 0, 3])), ak.index.Index64(np.array([4, 2, 3])),
        ak.contents.NumpyArray(np.arange(5, dtype=np.int32))))
    yield "empty", base[:0]


@pytest.mark.parametrize(("what", "column"), list(_cases()), ids=[c[0] for c in _cases()])
def test_counts_and_flat_equal_num_and_flatten(what, column):
    counts, flat = _counts_and_flat(column)
    expected_counts = ak.to_numpy(ak.num(column, axis=1)).astype(np.int64)
    expected_flat = ak.to_numpy(ak.flatten(column, axis=1))
    assert counts.dtype == np.int64 and flat.dtype == expected_flat.dtype
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(flat.view(np.uint8), expected_flat.view(np.uint8))


def test_flatten_jagged_of_a_record_array():
    arrays = ak.Array({"a": [[1.0, 2.0], [3.0]], "b": [[4, 5], [6]]})[1:]
    counts, flat = flatten_jagged(arrays, ["a", "b"], "f.root", "test", 0)
    assert counts.tolist() == [1] and flat["a"].tolist() == [3.0] and flat["b"].tolist() == [6]


def _old_group_by_jet(jet_of, arrays, n_jets):
    """The grouping as it was: always a stable argsort and a gather of every array."""
    attached = np.flatnonzero(jet_of >= 0)
    source = attached[np.argsort(jet_of[attached], kind="stable")]
    return np.bincount(jet_of[attached], minlength=n_jets), {k: v[source] for k, v in arrays.items()}


@pytest.mark.parametrize("order", ["grouped", "grouped with unattached first", "shuffled", "shuffled with unattached", "empty"])
def test_group_by_jet_equals_the_sorting_grouping(order):
    rng = np.random.default_rng(5)
    jet_of = np.repeat(np.arange(6), rng.integers(0, 5, 6))
    if "unattached" in order:
        jet_of = np.concatenate([[-1, -1], jet_of])
    if "shuffled" in order:
        jet_of = jet_of[rng.permutation(len(jet_of))]
    if order == "empty":
        jet_of = jet_of[:0]
    arrays = {"pt": rng.random(len(jet_of)), "link": jet_of.astype(np.int32)}
    elements = group_by_jet(jet_of, arrays, 7)
    counts, expected = _old_group_by_jet(jet_of, arrays, 7)
    np.testing.assert_array_equal(elements.counts, counts)
    for k in arrays:
        np.testing.assert_array_equal(elements.arrays[k], expected[k])
    # selections compose: the same as selecting from gathered arrays
    keep = np.arange(7) % 2 == 0
    np.testing.assert_array_equal(elements.select(keep).arrays["pt"], expected["pt"][np.repeat(keep, counts)])
