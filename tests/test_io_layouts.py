"""Layouts: the offsets shortcut of flatten_jagged gives what ak.num and ak.flatten give."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.io.layouts import _counts_and_flat, flatten_jagged


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
