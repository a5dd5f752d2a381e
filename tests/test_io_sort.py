"""sort_within_jets: the fast float32-packed sort equals an exact stable sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hepnn.io.representations import sort_within_jets


def reference(counts, key, descending):
    """Exact: jet by jet, a stable sort of the float64 keys (NaN last)."""
    out, start = [], 0
    for c in counts:
        k = np.asarray(key[start:start + c], dtype=np.float64)
        k = -k if descending else k
        k = np.where(np.isnan(k), np.inf, k)
        out.extend(start + np.argsort(k, kind="stable"))
        start += c
    return np.asarray(out, dtype=np.int64)


keys = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    # values that round to the same float32 but differ in float64 (the slow path must catch them)
    st.sampled_from([1.0, 1.0 + 2.0**-40, 1.0 - 2.0**-40, 0.0, -0.0, 3.5, 3.5 + 2.0**-30, 1e300, -1e300]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(keys, max_size=7), max_size=6), st.booleans())
def test_equals_exact_stable_sort(jets, descending):
    counts = np.array([len(j) for j in jets], dtype=np.int64)
    key = np.array([v for j in jets for v in j], dtype=np.float64)
    np.testing.assert_array_equal(sort_within_jets(counts, key, descending), reference(counts, key, descending))


def test_near_ties_keep_float64_order():
    # all three round to float32 1.0; the exact order must still hold
    key = np.array([1.0, 1.0 + 2.0**-40, 1.0 - 2.0**-40, 1.0])
    assert sort_within_jets(np.array([4]), key, descending=True).tolist() == [1, 0, 3, 2]
    assert sort_within_jets(np.array([4]), key, descending=False).tolist() == [2, 0, 3, 1]
