"""sort_within_jets: the fast float32-packed sort equals an exact stable sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hepnn.io.representations import order_within_jets, sort_within_jets


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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(keys, max_size=7), st.booleans()), max_size=8), st.booleans())
def test_jets_already_in_order_are_not_sorted_but_give_the_same_order(jets, descending):
    # most jets stored in order (as files store constituents by pT), some not: the per-jet
    # shortcut (order_within_jets) must give exactly the exact stable sort
    lists = []
    for values, in_order in jets:
        k = np.asarray(values, dtype=np.float64)
        if in_order:
            k = k[reference(np.array([len(k)]), k, descending)]
        lists.append(k)
    counts = np.array([len(k) for k in lists], dtype=np.int64)
    key = np.concatenate(lists) if lists else np.zeros(0)
    expected = reference(counts, key, descending)
    np.testing.assert_array_equal(sort_within_jets(counts, key, descending), expected)
    order = order_within_jets(counts, key, descending)
    if order is None:
        np.testing.assert_array_equal(expected, np.arange(len(key)))
    else:
        np.testing.assert_array_equal(order, expected)


def test_order_within_jets_sorts_only_the_jets_out_of_order():
    counts = np.array([3, 2, 0, 3])
    key = np.array([5.0, 4.0, 4.0, 1.0, 2.0, np.nan, 7.0, 6.0])  # jet 1 out of order; NaN goes last
    assert order_within_jets(counts, key, descending=True).tolist() == [0, 1, 2, 4, 3, 6, 7, 5]
    # -0.0 and 0.0 are a tie, and the step down between two jets is no disorder
    assert order_within_jets(np.array([2, 3]), np.array([5.0, 6.0, -0.0, 0.0, 1.0]), descending=False) is None
