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

from .._faults import fault
from .._fileio import atomic_path, flush_folder
from ..config import Config, load_config, save_config
from ..outdir import claim
from .load import load
from .split import SPLITS

__all__ = ["convert", "read_npz", "recover"]


OUTPUTS = ("train.npz", "val.npz", "test.npz", "preprocessing.json", "config.yaml")
STAGING = ".convert.part"  # the new set is written here first
STAGED = ".staged"  # written into STAGING once the new set is complete


def convert(config: Any, out: str | os.PathLike, analysis: Any = None, force: bool = False) -> dict:
    """Convert the config's data into ``out/{train,val,test}.npz`` plus metadata.

    ``out`` is claimed for hepnn and locked (see :mod:`hepnn.outdir`): a folder holding
    other files is refused unless ``force``. The new files are written into
    ``out/.convert.part/`` and moved into place only once all of them are complete, so
    a killed conversion leaves the previous set untouched; a kill during the final
    renames is completed (rolled forward) by the next ``convert`` into ``out``.

    Returns
    -------
    dict
        Jets written per split.
    """
    full = config if isinstance(config, Config) else load_config(config)
    with claim(out, "convert", force=force) as out:
        recover(out)
        data = load(full, analysis)
        staging = out / STAGING
        staging.mkdir(mode=0o777)
        counts = {}
        for name in SPLITS:
            part = data.split(name)
            arrays = {k: np.ascontiguousarray(v) for k, v in part.items() if k != "split"}
            with atomic_path(staging / f"{name}.npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            counts[name] = part.n_jets
            fault("convert-split", {"split": name})
        data.preprocessing.save(staging / "preprocessing.json")
        save_config(full, staging / "config.yaml")
        flush_folder(staging)  # the staged files' names (their data flushed as each was written)
        (staging / STAGED).write_text("complete\n")
        flush_folder(staging)  # the staged files' names (their data flushed as each was written)
        fault("convert-staged", {})
        _swap(out)
    return counts


def recover(out: str | os.PathLike) -> None:
    """Finish or discard what a killed ``convert`` left in ``out``: a complete staged set
    is moved into place, an incomplete one is removed."""
    import shutil

    staging = Path(out) / STAGING
    if not staging.is_dir():
        return
    if (staging / STAGED).is_file():
        _swap(Path(out))
    else:
        shutil.rmtree(staging)


def _swap(out: Path) -> None:
    import shutil

    staging = out / STAGING
    for name in OUTPUTS:
        if (staging / name).is_file():
            os.replace(staging / name, out / name)
            fault("convert-swap", {"file": name})
    flush_folder(out)  # the renames
    shutil.rmtree(staging)


def read_npz(path: str | os.PathLike) -> dict:
    """Read a converted split back (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
