"""The ``train`` and ``evaluate`` steps of ``hepnn run``.

An analysis trains one run per variant (``variants:`` in its config; the base config
when there are none) into ``OUT/<variant>/``; the data are read once and shared by
variants with the same ``data`` section.
"""

from __future__ import annotations

from pathlib import Path

from ..config import to_dict, variant
from ..io import load
from .baseline import BDT_DIR, train_bdt
from .evaluate import evaluate_run

__all__ = ["train_step", "evaluate_step", "run_dirs"]


def run_dirs(analysis, out_dir: Path) -> dict[str, Path]:
    """Variant name -> run directory."""
    names = list(analysis.config.variants) or ["model"]
    return {name: Path(out_dir) / name for name in names}


def _variant_configs(analysis):
    config = analysis.config
    if not config.variants:
        return {"model": config}
    return {name: variant(config, name) for name in config.variants}


def train_step(analysis, out_dir: Path, log=print) -> dict[str, Path]:
    # lazy: keeps `import hepnn.explain.step` free of keras
    from .trainer import Trainer

    cache: dict = {}
    dirs = run_dirs(analysis, out_dir)
    for name, config in _variant_configs(analysis).items():
        key = repr(to_dict(config.data))
        if key not in cache:
            cache[key] = load(config, analysis=analysis)
        log(f"[{analysis.name}] training {name} ({config.model.name}) -> {dirs[name]}")
        Trainer(config, analysis=analysis, log=log).fit(dirs[name], data=cache[key])
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
                                classes=getattr(data, "class_names", None), **params)
            log(f"[{analysis.name}] BDT baseline on {', '.join(names)}: {_summary(metrics)}")
    return dirs


def evaluate_step(analysis, out_dir: Path, log=print) -> dict[str, dict]:
    results = {}
    cache: dict = {}  # variants with the same data and preprocessing read the files once
    for name, run_dir in run_dirs(analysis, out_dir).items():
        results[name] = evaluate_run(run_dir, analysis=analysis, cache=cache)
        log(f"[{analysis.name}] {name}: {_summary(results[name])}")
    return results


def _summary(metrics: dict) -> str:
    if "auc" in metrics:
        return f"AUC {metrics['auc']:.4f}, n_test {metrics['n_test']}"
    return f"accuracy {metrics.get('accuracy', float('nan')):.4f}, n_test {metrics['n_test']}"
