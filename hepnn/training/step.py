"""The ``train`` and ``evaluate`` steps of ``hepnn run``.

An analysis trains one run per variant (``variants:`` in its config; the base config
when there are none) into ``OUT/<variant>/``; the data are read once and shared by
variants with the same ``data`` section.
"""

from __future__ import annotations

from pathlib import Path

from ..config import to_dict, variant

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
    from ..io import load
    from .trainer import Trainer

    cache: dict = {}
    dirs = run_dirs(analysis, out_dir)
    for name, config in _variant_configs(analysis).items():
        key = repr(to_dict(config.data))
        if key not in cache:
            cache[key] = load(config, analysis=analysis)
        log(f"[{analysis.name}] training {name} ({config.model.name}) -> {dirs[name]}")
        Trainer(config, analysis=analysis, log=log).fit(dirs[name], data=cache[key])
    return dirs


def evaluate_step(analysis, out_dir: Path, log=print) -> dict[str, dict]:
    from .evaluate import evaluate_run

    results = {}
    for name, run_dir in run_dirs(analysis, out_dir).items():
        results[name] = evaluate_run(run_dir, analysis=analysis)
        log(f"[{analysis.name}] {name}: {_summary(results[name])}")
    return results


def _summary(metrics: dict) -> str:
    if "auc" in metrics:
        return f"AUC {metrics['auc']:.4f}, n_test {metrics['n_test']}"
    return f"accuracy {metrics.get('accuracy', float('nan')):.4f}, n_test {metrics['n_test']}"
