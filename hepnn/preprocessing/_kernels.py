"""Compiled loops of the standardisation fit (numba, see :mod:`hepnn._numba`).

``column_moments`` gives what :meth:`hepnn.preprocessing.Preprocessor.partial_fit` computes
with numpy on a float64 copy of the rows (``mean(axis=0)``, then the sum of squared
deviations), to the last bit, without gathering or copying the rows: numpy adds the rows of a C-contiguous
``(n, f)`` array with ``f >= 2`` one after the other for every column, as these loops do
(a single column it sums pairwise, so ``f == 1`` stays with numpy).
``tests/test_preprocessing_kernels.py`` compares them.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit

__all__ = ["column_moments"]


@jit
def column_moments(rows, select, selected):  # pragma: no cover - compiled
    """``(mean, m2)`` per column of the 2-d ``rows`` (float32 or float64) in float64, over the
    rows where ``select`` is True (``selected``; else all): ``mean = sum / n``,
    ``m2 = sum (x - mean)**2``, sums in row order (numpy's sums of the gathered rows)."""
    n_rows, f = rows.shape
    sums = np.zeros(f)
    n = 0
    for i in range(n_rows):
        if selected and not select[i]:
            continue
        n += 1
        for q in range(f):
            sums[q] += np.float64(rows[i, q])
    mean = sums / n
    m2 = np.zeros(f)
    for i in range(n_rows):
        if selected and not select[i]:
            continue
        for q in range(f):
            d = np.float64(rows[i, q]) - mean[q]
            m2[q] += d * d
    return mean, m2
