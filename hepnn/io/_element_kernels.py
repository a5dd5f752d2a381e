"""Compiled loop of the padding of sequence inputs (numba, see :mod:`hepnn._numba`).

``pad_rows`` writes every slot of the padded array once: the first ``max_length``
elements of each jet (optionally standardised as ``(x - mean) / scale`` in float64, as
:meth:`hepnn.preprocessing.Preprocessor.transform_elements` does) and ``pad_value`` in
the rest, rounded to float32 like numpy's assignment. ``tests/test_io_element_kernels.py``
compares it with the numpy padding and transform bit for bit. ``standardise_slots`` standardises the real
slots of a padded array in place with the same arithmetic (what :func:`hepnn.io.load` does
to a sequence input whose features were padded as computed).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit

__all__ = ["pad_rows", "standardise_slots"]


@jit
def pad_rows(features, offsets, max_length, pad_value, mean, scale, standardise, out, first, last):  # pragma: no cover
    """Fill ``out[first:last]`` (float32 ``(n_jets, max_length, n_features)``) from the rows
    ``features[offsets[j]:offsets[j + 1]]`` of each jet ``j``."""
    n_features = features.shape[1]
    pad = np.float32(pad_value)
    for j in range(first, last):
        start = offsets[j]
        n = min(offsets[j + 1] - start, max_length)
        for k in range(n):
            for q in range(n_features):
                if standardise:
                    out[j, k, q] = np.float32((np.float64(features[start + k, q]) - mean[q]) / scale[q])
                else:
                    out[j, k, q] = np.float32(features[start + k, q])
        for k in range(n, max_length):
            for q in range(n_features):
                out[j, k, q] = pad


@jit
def standardise_slots(x, mask, mean, scale, first, last):  # pragma: no cover - compiled
    """``x[j, k] = (x[j, k] - mean) / scale`` in float64, rounded to float32, for the slots of jets
    ``first:last`` where ``mask`` is True. ``x`` is the float32 padded array as ``(n_jets,
    max_length * n_features)`` rows, ``mean`` and ``scale`` repeated for every slot
    (``max_length * n_features``): the real slots a jet starts with are one contiguous run,
    which the compiler vectorises; any real slot after its first padded one is done alone."""
    max_length = mask.shape[1]
    n_features = x.shape[1] // max_length
    for j in range(first, last):
        n = 0
        while n < max_length and mask[j, n]:
            n += 1
        for i in range(n * n_features):
            x[j, i] = np.float32((np.float64(x[j, i]) - mean[i]) / scale[i])
        for k in range(n, max_length):
            if mask[j, k]:
                for i in range(k * n_features, (k + 1) * n_features):
                    x[j, i] = np.float32((np.float64(x[j, i]) - mean[i]) / scale[i])
