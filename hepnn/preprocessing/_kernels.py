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

__all__ = ["column_moments", "column_sums", "column_m2"]


@jit
def column_sums(rows, select, selected, sums):  # pragma: no cover - compiled
    """Add the rows of the 2-d ``rows`` (float32 or float64) where ``select`` is True
    (``selected``; else all) to ``sums`` (float64, per column), in row order; return how many."""
    n_rows, f = rows.shape
    n = 0
    for i in range(n_rows):
        if selected and not select[i]:
            continue
        n += 1
        for q in range(f):
            sums[q] += np.float64(rows[i, q])
    return n


@jit
def column_m2(rows, select, selected, mean, m2):  # pragma: no cover - compiled
    """Add ``(x - mean)**2`` of the selected rows to ``m2`` (float64, per column), in row order."""
    n_rows, f = rows.shape
    for i in range(n_rows):
        if selected and not select[i]:
            continue
        for q in range(f):
            d = np.float64(rows[i, q]) - mean[q]
            m2[q] += d * d


@jit
def column_moments(rows, select, selected):  # pragma: no cover - compiled
    """``(mean, m2)`` per column of the 2-d ``rows`` (float32 or float64) in float64, over the
    rows where ``select`` is True (``selected``; else all): ``mean = sum / n``,
    ``m2 = sum (x - mean)**2``, sums in row order (numpy's sums of the gathered rows).
    Several arrays one after the other give the moments of their concatenation with
    :func:`column_sums` over all of them, then :func:`column_m2`."""
    f = rows.shape[1]
    sums = np.zeros(f)
    n = column_sums(rows, select, selected, sums)
    mean = sums / n
    m2 = np.zeros(f)
    column_m2(rows, select, selected, mean, m2)
    return mean, m2
