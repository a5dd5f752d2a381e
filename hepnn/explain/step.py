"""The ``explain`` step of ``hepnn run``: every configured explainer on every run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..config import load_config
from ..runs.spec import load_spec
from ..training.evaluate import load_run_data, prediction_key, split_data
from ..training.kfold import fold_runs, is_kfold_run
from ..training.rundir import RunDirectory
from ..training.step import run_dirs
from . import run
from .registry import applies
from .views import store_views, wanted_views

__all__ = ["explain_step"]


def explain_step(analysis, out_dir: Path, log=print,
                 variants: Iterable[str] | None = None) -> dict[str, dict[str, Path]]:
    """Run ``analysis.config.explain.methods`` on each run of ``analysis`` (``variants``: only these);
    skip those that do not apply. A k-fold run's fold models are explained one by one (``<name>/fold<k>``).

    The data are read once for all runs sharing them, and each run's model is loaded
    (and its functions compiled) once for all its explainers. The looks inside the model
    that the report draws (:mod:`hepnn.explain.views`) are stored in the run folder too.
    """
    written: dict[str, dict[str, Path]] = {}
    cache: dict = {}
    for name, run_dir in run_dirs(analysis, out_dir, variants).items():
        runs = {name: Path(run_dir)}
        if is_kfold_run(run_dir):  # each fold model on its own fold's jets (load_run_data gives a fold run those)
            runs = {f"{name}/fold{k}": path for k, path in enumerate(fold_runs(run_dir))}
        for label, path in runs.items():
            written[label] = {m: path / "explain" / m for m in _explain_one(analysis, label, path, cache, log)}
    return written


def _explain_one(analysis, name: str, run_dir: Path, cache: dict, log) -> list[str]:
    """The configured explainers and the report's views of one run (one model); the methods run."""
    target = run.run_target(run_dir)
    config = load_config(RunDirectory(run_dir).config)
    data = None
    done = []
    for method in analysis.config.explain.methods:
        reason = applies(method, target)
        if reason:
            log(f"[{analysis.name}] {name}: skipping explainer {method!r}: {reason}")
            continue
        if data is None:
            data = load_run_data(run_dir, config, analysis, cache=cache)
        expl = run.explain_run(run_dir, method, data=data, target=target)
        log(f"[{analysis.name}] {name}: {method} on {expl.n_jets} jets in {expl.extra.get('seconds', 0):.1f} s")
        done.append(method)
    # the looks inside the model the report draws, while the model is loaded (hepnn.explain.views)
    wanted = wanted_views(target.model, target.task, load_spec(run_dir, config))
    key = prediction_key(run_dir, config, analysis) if wanted else None
    if key:
        if data is None:
            data = load_run_data(run_dir, config, analysis, cache=cache)
        stored = store_views(run_dir, target.model, split_data(run_dir, "test", data=data), key)
        if stored:
            log(f"[{analysis.name}] {name}: {', '.join(stored)} stored for the report")
    return done
