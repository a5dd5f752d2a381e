"""``hepnn convert``: read once, write ``train.npz``, ``val.npz``, ``test.npz``.

Each file holds plain numpy arrays (no pickled objects), the same keys as
:func:`hepnn.io.load`: one array per input, ``<name>_mask`` beside each sequence,
``label``, ``weight`` and ``spec_<var>``, jets in file order, already transformed and
standardised with ``preprocessing.json`` (fitted on the training split). The resolved
config is written as ``config.yaml``.

Examples
--------
>>> from hepnn.io import convert
>>> convert("config.yaml", "converted/")      # doctest: +SKIP
{'train': 7012, 'val': 1003, 'test': 1985}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import atomic_path
from .load import load
from .split import SPLITS

__all__ = ["convert", "read_npz"]


def convert(config: Any, out: str | os.PathLike, analysis: Any = None) -> dict:
    """Convert the config's data into ``out/{train,val,test}.npz`` plus metadata.

    Returns
    -------
    dict
        Jets written per split.
    """
    from ..config import Config, load_config, save_config

    full = config if isinstance(config, Config) else load_config(config)
    data = load(full, analysis)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in SPLITS:
        part = data.split(name)
        arrays = {k: np.ascontiguousarray(v) for k, v in part.items() if k != "split"}
        with atomic_path(out / f"{name}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        counts[name] = part.n_jets
    data.preprocessing.save(out / "preprocessing.json")
    save_config(full, out / "config.yaml")
    return counts


def read_npz(path: str | os.PathLike) -> dict:
    """Read a converted split back (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
