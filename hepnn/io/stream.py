"""Streaming ``tf.data`` pipeline: chunks -> split filter -> preprocessing -> shuffle -> batches.

Files are read in a seeded random order, chunks of up to ``cycle_length`` files are
interleaved, and a shuffle buffer of ``data.shuffle_buffer`` jets mixes them before
batching; memory stays bounded by the chunk size and the buffer.

Examples
--------
>>> import hepnn.io
>>> ds = hepnn.io.make_dataset("config.yaml", split="train", batch_size=256)   # doctest: +SKIP
>>> model.fit(ds, epochs=3)                                                   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .._optional import require
from .chunks import data_config, iterate_chunks
from .load import fit_preprocessing
from .sources import resolve_files
from .split import split_code

__all__ = ["make_dataset", "batches"]


def _interleave(iterators: list[Iterator[dict]]) -> Iterator[dict]:
    active = list(iterators)
    while active:
        for it in list(active):
            try:
                yield next(it)
            except StopIteration:
                active.remove(it)


def batches(config: Any, split: str | int | None = "train", batch_size: int = 256, preprocessing: Any = None,
            shuffle: bool = True, seed: int = 0, analysis: Any = None, cycle_length: int = 4,
            drop_remainder: bool = False, step_size: Any = None) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """Yield ``(inputs, label, weight)`` numpy batches (one pass over the data)."""
    config = data_config(config)
    code = None if split is None else split_code(split)
    files = resolve_files(config)
    rng = np.random.default_rng(seed)
    if shuffle:
        files = [files[i] for i in rng.permutation(len(files))]
    groups = [files[i:i + cycle_length] for i in range(0, len(files), cycle_length)] if shuffle else [files]

    def chunks() -> Iterator[dict]:
        for group in groups:
            its = [iterate_chunks(config, analysis, step_size=step_size, files=[f]) for f in group]
            if shuffle:
                yield from _interleave(its)
            else:
                for it in its:
                    yield from it

    names = list(config.inputs)
    keys = names + [f"{n}_mask" for n, i in config.inputs.items() if i.kind == "sequence"]
    buffer: dict | None = None
    capacity = max(config.shuffle_buffer, batch_size) if shuffle else batch_size
    for chunk in chunks():
        if code is not None:
            keep = chunk["split"] == code
            chunk = {k: v[keep] for k, v in chunk.items()}
        if preprocessing is not None:
            chunk = preprocessing.transform(chunk)
        chunk = {k: chunk[k] for k in keys + ["label", "weight"]}
        buffer = chunk if buffer is None else {k: np.concatenate([buffer[k], chunk[k]]) for k in keys + ["label", "weight"]}
        n = len(buffer["label"])
        if n < capacity:
            continue
        if shuffle:
            order = rng.permutation(n)
            buffer = {k: v[order] for k, v in buffer.items()}
        n_out = (n - (capacity - batch_size if shuffle else 0)) // batch_size * batch_size
        for start in range(0, n_out, batch_size):
            yield ({k: buffer[k][start:start + batch_size] for k in keys},
                   buffer["label"][start:start + batch_size], buffer["weight"][start:start + batch_size])
        buffer = {k: v[n_out:] for k, v in buffer.items()}
    if buffer is not None and len(buffer["label"]):
        if shuffle:
            order = rng.permutation(len(buffer["label"]))
            buffer = {k: v[order] for k, v in buffer.items()}
        n = len(buffer["label"])
        stop = n // batch_size * batch_size if drop_remainder else n
        for start in range(0, stop, batch_size):
            yield ({k: buffer[k][start:start + batch_size] for k in keys},
                   buffer["label"][start:start + batch_size], buffer["weight"][start:start + batch_size])


def _signature(config: Any, tf: Any) -> tuple:
    spec = {}
    for name, inp in config.inputs.items():
        if inp.kind == "flat":
            shape = (None, len(inp.variables))
        elif inp.kind == "sequence":
            shape = (None, inp.max_length, len(inp.variables))
            spec[f"{name}_mask"] = tf.TensorSpec((None, inp.max_length), tf.bool)
        else:
            shape = (None, inp.pixels, inp.pixels, len(inp.channels))
        spec[name] = tf.TensorSpec(shape, tf.float32)
    return spec, tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32)


def make_dataset(config: Any, split: str | int | None = "train", batch_size: int = 256, preprocessing: Any = "fit",
                 shuffle: bool = True, seed: int = 0, analysis: Any = None, include_masks: bool = True,
                 step_size: Any = None, drop_remainder: bool = False):
    """A ``tf.data.Dataset`` of ``(inputs_dict, label, weight)`` batches streamed from the files.

    Parameters
    ----------
    config : Config, DataConfig, mapping or path
    split : "train", "val", "test" or None (all jets)
    batch_size : int
    preprocessing : Preprocessor, "fit" or None
        Applied to every chunk; ``"fit"`` fits one on the training split first (one extra pass),
        ``None`` streams raw values.
    shuffle : bool
        Shuffle file order (per pass, from ``seed``) and jets through ``data.shuffle_buffer``.
    include_masks : bool
        Add ``<input>_mask`` for sequence inputs to the inputs dict.

    Returns
    -------
    tf.data.Dataset
        Each iteration is a fresh pass over the files (so ``model.fit(ds, epochs=n)`` works);
        batches are prefetched.
    """
    tf = require("tensorflow")
    config = data_config(config)
    if isinstance(preprocessing, str) and preprocessing == "fit":
        preprocessing = fit_preprocessing(config, analysis)
    inputs_spec, label_spec, weight_spec = _signature(config, tf)
    if not include_masks:
        inputs_spec = {k: v for k, v in inputs_spec.items() if not k.endswith("_mask") or k[:-5] not in config.inputs}
    epoch = {"n": 0}

    def generator():
        epoch["n"] += 1
        for inputs, label, weight in batches(config, split, batch_size, preprocessing, shuffle,
                                             seed + epoch["n"], analysis, step_size=step_size,
                                             drop_remainder=drop_remainder):
            yield {k: inputs[k] for k in inputs_spec}, label, weight

    ds = tf.data.Dataset.from_generator(generator, output_signature=(inputs_spec, label_spec, weight_spec))
    return ds.prefetch(tf.data.AUTOTUNE)
