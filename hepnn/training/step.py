"""The ``train`` and ``evaluate`` steps of ``hepnn run``.

An analysis trains one run per variant (``variants:`` in its config; the base config
when there are none) into ``OUT/<variant>/``; the data are read once and shared by
variants with the same ``data`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..config import to_dict, variant
from ..exceptions import UnknownNameError
from ..io import load
from ..io.labels import class_names
from .baseline import BDT_DIR, train_bdt
from .evaluate import evaluate_run

__all__ = ["train_step", "evaluate_step", "run_dirs"]


def run_dirs(analysis, out_dir: Path, variants: Iterable[str] | None = None) -> dict[str, Path]:
    """Variant name -> run directory (``variants``: only these, in the config's order; ``None``: all)."""
    names = list(analysis.config.variants) or ["model"]
    if variants is not None:
        wanted = list(variants)
        for name in wanted:
            if name not in names:
                raise UnknownNameError(name, "variant", names)
        names = [name for name in names if name in wanted]
    return {name: Path(out_dir) / name for name in names}


def _variant_configs(analysis, variants: Iterable[str] | None = None):
    config = analysis.config
    names = run_dirs(analysis, Path(), variants)
    if not config.variants:
        return {"model": config} if names else {}
    return {name: variant(config, name) for name in names}


def train_step(analysis, out_dir: Path, log=print, variants: Iterable[str] | None = None,
               baseline: bool = True) -> dict[str, Path]:
    """Train every variant (``variants``: only these) and, with ``baseline``, the BDT baseline."""
    cache: dict = {}
    dirs = run_dirs(analysis, out_dir, variants)
    for name, config in _variant_configs(analysis, variants).items():
        # the BDT alone (the parent of `hepnn run --jobs`) need not import TensorFlow (~7 s on 2 cores)
        # lazy: only with a network to train; keeps `import hepnn.explain.step` free of keras
        from .trainer import Trainer

        key = repr(to_dict(config.data))
        if key not in cache:
            cache[key] = load(config, analysis=analysis)
        log(f"[{analysis.name}] training {name} ({config.model.name}) -> {dirs[name]}")
        Trainer(config, analysis=analysis, log=log).fit(dirs[name], data=cache[key])
    if baseline:
        _train_baseline(analysis, out_dir, cache, log)
    return dirs


def _train_baseline(analysis, out_dir: Path, cache: dict, log) -> None:
    baseline = analysis.config.baseline
    if baseline is not None:
        bdt_dir = Path(out_dir) / BDT_DIR
        if (bdt_dir / "metrics.json").is_file():
            log(f"[{analysis.name}] BDT baseline exists: {bdt_dir}")
        else:
            config = analysis.config
            key = repr(to_dict(config.data))
            data = cache[key] if key in cache else load(config, analysis=analysis)
            names = list(baseline.inputs) if baseline.inputs else [
                n for n, spec in config.data.inputs.items() if spec.kind in ("flat", "sequence")
            ]
            params = {"max_iter": baseline.max_iter, "learning_rate": baseline.learning_rate}
            if baseline.max_depth is not None:
                params["max_depth"] = baseline.max_depth
            metrics = train_bdt(data, names, bdt_dir, seed=config.training.seed,
                                working_points=config.evaluation.working_points,
                                classes=getattr(data, "class_names", None) or class_names(config.data, data["label"]),
                                weighted=config.evaluation.weighted, signal=config.evaluation.signal, **params)
            log(f"[{analysis.name}] BDT baseline on {', '.join(names)}: {_summary(metrics)}")


def evaluate_step(analysis, out_dir: Path, log=print, variants: Iterable[str] | None = None) -> dict[str, dict]:
    """Write each run's test metrics (``variants``: only these runs)."""
    results = {}
    cache: dict = {}  # variants with the same data and preprocessing read the files once
    for name, run_dir in run_dirs(analysis, out_dir, variants).items():
        results[name] = evaluate_run(run_dir, analysis=analysis, cache=cache, keep_predictions=True)
        log(f"[{analysis.name}] {name}: {_summary(results[name])}")
    return results


def _summary(metrics: dict) -> str:
    if "auc" in metrics:
        return f"AUC {metrics['auc']:.4f}, n_test {metrics['n_test']}"
    return f"accuracy {metrics.get('accuracy', float('nan')):.4f}, n_test {metrics['n_test']}"
