"""Batch-job templates: SLURM (one node, several nodes, prediction) and HTCondor.

Every training template reruns the same ``hepnn train CONFIG --out RUN_DIR`` when the
job is preempted or reaches its time limit (SLURM ``--requeue`` with a signal trap;
HTCondor ``checkpoint_exit_code``), and ``hepnn train`` on an existing run directory
resumes from its checkpoint. The prediction template reruns ``hepnn predict``, which
skips files already scored.

Examples
--------
>>> from hepnn.scale import render
>>> text = render("slurm", config="top.yaml", out="runs/top")
>>> "CONFIG=top.yaml" in text and 'hepnn train "$CONFIG" --out "$RUN_DIR"' in text
True
"""

from __future__ import annotations

import os
import re
import shlex
from importlib import resources
from pathlib import Path

__all__ = ["TEMPLATES", "render", "write"]

#: template name -> (main file, extra files written beside it)
TEMPLATES = {
    "slurm": ("slurm_train.sh", ()),
    "slurm-multinode": ("slurm_multinode_train.sh", ()),
    "htcondor": ("htcondor_train.sub", ("htcondor_train.sh",)),
    "slurm-predict": ("slurm_predict.sh", ()),
}

_DEFAULTS = {
    "config": "config.yaml", "out": "runs/my_run", "run_dir": "runs/my_run", "files": "data/*.root",
    "nodes": 2, "gpus": 1, "workers": 4, "time": "04:00:00", "partition": None, "account": None,
}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_UNQUOTED = {"files", "sbatch_extra", "script", "seconds", "nodes", "gpus", "workers", "time"}


def _template_text(filename: str) -> str:
    return resources.files("hepnn.scale").joinpath("templates", filename).read_text()


def _seconds(wall: str) -> int:
    parts = [int(p) for p in str(wall).replace("-", ":").split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    if "-" in str(wall):  # D-HH:MM:SS
        days, rest = str(wall).split("-", 1)
        return int(days) * 86400 + _seconds(rest)
    return total if len(parts) > 1 else parts[0] * 60


def _values(name: str, values: dict) -> dict:
    unknown = sorted(set(values) - set(_DEFAULTS))
    if unknown:
        msg = f"render({name!r}): unknown value(s) {unknown}; valid: {sorted(_DEFAULTS)}"
        raise TypeError(msg)
    merged = {**_DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
    extra = []
    if merged["partition"]:
        extra.append(f"#SBATCH --partition={merged['partition']}")
    if merged["account"]:
        extra.append(f"#SBATCH --account={merged['account']}")
    merged["sbatch_extra"] = "\n".join(extra)
    merged["seconds"] = _seconds(merged["time"])
    merged["script"] = TEMPLATES[name][0]
    return merged


def _fill(text: str, values: dict, shell: bool) -> str:
    def one(match: re.Match) -> str:
        key = match.group(1)
        value = values[key]
        text = str(value)
        if shell and key not in _UNQUOTED:
            return shlex.quote(text)
        return text

    return _PLACEHOLDER.sub(one, text)


def render(name: str, **values) -> str:
    """The text of job template ``name`` with paths and resources filled in.

    Parameters
    ----------
    name : str
        ``slurm``, ``slurm-multinode``, ``htcondor`` (the ``.sub`` file; its wrapper
        ``htcondor_train.sh`` is written by :func:`write`) or ``slurm-predict``.
    **values
        ``config``, ``out``, ``run_dir``, ``files`` (space-separated, globs allowed),
        ``nodes``, ``gpus``, ``workers``, ``time`` (``HH:MM:SS``), ``partition``, ``account``.

    Examples
    --------
    >>> text = render("slurm-multinode", config="c.yaml", out="runs/c", nodes=4)
    >>> "#SBATCH --nodes=4" in text and "--requeue" in text
    True
    """
    if name not in TEMPLATES:
        from ..exceptions import UnknownNameError

        raise UnknownNameError(name, "job template", TEMPLATES)
    main, _ = TEMPLATES[name]
    return _fill(_template_text(main), _values(name, values), shell=main.endswith(".sh"))


def write(name: str, directory: str | os.PathLike, **values) -> list[Path]:
    """Write template ``name`` (and its wrapper, for ``htcondor``) into ``directory``; shell scripts executable."""
    from .._fileio import atomic_write_text

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    merged = _values(name, values)
    main, extra = TEMPLATES[name]
    out = []
    for filename in (main, *extra):
        path = atomic_write_text(directory / filename, _fill(_template_text(filename), merged, filename.endswith(".sh")))
        if filename.endswith(".sh"):
            path.chmod(0o755)
        out.append(path)
    return out
