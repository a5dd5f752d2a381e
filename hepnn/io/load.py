"""In-memory reading: :func:`load` and :func:`iterate`.

Examples
--------
>>> import hepnn.io
>>> data = hepnn.io.load("config.yaml")                   # doctest: +SKIP
>>> data["tracks"].shape, data["tracks_mask"].shape         # doctest: +SKIP
((1200, 15, 7), (1200, 15))
>>> for chunk in hepnn.io.iterate("config.yaml"):         # doctest: +SKIP
...     print(chunk["label"].shape)
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .chunks import data_config, iterate_chunks
from .jetdata import JetData
from .representations import DeferredElements, DeferredRows, ElementRows, input_kind, standardise_padded
from .labels import class_names
from .split import split_code
from ..exceptions import InputDataError
from ..preprocessing import Preprocessor
from .._memory import bound_allocator

__all__ = ["load", "iterate", "fit_preprocessing", "feature_names"]


def feature_names(config: Any) -> dict:
    """Input name -> variable names (images: channel names)."""
    config = data_config(config)
    return {n: input_kind(i).feature_names(i) for n, i in config.inputs.items()}


def iterate(config: Any, analysis: Any = None, *, split: str | int | None = None, step_size: Any = None,
            summary: dict | None = None) -> Iterator[dict]:
    """Yield chunks of selected jets as dicts of numpy arrays, before standardisation.

    Memory stays bounded by ``step_size`` (``data.step_size`` by default) whatever the input size
    (see :mod:`hepnn._memory` for the allocator settings this needs on glibc).

    Parameters
    ----------
    config : Config, DataConfig, mapping or path
    analysis : Analysis, optional
        Its ``select(jets)`` (and ``labels(jets)``) hooks are applied after the config cuts.
    split : "train", "val", "test" or None
        Keep only that split.
    step_size : int or str, optional
        Entries or bytes per chunk (overrides ``data.step_size``).
    summary : dict, optional
        Filled with ``n_files``, ``n_skipped``, ``skipped`` and ``n_jets``. A file that
        ``data.skip_bad_files`` skips part-way through gives none of its jets, as in
        :func:`load`: with that option each file's chunks are held back until the file has been
        read to the end (memory: one file's chunks).

    Yields
    ------
    dict
        Same keys as :func:`load`.
    """
    bound_allocator()
    code = None if split is None else split_code(split)
    yield from iterate_chunks(config, analysis, step_size=step_size, summary=summary, split=code)


def fit_preprocessing(config: Any, analysis: Any = None, chunks: Any = None):
    """Fit a :class:`hepnn.preprocessing.Preprocessor` on the training split, streaming."""
    config = data_config(config)
    pre = Preprocessor.from_config(config)
    pre.reset()
    for chunk in chunks if chunks is not None else iterate(config, analysis, split="train"):
        pre.partial_fit(_fit_rows(config, chunk, pre))
    if not hasattr(pre, "mean_"):
        pre.partial_fit({})
    return pre


def _fit_rows(config: Any, chunk: dict, pre: Preprocessor) -> dict:
    """The values the standardisation is fitted on: flat inputs (and images with per-pixel
    standardisation) of training jets, and only the real elements of sequence inputs (as
    length-1 sequences), so padded slots are never copied. Inputs with nothing to standardise
    (``pre.fits``) are left out."""
    train = chunk["split"] == 0
    out = {}
    for name, inp in config.inputs.items():
        if pre.fits(name):
            out.update(input_kind(inp).fit_rows(name, inp, chunk, train))
    return out


def _kept(chunks: list[dict], key: str) -> int:
    """The real (kept) elements of input ``key`` over ``chunks``."""
    return sum(int(np.minimum(c[key].counts, c[key].max_length).sum()) for c in chunks)


def _padded_first(chunks: list[dict], pre: Preprocessor, transform: bool) -> dict:
    """Pad the sequence inputs the reader deferred (``DeferredElements``: features element by
    element, computed straight into their rows) into one array each, before the fit: input key
    -> ``(x, mask)``. Each chunk then holds its rows of them as a padded chunk does (the fit
    selects the real slots of its training jets). An input with abs/log/clip transforms to apply
    stays unpadded (its elements computed, :func:`_assembled` transforms them before padding)."""
    out = {}
    for key in list(chunks[0]):
        if not any(isinstance(chunk[key], DeferredElements) for chunk in chunks):
            continue
        if transform and pre.has_transforms(key):
            for chunk in chunks:
                if isinstance(chunk[key], DeferredElements):
                    chunk[key] = chunk[key].rows()
            continue
        sizes = [len(chunk[key]) for chunk in chunks]
        rows, first = np.cumsum([0, *sizes]).tolist(), chunks[0][key]
        x = np.empty((rows[-1], first.max_length, first.n_features), dtype=np.float32)
        mask = np.empty((rows[-1], first.max_length), dtype=bool)
        for i, chunk in enumerate(chunks):
            value, view = chunk[key], (x[rows[i]:rows[i + 1]], mask[rows[i]:rows[i + 1]])
            if isinstance(value, DeferredElements):
                value.fill(view)
            else:  # a chunk the reader did not defer (jets out of order): its elements padded
                value.pad(out=view)
            chunk[key], chunk[f"{key}_mask"] = view
        out[key] = x, mask
    return out


def _assembled(chunks: list[dict], pre: Preprocessor, transform: bool, padded: dict | None = None) -> dict:
    """The arrays of ``chunks`` (unpadded, from the reader) as one array per key for all their jets,
    keys in the reader's order: every sequence input (``ElementRows``) padded, transformed first
    with ``transform``, and every deferred input (``DeferredRows``) built, chunk by chunk straight
    into its rows of the one array (no array per chunk, no concatenation: fewer fresh pages,
    which cost more than the arithmetic); the other arrays concatenated and, with ``transform``,
    transformed. Each chunk's arrays are let go once written. ``padded`` (from
    :func:`_padded_first`): inputs already in one array, standardised here in place."""
    sizes = [len(chunk["label"]) for chunk in chunks]
    n_jets, rows = sum(sizes), np.cumsum([0, *sizes]).tolist()
    out: dict = {}
    element_keys = set()
    padded = padded or {}
    masks = {f"{key}_mask" for key in padded}
    for key in list(chunks[0]):
        if key in masks:  # written with its input
            continue
        first = chunks[0][key]
        if key in padded:
            x, mask = out[key], out[f"{key}_mask"] = padded[key]
            affine = pre.affine(key, x.shape[-1], n_values=lambda: int(np.count_nonzero(mask))) if transform else None
            if affine is not None and (affine[0].any() or (affine[1] != 1).any()):
                standardise_padded(x, mask, *affine)  # (x - mean) / scale in float64, as when padded
            element_keys.add(key)
            for chunk in chunks:
                del chunk[key], chunk[f"{key}_mask"]
            continue
        if isinstance(first, ElementRows):
            n_features = first.n_features
            x = np.empty((n_jets, first.max_length, n_features), dtype=np.float32)
            mask = np.empty((n_jets, first.max_length), dtype=bool)
            # (a standardised input whose fit saw none of its elements is an error when these jets have some)
            affine = pre.affine(key, n_features, n_values=lambda: _kept(chunks, key)) if transform else None
            for i, chunk in enumerate(chunks):
                value, view = chunk.pop(key), (x[rows[i]:rows[i + 1]], mask[rows[i]:rows[i + 1]])
                if affine is not None:  # standardised while padded, in one pass
                    value.pad(*affine, out=view)
                    continue
                if transform:
                    # rows past max_length are transformed too (unchecked) and dropped by the padding
                    value = value.with_features(pre.transform_elements(key, value.features, value.kept()))
                value.pad(out=view)
            out[key], out[f"{key}_mask"] = x, mask
            element_keys.add(key)
        elif (deferred := next((c[key] for c in chunks if isinstance(c[key], DeferredRows)), None)) is not None:
            # a kind may defer some chunks and build others (images: by the chunk's elements per jet,
            # so a chunk without jets defers and the next may not): every chunk goes into the one array
            x = np.empty((n_jets, *deferred.shape), dtype=deferred.dtype)
            for i, chunk in enumerate(chunks):
                value = chunk.pop(key)
                if isinstance(value, DeferredRows):
                    value.fill(x[rows[i]:rows[i + 1]])
                else:
                    x[rows[i]:rows[i + 1]] = value
            out[key] = x
        else:
            parts = [chunk.pop(key) for chunk in chunks]
            out[key] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if transform:
        out.update(pre.transform({k: v for k, v in out.items() if k not in element_keys}))
    return out


def load(config: Any, analysis: Any = None, *, standardize: bool = True, step_size: Any = None) -> JetData:
    """Read every selected jet into memory, transformed and standardised.

    Parameters
    ----------
    config : Config, DataConfig, mapping or path
        Relative file paths resolve against ``data.directory`` (the config file's folder).
    analysis : Analysis, optional
        Its ``select(jets)`` hook (jets: dict of jet-level arrays keyed by branch) filters jets.
    standardize : bool
        Apply the transforms and the standardisation fitted on the training split
        (``False``: raw values, ``preprocessing`` still fitted).
    step_size : int or str, optional
        Chunk size used while reading.

    Returns
    -------
    JetData
        Keys ``<input>``, ``<input>_mask``, ``label``, ``weight``, ``split``, ``spec_<var>``.

    Raises
    ------
    InputDataError
        For missing files, trees or branches, unreadable files, NaN values, bad links.

    Examples
    --------
    >>> data = load("config.yaml")            # doctest: +SKIP
    >>> data.split("train")["label"].mean()   # doctest: +SKIP
    0.5
    """
    config = data_config(config)
    bound_allocator()  # the same allocator whether or not the process streamed before
    summary: dict = {}
    # sequence inputs stay unpadded until fitted and standardised: those passes see the real elements only
    # by file: the chunks read from a file that data.skip_bad_files skips part-way through are dropped
    by_file: dict[int, list[dict]] = {}
    for index, chunk in iterate_chunks(config, analysis, step_size=step_size, summary=summary, pad=False,
                                       whole_files=True):
        if chunk is None:
            by_file.pop(index, None)
        else:
            by_file.setdefault(index, []).append(chunk)
    chunks = [chunk for index in sorted(by_file) for chunk in by_file[index]]
    del by_file
    if not chunks or sum(len(chunk["label"]) for chunk in chunks) == 0:
        msg = (
            f"no jets selected from {summary.get('n_files', 0)} file(s) "
            f"({summary.get('n_skipped', 0)} skipped): check data.cuts, data.label and the analysis' select"
        )
        raise InputDataError(msg)
    pre = Preprocessor.from_config(config)
    transform = standardize and not pre.is_identity()  # the reader's arrays are already what an identity gives
    padded = _padded_first(chunks, pre, transform)
    # fitted on the chunks as on their concatenation, to the last bit
    pre.fit_parts([_fit_rows(config, chunk, pre) for chunk in chunks])
    arrays = _assembled(chunks, pre, transform, padded)
    del chunks
    return JetData(arrays, preprocessing=pre, feature_names=feature_names(config),
                   class_names=class_names(config, labels=arrays["label"]), summary=summary)
