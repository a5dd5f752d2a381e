"""The ``explain`` step of ``hepnn run``: every configured explainer on every run directory."""

from __future__ import annotations

from pathlib import Path

from ..models import load_model
from ..training.rundir import RunDirectory
from ..training.step import run_dirs
from . import run
from .registry import applies
from .target import Target

__all__ = ["explain_step"]


def explain_step(analysis, out_dir: Path, log=print) -> dict[str, dict[str, Path]]:
    """Run ``analysis.config.explain.methods`` on each run of ``analysis``; skip those that do not apply."""
    written: dict[str, dict[str, Path]] = {}
    for name, run_dir in run_dirs(analysis, out_dir).items():
        written[name] = {}
        model = load_model(RunDirectory(run_dir).model)
        target = Target(model)
        for method in analysis.config.explain.methods:
            reason = applies(method, target)
            if reason:
                log(f"[{analysis.name}] {name}: skipping explainer {method!r}: {reason}")
                continue
            expl = run.explain_run(run_dir, method)
            log(f"[{analysis.name}] {name}: {method} on {expl.n_jets} jets in {expl.extra.get('seconds', 0):.1f} s")
            written[name][method] = Path(run_dir) / "explain" / method
    return written
