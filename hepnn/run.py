"""``hepnn run``: chain the workflow steps of an analysis.

Steps run in order ``generate -> train -> evaluate -> explain -> report``; each
is provided by its stage as a function ``step(analysis, out_dir) -> None`` and is
skipped when the stage is not installed or the analysis does not need it.
Steps are resumable: each one skips work whose outputs already exist, so ``hepnn run`` again
after a kill (in a step or between two: the fault point ``"run-step"``) ends with the numbers of
an uninterrupted run. A variant whose finished run was trained with another config is refused,
naming the changed keys (its files are kept; use another ``--out``); the other variants are kept.

With ``jobs`` > 1 (``hepnn run --jobs N``) the per-run steps (``train``, ``evaluate``,
``explain``) of an analysis' variants run in ``N`` worker processes, a variant per
process at a time, while this process trains the BDT baseline; the report is drawn here
afterwards. Each worker's TensorFlow runs ``cores // N`` intra-op threads, and a variant's
numbers are those of a one-process run with that many (``TF_NUM_INTRAOP_THREADS``; see
docs/reliability.md); what it costs is a TensorFlow start-up and a read of the data per worker.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import multiprocessing
import os
import shlex
import sys
import threading
import traceback
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import exceptions
from ._faults import fault
from ._logs import quiet_tensorflow
from ._spawn import main_module_hidden
from ._threads import cpu_cores
from .config import load_config, parse_override
from .config import quick as quick_config
from .config import variant
from .exceptions import ConfigError, HepnnError, TrainingError, suggest
from .outdir import claim, foreign_files
from .plugins import load_analysis, portable_target
from .training.tracking import log_results

__all__ = ["STEPS", "PER_RUN_STEPS", "run_analysis", "available_steps", "resolve_jobs", "analysis_for_runs",
           "reproducing_command"]

# step name -> (module, function)
STEPS: dict[str, tuple[str, str]] = {
    "generate": ("hepnn.datasets.step", "generate_step"),
    "train": ("hepnn.training.step", "train_step"),
    "evaluate": ("hepnn.training.step", "evaluate_step"),
    "explain": ("hepnn.explain.step", "explain_step"),
    "report": ("hepnn.plotting.step", "report_step"),
}
# the steps that work on each variant's run on its own (``variants=`` selects the runs); with
# --jobs they run in worker processes, a variant per worker at a time
PER_RUN_STEPS = ("train", "evaluate", "explain")


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
    jobs: int | str = 1,
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

    ``steps`` (a list or a comma-separated string) selects a subset of :data:`STEPS`, which run
    in the workflow's order whatever order they are given in.

    ``jobs`` (an integer or ``"auto"``: the CPU cores this process may use) runs the
    ``train``, ``evaluate`` and ``explain`` steps of the variants in that many worker
    processes (see the module docstring); 1 runs everything in this process.
    """
    overrides = list(overrides)
    n_jobs = resolve_jobs(jobs)
    recipe = _Recipe(target=_portable(target), overrides=tuple(overrides), quick=quick,
                     out=None if out is None else str(out), shown=str(target))
    analysis, out_dir = recipe.analysis()
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",") if s.strip()]
    asked = list(steps) if steps is not None else list(STEPS)
    if not asked:  # `--steps ""` or `--steps ,`: nothing would run, yet the run would say it finished
        msg = f"--steps: no step given; name one or more of {', '.join(STEPS)} (comma-separated), or leave --steps out"
        raise ConfigError(msg)
    for name in asked:
        if name not in STEPS:
            msg = f"--steps: unknown step {name!r}{suggest(name, list(STEPS))}; valid steps: {', '.join(STEPS)}"
            raise ConfigError(msg)
    # a subset, run in the workflow's order (`--steps report,train` trains first), each step once
    wanted = [name for name in STEPS if name in asked]

    with claim(out_dir, "analysis", force=force):
        _check_variant_folders(analysis, out_dir)
        _run_steps(analysis, out_dir, wanted, log, jobs=n_jobs, recipe=recipe)
    if getattr(analysis.config.training, "tracking", None) is not None:
        for run_id in log_results(out_dir):
            log(f"[{analysis.name}] test metrics and report logged to MLflow run {run_id}")
    if update_readme:
        # lazy: keeps the CLI parser (`import hepnn.cli`) light
        from .plotting.step import update_readme as _update_readme

        readme = _update_readme(analysis, out_dir)
        log(f"[{analysis.name}] results -> {readme}")
    return out_dir


def _check_variant_folders(analysis, out_dir: Path) -> None:
    """Refuse, before any step, a variant's run folder holding files hepnn did not write (``--force``
    claims the output folder, never a run folder inside it: training there could overwrite them)."""
    for name in list(analysis.config.variants) or ["model"]:
        folder = Path(out_dir) / name
        foreign = foreign_files(folder, "run")
        if foreign:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            msg = (f"--out {out_dir}: the run folder of variant {name!r}, {folder}, holds files hepnn did not write "
                   f"({shown}); training there could overwrite them, and --force claims the output folder only, "
                   "never a run folder inside it: move them, or choose another --out")
            raise exceptions.OutputDirError(msg)


def resolve_jobs(jobs: int | str | None) -> int:
    """The number of worker processes ``jobs`` asks for (``"auto"``: the CPU cores this process may use)."""
    if jobs is None:
        return 1
    if isinstance(jobs, str):
        text = jobs.strip().lower()
        if text == "auto":
            return cpu_cores()
        if not text.isdigit():
            msg = f"--jobs: {jobs!r} is not a number of processes; give a positive integer or 'auto'"
            raise ConfigError(msg)
        jobs = int(text)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        msg = f"--jobs: {jobs!r} is not a number of processes; give a positive integer or 'auto'"
        raise ConfigError(msg)
    return jobs


def _portable(target: str | os.PathLike) -> str:
    """``target`` as a worker process finds it: an analysis path made absolute, else the installed name as given."""
    return portable_target(target)


def reproducing_command(target: str, quick: bool, overrides: Iterable[str]) -> str:
    """The ``hepnn run`` command line of a run, quoted for a POSIX shell (a ``--set`` value with spaces
    or braces pastes back as one argument).

    Examples
    --------
    >>> print(reproducing_command("analyses/top_tagging", True, ["training.epochs=3", "data.cuts=[{a: 1}]"]))
    hepnn run analyses/top_tagging --quick --set training.epochs=3 --set 'data.cuts=[{a: 1}]'
    """
    words = [target, *(["--quick"] if quick else []), *(w for o in overrides for w in ("--set", o))]
    return " ".join(["hepnn run", *(shlex.quote(str(w)) for w in words)])


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """What rebuilds the analysis of a run in another process (a plugin's object need not pickle)."""

    target: str
    overrides: tuple[str, ...]
    quick: bool
    out: str | None
    shown: str = ""  # the analysis as the user named it (the command in OUT/results.md)

    def analysis(self):
        analysis = load_analysis(self.target, list(self.overrides))
        if self.quick:
            # --set wins over the quick overlay: applied before it (the plugin is built with them), a key
            # both set kept the overlay's value, so they are applied again after it (not those that edit
            # the overlay itself, which is spent)
            after = [o for o in self.overrides if parse_override(o)[0].split(".")[0] != "quick"]
            analysis.config = load_config(quick_config(analysis.config), after)
        # the command that reproduces the run (shown in OUT/results.md); --out and --steps change nothing in
        # the numbers, --jobs only TensorFlow's thread count, which results.md names
        analysis.command = reproducing_command(self.shown or self.target, self.quick, self.overrides)
        out_dir = Path(self.out) if self.out is not None else Path("runs") / str(analysis.name)
        if analysis.config.generate is not None:
            data = dataclasses.replace(analysis.config.data, directory=str((out_dir / "data").resolve()))
            analysis.config = dataclasses.replace(analysis.config, data=data)
        return analysis, out_dir


def _run_steps(analysis, out_dir: Path, wanted: list[str], log: Callable[[str], None], jobs: int = 1,
               recipe: _Recipe | None = None) -> None:
    variants = list(analysis.config.variants)
    i = 0
    while i < len(wanted):
        name = wanted[i]
        if jobs > 1 and recipe is not None and len(variants) > 1 and name in PER_RUN_STEPS:
            block = []
            while i < len(wanted) and wanted[i] in PER_RUN_STEPS:
                block.append(wanted[i])
                i += 1
            available = []
            for step_name in block:
                if _load_step(step_name) is None:
                    log(f"[{analysis.name}] step {step_name}: not available in this version, skipped")
                else:
                    available.append(step_name)
            if available:
                log(f"[{analysis.name}] steps {', '.join(available)} of {len(variants)} variants "
                    f"in {min(jobs, len(variants))} processes ...")
                _run_in_workers(analysis, out_dir, available, variants, log, jobs, recipe)
            continue
        i += 1
        step = _load_step(name)
        if step is None:
            log(f"[{analysis.name}] step {name}: not available in this version, skipped")
            continue
        fault("run-step", {"step": name})  # between two steps: a rerun resumes with this one
        log(f"[{analysis.name}] step {name} ...")
        step(analysis, out_dir)


# --- variants in worker processes (--jobs) ------------------------------------------------------


def _run_in_workers(analysis, out_dir: Path, steps: list[str], variants: list[str], log: Callable[[str], None],
                    jobs: int, recipe: _Recipe) -> None:
    """Run ``steps`` for each variant in a pool of ``jobs`` spawned processes; the BDT baseline here meanwhile.

    Spawned, not forked: TensorFlow's threads do not survive a fork. Workers send their
    output lines here (``log`` prints them, so ``--quiet`` silences them too); a failed
    variant stops the others and is raised with its name.
    """
    context = multiprocessing.get_context("spawn")
    lines = context.SimpleQueue()
    printer = threading.Thread(target=_print_lines, args=(lines, log), daemon=True)
    printer.start()
    debug = bool(os.environ.get("HEPNN_DEBUG"))
    workers = min(jobs, len(variants))
    threads = max(1, cpu_cores() // workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(lines, debug, threads, os.getpid()))
    try:
        with main_module_hidden():  # the workers do not run the user's script again (hepnn._spawn)
            futures = {pool.submit(_variant_job, recipe, name, tuple(steps)): name
                       for name in costliest_first(analysis.config, variants)}
        if "train" in steps:
            _load_step("train")(analysis, out_dir, log=log, variants=(), baseline=True)
        fault("run-jobs", {"variants": list(variants)})  # the parent, while its workers run the variants
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                _raise_failure(futures[future], future.exception())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        lines.put(None)
        printer.join()


def costliest_first(config, variants: Iterable[str]) -> list[str]:
    """``variants`` ordered by their estimated training time (the model's registered ``cost`` times
    its epochs), the costliest first and ties in the config's order: with workers taking them in
    this order the last ones to finish are short, so no core waits long for the last variant."""

    # lazy: hepnn.models imports numpy, which `import hepnn.cli` must not pay for
    from .models.registry import relative_cost

    def cost(name: str) -> float:
        v = variant(config, name)
        return relative_cost(v.model.name) * max(1, int(v.training.epochs))

    return sorted(variants, key=cost, reverse=True)


def _print_lines(lines, log: Callable[[str], None]) -> None:
    for line in iter(lines.get, None):
        log(line)


class _LineWriter(io.TextIOBase):
    """A worker's ``sys.stdout``: each complete line goes to the parent, prefixed with the variant."""

    prefix = ""

    def __init__(self, lines):
        self._lines = lines
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        *complete, self._buffer = self._buffer.split("\n")
        for line in complete:
            self._lines.put(line if line.startswith("[") or not line else f"[{self.prefix}] {line}")
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self.write("\n")


def _init_worker(lines, debug: bool, threads: int, parent_pid: int | None = None) -> None:
    # a worker ends with its parent, also one killed by SIGKILL: it would otherwise wait for work for ever
    # or, holding a variant's lock, train it unsupervised while a rerun is refused that run folder
    if parent_pid is not None:
        # lazy: the same guard as `hepnn generate --jobs` workers
        from .datasets.generator import die_with_parent

        die_with_parent(parent_pid)
    # each worker's TensorFlow on its share of the cores: two processes whose thread pools each
    # span every core wait on each other (measured: 0.5-0.7x the throughput of each alone)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    # on a GPU machine the workers share the GPU: each takes memory as it needs it, not all of it at start
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    quiet_tensorflow(debug=debug)
    if debug:
        os.environ["HEPNN_DEBUG"] = "1"
    sys.stdout = _LineWriter(lines)


class _VariantFailure(Exception):
    """A worker's error as plain text (any exception class pickles back to the parent this way)."""

    def __init__(self, kind: str, message: str, trace: str):
        super().__init__(kind, message, trace)
        self.kind, self.message, self.trace = kind, message, trace


def _variant_job(recipe: _Recipe, variant: str, steps: tuple[str, ...]) -> str:
    if isinstance(sys.stdout, _LineWriter):
        sys.stdout.prefix = variant
    analysis, out_dir = recipe.analysis()
    try:
        for name in steps:
            kwargs = {"baseline": False} if name == "train" else {}
            _load_step(name)(analysis, out_dir, log=print, variants=(variant,), **kwargs)
    except Exception as err:
        raise _VariantFailure(type(err).__name__, str(err), traceback.format_exc()) from None
    finally:
        sys.stdout.flush()
    return variant


def _raise_failure(variant: str, err: BaseException) -> None:
    if isinstance(err, BrokenProcessPool):
        msg = (f"variant {variant!r}: a --jobs worker process died ({err}); runs that finished are kept and "
               "`hepnn run` again resumes the others")
        raise TrainingError(msg) from None
    if not isinstance(err, _VariantFailure):
        raise err
    cls = getattr(exceptions, err.kind, None)
    if isinstance(cls, type) and issubclass(cls, HepnnError):
        msg = f"variant {variant!r}: {err.message}"
        try:
            new = cls(msg)
        except TypeError:  # another signature (UnknownNameError: name, kind, valid)
            new = ConfigError(msg) if issubclass(cls, (ConfigError, KeyError)) else HepnnError(msg)
        raise new from None
    detail = f"\n(the worker's traceback)\n{err.trace}" if os.environ.get("HEPNN_DEBUG") else ""
    msg = f"variant {variant!r}: {err.kind}: {err.message}{detail}"
    raise TrainingError(msg) from None


def analysis_for_runs(target: str | None, run_dirs: Sequence[str | os.PathLike]):
    """The analysis to read the runs' data with: ``--analysis`` when given, else the plugin whose
    ``select``/``labels`` hooks the runs were trained with, loaded from where ``hepnn run`` found it
    (``provenance.json`` ``analysis.target``), else ``None``."""
    if target is not None:
        return load_analysis(target)
    # lazy: numpy and the run-directory readers only for the commands that read a run's data
    from .training.evaluate import recorded_analysis

    records = {}
    for run_dir in run_dirs:
        record = recorded_analysis(run_dir)
        if record is not None:
            records.setdefault(record.get("target") or record.get("name"), []).append(str(run_dir))
    if not records:
        return None
    if len(records) > 1:
        shown = "; ".join(f"{t}: {', '.join(dirs)}" for t, dirs in records.items())
        msg = f"the runs were trained with different analysis plugins ({shown}); report them separately"
        raise ConfigError(msg)
    (target, dirs), = records.items()
    try:
        return load_analysis(target)
    except HepnnError as err:
        msg = (f"{dirs[0]}: trained with the analysis plugin at {target} (provenance.json), which cannot be "
               f"loaded ({err}); pass --analysis FOLDER with the analysis the run was trained with")
        raise ConfigError(msg) from err
