"""The ``report`` step of ``hepnn run``: one combined report of an analysis' runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["report_step", "read_baselines"]


def read_baselines(path: str | Path) -> dict[str, tuple]:
    """Baseline scores from ``baselines.npz`` (``scores_<name>``, ``labels_<name>``) or ``baselines.json``.

    The JSON form is ``{name: {"scores": [...], "labels": [...]}}``. A missing file gives ``{}``.
    """
    import numpy as np

    path = Path(path)
    if not path.is_file():
        return {}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            names = [k[len("scores_"):] for k in f.files if k.startswith("scores_")]
            return {n: (f[f"scores_{n}"], f[f"labels_{n}"]) for n in names if f"labels_{n}" in f.files}
    payload = json.loads(path.read_text())
    return {str(n): (np.asarray(v["scores"], float), np.asarray(v["labels"], int)) for n, v in payload.items()}


def report_step(
    analysis: Any,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
    extra_scores: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``OUT/report`` for every run of the analysis, with its ``plots()`` hook and any baselines.

    Baselines come from ``extra_scores`` or, when not given, from ``OUT/baselines.npz`` /
    ``OUT/baselines.json`` when such a file exists.
    """
    from ..training.rundir import RunDirectory
    from ..training.step import run_dirs
    from .report import make_report

    out_dir = Path(out_dir)
    dirs = {name: path for name, path in run_dirs(analysis, out_dir).items()}
    missing = [name for name, path in dirs.items() if not RunDirectory(path).is_trained()]
    if missing:
        msg = f"[{analysis.name}] report: runs {missing} are not trained; run the train step first"
        from ..exceptions import InputDataError

        raise InputDataError(msg)
    if extra_scores is None:
        extra_scores = {}
        for name in ("baselines.npz", "baselines.json"):
            extra_scores.update(read_baselines(out_dir / name))
    runs: Any = dirs if len(dirs) > 1 else next(iter(dirs.values()))
    report = make_report(
        runs, out=out_dir / "report", data=data, extra_scores=extra_scores or None,
        analysis=analysis, hook=analysis.plots,
    )
    log(f"[{analysis.name}] report -> {report / 'index.html'}")
    return report
