"""ShuffleBuffer: every row exactly once, whole batches, uniform selection."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hepnn.io.stream import ShuffleBuffer


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 8), st.lists(st.integers(0, 30), max_size=12), st.integers(0, 2**32 - 1))
def test_every_row_leaves_exactly_once_in_whole_batches(capacity, batch_size, sizes, seed):
    capacity = max(capacity, batch_size)
    buf = ShuffleBuffer(capacity, np.random.default_rng(seed))
    seen, start = [], 0
    for m in sizes:
        rows = np.arange(start, start + m)
        start += m
        out = buf.add({"x": rows, "y": np.stack([rows, -rows], axis=1).astype(np.float32)}, batch_size)
        if out is not None:
            assert len(out["x"]) % batch_size == 0 and len(out["x"]) > 0
            np.testing.assert_array_equal(out["y"][:, 0], out["x"])  # fields stay aligned
            assert len(buf) >= capacity - batch_size
            seen.extend(out["x"].tolist())
        assert len(buf) + len(seen) == start
    rest = buf.drain()
    if rest is not None:
        np.testing.assert_array_equal(rest["y"][:, 1], -rest["x"])
        seen.extend(rest["x"].tolist())
    assert sorted(seen) == list(range(start)) and len(buf) == 0


def test_each_waiting_row_is_equally_likely_to_leave():
    # capacity 10, batches of 2, chunks of 5: the third add returns 4 of the 13 rows then
    # waiting; every waiting row (whatever chunk it came in, whatever hole it filled) must
    # leave with p = 4/13
    left = np.zeros(15)
    waiting = np.zeros(15)
    for seed in range(3000):
        buf = ShuffleBuffer(10, np.random.default_rng(seed))
        gone = set()
        for c in range(3):
            if c == 2:
                for row in set(range(15)) - gone:
                    waiting[row] += 1
            out = buf.add({"x": np.arange(5 * c, 5 * c + 5)}, 2)
            if c < 2 and out is not None:
                gone.update(out["x"].tolist())
        left[out["x"]] += 1
    p = left / waiting
    sd = np.sqrt((4 / 13) * (9 / 13) / waiting)
    assert np.all(np.abs(p - 4 / 13) < 5 * sd), p
