"""Training checkpoints as arrays: the variables of the model being trained and of its optimiser.

A Keras ``.keras`` file holds the architecture, the compile arguments and the weights: a zip
of JSON and HDF5 that takes 50-200 ms to write for the demo's models (more than an epoch of
the small ones), and the trainer wrote one at every epoch. A checkpoint needs only the
variables: a resumed run builds its model from the run's config anyway, exactly as the
interrupted run did. So a checkpoint is one ``.npz`` file (5-30 ms) holding every variable of
the model being trained (weights, batch-normalisation statistics, random-seed states, the
decorrelation wrapper's adversary) and, for resuming, of its optimiser (step count,
learning rate, moments), with a manifest of their paths, shapes and dtypes. Restoring checks
the manifest against the rebuilt model, so a checkpoint written for another architecture is
a clear error, not weights poured into the wrong layers.

The values are stored as they are (no conversion), so a restored run continues bit for bit.

Examples
--------
>>> import keras, tempfile
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
>>> path = save_variables(tempfile.mkdtemp() + "/last-000001.npz", model, optimizer=False)
>>> other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
>>> restore_variables(path, other, optimizer=False)
>>> all((a == b).all() for a, b in zip(model.get_weights(), other.get_weights()))
True
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import atomic_path
from ..exceptions import InputDataError

__all__ = ["save_variables", "restore_variables", "checkpoint_variables", "SUFFIX"]

#: the file suffix of an array checkpoint (``last-NNNNNN.npz``, ``best.weights.npz``)
SUFFIX = ".npz"
_MANIFEST = "manifest"


def checkpoint_variables(model: Any, optimizer: bool = True) -> dict[str, list]:
    """The variables a checkpoint holds, by group: ``model`` and, with ``optimizer``, ``optimizer``."""
    groups = {"model": list(model.variables)}
    if optimizer:
        opt = getattr(model, "optimizer", None)
        groups["optimizer"] = list(opt.variables) if opt is not None else []
    return groups


def _describe(variables: list) -> list[dict]:
    return [{"path": str(getattr(v, "path", getattr(v, "name", ""))), "shape": [int(d) for d in v.shape],
             "dtype": str(np.dtype(_dtype(v)))} for v in variables]


def _dtype(variable: Any) -> Any:
    dtype = getattr(variable, "dtype", None)
    return getattr(dtype, "as_numpy_dtype", dtype)


def save_variables(path: str | os.PathLike, model: Any, optimizer: bool = True) -> Path:
    """Write the variables of ``model`` (and of its optimiser) to ``path`` atomically; return ``path``."""
    groups = checkpoint_variables(model, optimizer)
    arrays, manifest = {}, {}
    for group, variables in groups.items():
        manifest[group] = _describe(variables)
        for i, var in enumerate(variables):
            arrays[f"{group}_{i:06d}"] = np.asarray(var.numpy())
    arrays[_MANIFEST] = np.asarray(json.dumps(manifest))
    path = Path(path)
    with atomic_path(path, suffix=".part" + SUFFIX) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def restore_variables(path: str | os.PathLike, model: Any, optimizer: bool = True) -> None:
    """Assign the variables saved in ``path`` to ``model`` (and its optimiser), checking that they match.

    Raises
    ------
    InputDataError
        When the file is unreadable, or its variables differ in number, shape or dtype from
        those of ``model``: the checkpoint was written for another model.
    """
    path = Path(path)
    fix = (f"remove {path.parent} to restart the run from epoch 1, or resume with the config the run "
           "was started with")
    try:
        with np.load(path, allow_pickle=False) as f:
            saved = {k: f[k] for k in f.files}
        manifest = json.loads(str(saved.pop(_MANIFEST)))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        msg = f"{path}: the checkpoint is unreadable ({err}); {fix}"
        raise InputDataError(msg) from None
    groups = checkpoint_variables(model, optimizer)
    for group, variables in groups.items():
        was, now = manifest.get(group, []), _describe(variables)
        if len(was) != len(now):
            msg = (f"{path}: the checkpoint holds {len(was)} {group} variables, the model being resumed has "
                   f"{len(now)}: it was written for another model; {fix}")
            raise InputDataError(msg)
        for a, b in zip(was, now):
            if a["shape"] != b["shape"] or a["dtype"] != b["dtype"]:
                msg = (f"{path}: {group} variable {a['path']} was saved as {a['dtype']} {tuple(a['shape'])}, the "
                       f"model being resumed has {b['path']} as {b['dtype']} {tuple(b['shape'])}: it was written "
                       f"for another model; {fix}")
                raise InputDataError(msg)
    for group, variables in groups.items():
        for i, var in enumerate(variables):
            var.assign(saved[f"{group}_{i:06d}"])
