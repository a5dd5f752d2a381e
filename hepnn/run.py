"""``hepnn run``: chain the workflow steps of an analysis.

Steps run in order ``generate -> train -> evaluate -> explain -> report``; each
is provided by its stage as a function ``step(analysis, out_dir) -> None`` and is
skipped when the stage is not installed or the analysis does not need it.
Steps are resumable: each one skips work whose outputs already exist.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import Callable, Iterable

from .config import quick as quick_config
from .exceptions import ConfigError, suggest
from .outdir import claim
from .plugins import load_analysis
from .training.tracking import log_results

__all__ = ["STEPS", "run_analysis", "available_steps"]

# step name -> (module, function)
STEPS: dict[str, tuple[str, str]] = {
    "generate": ("hepnn.datasets.step", "generate_step"),
    "train": ("hepnn.training.step", "train_step"),
    "evaluate": ("hepnn.training.step", "evaluate_step"),
    "explain": ("hepnn.explain.step", "explain_step"),
    "report": ("hepnn.plotting.step", "report_step"),
}


def _load_step(name: str) -> Callable | None:
    module_name, attr = STEPS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return None
        raise
    return getattr(module, attr)


def available_steps() -> list[str]:
    """The steps whose implementation is present."""
    return [name for name in STEPS if _load_step(name) is not None]


def run_analysis(
    target: str | os.PathLike,
    out: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    steps: str | Iterable[str] | None = None,
    log: Callable[[str], None] = print,
    quick: bool = False,
    update_readme: bool = False,
    force: bool = False,
) -> Path:
    """Run an analysis (folder, config file or installed name) and return its output folder.

    Generated samples go to ``OUT/data`` and relative ``data.files`` paths of an
    analysis with a ``generate`` section resolve there. The report step writes
    ``OUT/results.md``; ``update_readme`` then puts it between the
    ``<!-- hepnn:results:begin -->`` and ``<!-- hepnn:results:end -->`` markers of the
    analysis' ``README.md``.

    The output folder is claimed for hepnn and locked while the steps run (see
    :mod:`hepnn.outdir`): an existing folder holding other files is refused unless
    ``force``, and a second ``hepnn run`` on the same folder fails at once.
    """
    overrides = list(overrides)
    analysis = load_analysis(target, overrides)
    if quick:
        analysis.config = quick_config(analysis.config)
    # the command that reproduces the run (shown in OUT/results.md); --out and --steps change nothing in the numbers
    analysis.command = " ".join(
        ["hepnn run", str(target), *(["--quick"] if quick else []), *(f"--set {o}" for o in overrides)]
    )
    out_dir = Path(out) if out is not None else Path("runs") / str(analysis.name)
    if analysis.config.generate is not None:
        data = dataclasses.replace(analysis.config.data, directory=str((out_dir / "data").resolve()))
        analysis.config = dataclasses.replace(analysis.config, data=data)
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",") if s.strip()]
    wanted = list(steps) if steps is not None else list(STEPS)
    for name in wanted:
        if name not in STEPS:
            msg = f"--steps: unknown step {name!r}{suggest(name, list(STEPS))}; valid steps: {', '.join(STEPS)}"
            raise ConfigError(msg)

    with claim(out_dir, "analysis", force=force):
        _run_steps(analysis, out_dir, wanted, log)
    if getattr(analysis.config.training, "tracking", None) is not None:
        for run_id in log_results(out_dir):
            log(f"[{analysis.name}] test metrics and report logged to MLflow run {run_id}")
    if update_readme:
        # lazy: keeps the CLI parser (`import hepnn.cli`) light
        from .plotting.step import update_readme as _update_readme

        readme = _update_readme(analysis, out_dir)
        log(f"[{analysis.name}] results -> {readme}")
    return out_dir


def _run_steps(analysis, out_dir: Path, wanted: list[str], log: Callable[[str], None]) -> None:
    for name in wanted:
        step = _load_step(name)
        if step is None:
            log(f"[{analysis.name}] step {name}: not available in this version, skipped")
            continue
        log(f"[{analysis.name}] step {name} ...")
        step(analysis, out_dir)
