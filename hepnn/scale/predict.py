"""Score many ROOT files with a trained tagger: one friend file per input, resumable.

:func:`predict_files` runs one task per input file, in this process (default) or on a
``dask.distributed`` cluster (``workers=N`` starts a local one, ``scheduler=ADDRESS``
joins an existing one, ``client=`` uses yours). Each task streams its file with
:func:`hepnn.scale.files.iter_file` and writes ``OUT/<input stem>_scores.root``: a friend
TTree with the input's tree name, the same number of entries in the same order:

- per-event input: a jagged branch ``<jets>_hepnnScore`` (e.g. ``Jet_hepnnScore``) with
  the counter ``n<jets>`` (``nJet``); multiclass: ``Jet_hepnnScore_<class>`` per class;
- per-jet input: a scalar ``hepnn_score`` (multiclass: ``hepnn_score_<class>``).

The ROOT file appears under its final name only when complete (atomic rename), then a
JSON sidecar ``<name>_scores.json`` records the run's checksum and the input's size and
modification time. A rerun skips inputs whose sidecar matches and redoes those whose
output is missing or stale, so a killed job is resumed by rerunning it.

On a cluster the model is loaded once per worker process (a module-level cache keyed by
the run directory and its checksum), not once per file; a task lost with its worker is
rerun on another worker by the scheduler, and a task that raises is retried ``retries``
times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .._faults import fault
from .._fileio import atomic_path, atomic_write_text, remove_stale_parts
from .._optional import require, require_keras
from .._redact import redact
from .._threads import cpu_cores
from ..exceptions import HepnnError, InputDataError, OutputDirError
from ..outdir import claim_file, make_directory
from ..training.kfold import is_kfold_run
from ..training.tagger import Tagger
from . import files
from .files import LOAD_COUNTS, cached_tagger, run_fingerprint

__all__ = ["PredictResult", "predict_files", "output_names", "run_fingerprint", "write_friend"]

SIDECAR_VERSION = 1
_GLOB_CHARS = frozenset("*?[")
#: seconds to wait for a Dask scheduler (``scheduler=``) before giving up
CONNECT_TIMEOUT = 10.0


@dataclasses.dataclass
class PredictResult(Mapping):
    """What :func:`predict_files` did: a mapping input file -> output file (done or skipped).

    Attributes
    ----------
    written : dict
        Input -> output written by this call.
    skipped : dict
        Input -> output already complete from an earlier call (resumed).
    failed : dict
        Input -> error message.
    """

    written: dict[str, Path] = dataclasses.field(default_factory=dict)
    skipped: dict[str, Path] = dataclasses.field(default_factory=dict)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)

    def _all(self) -> dict[str, Path]:
        return {**self.skipped, **self.written}

    def __getitem__(self, key: str) -> Path:
        return self._all()[key]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self.written) + len(self.skipped)

    def summary(self) -> str:
        """One line: ``N files: A written, B skipped (already done), C failed``."""
        n = len(self.written) + len(self.skipped) + len(self.failed)
        return (f"{n} file(s): {len(self.written)} written, {len(self.skipped)} skipped (already done), "
                f"{len(self.failed)} failed")


# --- names and fingerprints -----------------------------------------------------------


def _path_hash(path: str) -> str:
    return hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]


def output_names(files: Sequence[str | os.PathLike]) -> dict[str, str]:
    """Output file name per input: ``<stem>_scores.root``; ``<stem>_<hash>_scores.root`` for shared stems.

    Examples
    --------
    >>> names = output_names(["a/x.root", "b/x.root", "c/y.root"])
    >>> names["c/y.root"]
    'y_scores.root'
    >>> names["a/x.root"] != names["b/x.root"]
    True
    """
    paths = [os.fspath(f) for f in files]
    stems: dict[str, int] = {}
    for p in dict.fromkeys(paths):
        stem = Path(p).stem
        stems[stem] = stems.get(stem, 0) + 1
    return {p: (f"{Path(p).stem}_scores.root" if stems[Path(p).stem] == 1 else
                f"{Path(p).stem}_{_path_hash(p)}_scores.root") for p in paths}


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:  # does not exist (yet)
        return None
    return st.st_dev, st.st_ino


def check_outputs(inputs: Sequence[str], outputs: Mapping[str, Sequence[str]]) -> None:
    """Refuse output paths that are an input file or another output (before anything is written).

    ``outputs`` maps each input to the paths written for it. Paths are compared after
    resolving symlinks, and by inode, so a link or a hard link to an input counts.

    Raises
    ------
    InputDataError
        Naming both paths and how to avoid the clash.
    """
    by_real = {os.path.realpath(p): p for p in inputs}
    by_inode = {key: p for p in inputs if (key := _inode(p)) is not None}
    seen: dict[str, str] = {}
    for source, paths in outputs.items():
        for out in paths:
            real = os.path.realpath(out)
            clash = by_real.get(real)
            if clash is None and (key := _inode(out)) is not None:
                clash = by_inode.get(key)
            if clash is not None:
                msg = (f"output {out} (for input {source}) is the input file {clash}: writing it would overwrite "
                       f"that input; use another --out folder, or leave {clash} out of the inputs")
                raise InputDataError(msg)
            if real in seen:
                msg = (f"output {out} (for input {source}) is also the output of input {seen[real]}; "
                       "rename one of the inputs or score them into different --out folders")
                raise InputDataError(msg)
            seen[real] = source


def _written_by_predict(path: str | os.PathLike) -> bool:
    """True when ``path`` is a friend file or a sidecar that :func:`predict_files` wrote.

    A sidecar is hepnn's record of its friend file; a friend file is hepnn's when its
    sidecar says so, or (a job killed between the two renames) when its trees hold only
    hepnn's score branches.
    """
    path = Path(path)
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and "run_fingerprint" in record and record.get("output") == f"{path.stem}.root":
        return True
    if path.suffix != ".root":
        return False
    try:
        import uproot

        with uproot.open(path) as f:
            branches = [name for key in f.keys(cycle=False, filter_classname="TTree") for name in f[key].keys()]
    except Exception:  # noqa: BLE001 - not a ROOT file, or not one uproot reads: not ours
        return False
    scores = [b for b in branches if b.startswith("hepnn_score") or "_hepnnScore" in b]
    counters = {"n" + b.split("_hepnnScore")[0] for b in scores if "_hepnnScore" in b}
    return bool(scores) and all(b in scores or b in counters for b in branches)


def _input_stat(path: str) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sidecar(out_path: Path) -> Path:
    return out_path.with_suffix(".json")


def is_done(path: str, out_path: Path, fingerprint: str, tree: str | None = None) -> bool:
    """True when ``out_path`` and its sidecar exist and match the input, the run and ``tree``
    (the ``tree=`` / ``--tree`` asked for, None for the default: the scores of another tree are not done)."""
    sidecar = _sidecar(out_path)
    if not out_path.is_file() or not sidecar.is_file():
        return False
    try:
        record = json.loads(sidecar.read_text())
        stat = _input_stat(path)
    except (OSError, ValueError):
        return False
    return (record.get("version") == SIDECAR_VERSION and record.get("run_fingerprint") == fingerprint
            and record.get("input_size") == stat["size"] and record.get("input_mtime_ns") == stat["mtime_ns"]
            and record.get("output_size") == out_path.stat().st_size
            and record.get("tree_requested") == tree)


# --- the per-file task ----------------------------------------------------------------


def get_tagger(run_dir: str, fingerprint: str | None = None, tf_threads: int | None = None) -> Any:
    """The :class:`hepnn.Tagger` of ``run_dir``, loaded once per process."""
    return cached_tagger(run_dir, fingerprint, Tagger.load,
                         before_load=(lambda: _limit_tf_threads(tf_threads)) if tf_threads else None)


def tagger_loads(run_dir: str, fingerprint: str | None = None, tf_threads: int | None = None) -> bool:
    """Load the tagger of ``run_dir`` in this process (a Dask worker keeps it); True, or the load's error."""
    get_tagger(run_dir, fingerprint, tf_threads)
    return True


def _limit_tf_threads(n: int) -> None:
    require_keras()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already initialised in this process
        pass


def local_tf_threads(workers: int) -> int:
    """TensorFlow threads per worker of a local cluster of ``workers``: the CPU cores this process
    may run on (its affinity mask: a SLURM job's ``--cpus-per-task``, not the node's cores) over
    ``workers``, at least 1.

    Examples
    --------
    >>> local_tf_threads(10**6)
    1
    """
    return max(1, cpu_cores() // max(1, int(workers)))


def load_counts() -> dict[str, int]:
    """Tagger loads per run directory in this process (run it on workers with ``client.run``)."""
    return dict(LOAD_COUNTS)


def _branch_names(tagger: Any) -> tuple[list[str], str | None]:
    """(score branch names in class order, counter name or None)."""
    multi = tagger.task == "multiclass"
    if tagger.layout == "per_event":
        jets = tagger.config.data.jets or "Jet"
        base = f"{jets}_hepnnScore"
        counter = f"n{jets}"
    else:
        base, counter = "hepnn_score", None
    names = [f"{base}_{c}" for c in tagger.classes] if multi else [base]
    return names, counter


def _columns(tagger: Any, scores: Any, names: list[str]) -> dict[str, Any]:
    import numpy as np

    if tagger.layout == "per_event":
        if len(names) == 1:
            return {names[0]: scores}
        return {name: scores[field] for name, field in zip(names, scores.fields)}
    scores = np.asarray(scores, dtype=np.float32)
    if len(names) == 1:
        return {names[0]: scores}
    return {name: np.ascontiguousarray(scores[:, i]) for i, name in enumerate(names)}


def write_friend(tagger: Any, path: str | os.PathLike, out_path: str | os.PathLike, *, tree: str | None = None,
                 step_size: Any = "100 MB", batch_size: int | None = None) -> dict:
    """Stream ``path`` through ``tagger`` into a friend tree at ``out_path`` (atomic).

    Returns
    -------
    dict
        ``tree``, ``n_entries``, ``n_jets`` and the score ``branches``.
    """
    import awkward as ak
    import numpy as np
    import uproot

    path = os.fspath(path)
    tree_name = files.tree_name(tagger, path, tree)
    names, counter = _branch_names(tagger)
    n_entries = n_jets = 0
    with atomic_path(out_path, suffix=".part.root") as tmp:
        with uproot.recreate(tmp) as out:
            writable = None
            # the tagger's own reading: a k-fold tagger scores each jet of a file with its fold's model
            for entry_start, scores in tagger.iter_file(path, tree_name, step_size, batch_size=batch_size):
                if entry_start != n_entries:
                    msg = f"{path}: chunk starts at entry {entry_start}, expected {n_entries}: entries out of order"
                    raise InputDataError(msg)
                columns = _columns(tagger, scores, names)
                if writable is None:
                    writable = _mktree(out, tree_name, columns, counter)
                writable.extend(columns)
                n_entries += len(scores)
                n_jets += int(ak.sum(ak.num(scores))) if tagger.layout == "per_event" else len(scores)
                fault("predict-chunk", {"input": path, "n_entries": n_entries})
            if writable is None:  # no entries: an empty tree of the right types
                if tagger.layout == "per_event":
                    empty = ak.unflatten(np.zeros(0, np.float32), np.zeros(0, np.int64))
                else:
                    empty = np.zeros(0, np.float32)
                _mktree(out, tree_name, {n: empty for n in names}, counter)
    return {"tree": tree_name, "n_entries": n_entries, "n_jets": n_jets, "branches": names}


def _mktree(out: Any, name: str, columns: dict, counter: str | None) -> Any:
    import numpy as np

    if counter is None:
        return out.mktree(name, {k: np.float32 for k in columns})
    types = {k: v.type.content for k, v in columns.items()}
    return out.mktree(name, types, counter_name=lambda _: counter)


def score_file(run_dir: str, path: str, out_path: str, fingerprint: str, *, tree: str | None = None,
               step_size: Any = "100 MB", batch_size: int | None = None, tf_threads: int | None = None,
               skip_done: bool = True) -> dict:
    """One task: score ``path`` into ``out_path`` and write its sidecar (runs on a worker).

    Returns a small dict: ``status`` (``written``/``skipped``), ``output``, ``pid``, ``seconds``.
    """
    start = time.perf_counter()
    out = Path(out_path)
    if skip_done and is_done(path, out, fingerprint, tree):
        return {"status": "skipped", "input": path, "output": str(out), "pid": os.getpid(), "seconds": 0.0}
    tagger = get_tagger(run_dir, fingerprint, tf_threads)
    remove_stale_parts(out)
    remove_stale_parts(_sidecar(out))
    stat = _input_stat(path)
    info = write_friend(tagger, path, out, tree=tree, step_size=step_size, batch_size=batch_size)
    fault("predict-output", {"input": path, "output": str(out)})  # the friend file is in place, its sidecar not yet
    record = {
        "version": SIDECAR_VERSION, "input": os.path.abspath(path), "input_size": stat["size"],
        "input_mtime_ns": stat["mtime_ns"], "run_dir": os.path.abspath(run_dir), "run_fingerprint": fingerprint,
        "output": out.name, "output_size": out.stat().st_size, "tree_requested": tree, **info,
    }
    atomic_write_text(_sidecar(out), json.dumps(record, indent=2) + "\n")
    return {"status": "written", "input": path, "output": str(out), "pid": os.getpid(),
            "seconds": time.perf_counter() - start, "n_entries": info["n_entries"]}


# --- driver -------------------------------------------------------------------------------


def predict_files(run_dir: str | os.PathLike, files: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *,
                  workers: int | None = None, scheduler: str | None = None, client: Any = None,
                  tree: str | None = None, step_size: Any = "100 MB", batch_size: int | None = None,
                  retries: int = 2, resume: bool = True, raise_on_error: bool = True,
                  tf_threads: int | None = None, log: Callable[[str], None] | None = None,
                  connect_timeout: float | None = None, force: bool = False) -> PredictResult:
    """Score every file with the tagger of ``run_dir``; one friend file per input in ``out_dir``.

    Parameters
    ----------
    run_dir : path
        A trained run directory (``hepnn train``).
    files : path or paths
        Input ROOT files (the layout the tagger was trained on): one path, or several; a file
        given twice (also as ``./a.root`` and ``a.root``) is scored once. Globs are not
        expanded here (the shell expands them for ``hepnn predict``).
    out_dir : path
        Where ``<stem>_scores.root`` and ``<stem>_scores.json`` go (created).
    workers : int, optional
        Start a local ``dask.distributed`` cluster of this many worker processes.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``) or a
        scheduler file (``*.json``).
    client : distributed.Client, optional
        Use this client. With none of ``workers``, ``scheduler``, ``client``: in process,
        no Dask needed.
    tree : str, optional
        Input tree name (default: as :meth:`hepnn.Tagger.predict_file`); the friend tree
        gets the same name.
    step_size : int or str
        Entries or bytes per chunk read.
    retries : int
        Reruns of a task that raised (a task lost with its worker is rerun anyway).
    resume : bool
        Skip inputs whose output and sidecar match the input and the run (default).
    raise_on_error : bool
        Raise :class:`hepnn.HepnnError` naming the failed files after all others finished
        (default); ``False``: report them in ``result.failed``.
    tf_threads : int, optional
        TensorFlow threads per worker process, set before the model is loaded (default:
        the CPU cores this process may run on / ``workers`` for a local cluster, so a SLURM
        job's ``--cpus-per-task``, not the node's cores; TensorFlow's default otherwise).
    connect_timeout : float, optional
        Seconds to wait for the scheduler of ``scheduler=`` before giving up with an
        error naming it (default :data:`CONNECT_TIMEOUT`, 10 s).
    force : bool
        Replace files with the output names that hepnn did not write, and the scores of
        another run (another run directory with another checksum, as their sidecars say);
        by default both are an error, raised before anything is written. The outputs of
        this run are redone or skipped as ``resume`` says (redone when the run was retrained,
        or when ``tree`` differs from the one they were scored with).

    Input paths and ``out_dir`` are made absolute here, in the client, before any task is
    sent, so a worker whose working directory differs reads and writes the files meant.
    An output path that is an input file (also through a symlink or hard link) or the
    output of another input is an error, raised before anything is written. In process
    (no Dask), a run directory the tagger cannot be loaded from is one error, raised
    before any input is read.

    Returns
    -------
    PredictResult
        Mapping input -> output path, with ``written``, ``skipped``, ``failed``.

    Examples
    --------
    >>> from hepnn.scale import predict_files
    >>> result = predict_files("runs/ttbar", ["a.root", "b.root"], "scores", workers=2)  # doctest: +SKIP
    >>> result.summary()                                                               # doctest: +SKIP
    '2 file(s): 2 written, 0 skipped (already done), 0 failed'
    """
    if sum(x is not None for x in (workers, scheduler, client)) > 1:
        msg = f"predict_files: give at most one of workers=, scheduler=, client= (received workers={workers!r}, scheduler={scheduler!r}, client={client!r})"
        raise ValueError(msg)
    if workers is not None and int(workers) < 1:
        msg = f"predict_files: workers must be >= 1 (received {workers!r})"
        raise ValueError(msg)
    run_dir = os.path.abspath(run_dir)
    if not (Path(run_dir) / "model.keras").is_file() and not is_kfold_run(run_dir):  # k-fold: folds/<k>/model.keras
        msg = f"{run_dir}: not a trained run directory (no model.keras); train it with `hepnn train CONFIG --out {run_dir}`"
        raise HepnnError(msg)
    paths = input_paths(files)
    if not paths:
        msg = "predict_files: no input files given"
        raise ValueError(msg)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputDataError(missing_inputs_message(missing))
    # absolute on the client: a worker's working directory may be anywhere
    absolute = {p: os.path.abspath(p) for p in paths}
    out = Path(os.path.abspath(out_dir))
    names = output_names(paths)
    check_outputs(list(absolute.values()),
                  {p: [str(out / names[p]), str(_sidecar(out / names[p]))] for p in paths})
    for p in paths:
        for target in (out / names[p], _sidecar(out / names[p])):
            claim_file(target, "friend file or sidecar written by hepnn predict", _written_by_predict, force=force)
    fingerprint = run_fingerprint(run_dir)
    if not force:
        for p in paths:
            check_same_run(out / names[p], run_dir, fingerprint)
    make_directory(out)
    log = log or (lambda _msg: None)
    result = PredictResult()
    todo = []
    for p in paths:
        target = out / names[p]
        if resume and is_done(absolute[p], target, fingerprint, tree):
            result.skipped[p] = target
        else:
            todo.append(p)
    if todo:
        options = {"tree": tree, "step_size": step_size, "batch_size": batch_size, "skip_done": False,
                   "tf_threads": tf_threads}
        if workers is None and scheduler is None and client is None:
            _run_local(run_dir, todo, absolute, out, names, fingerprint, options, result, log)
        else:
            _run_dask(run_dir, todo, absolute, out, names, fingerprint, options, result, log,
                      workers=workers, scheduler=scheduler, client=client, retries=retries,
                      timeout=connect_timeout)
    if result.failed and raise_on_error:
        first = next(iter(result.failed.items()))
        msg = f"{result.summary()}; first failure: {first[0]}: {first[1]}"
        raise HepnnError(msg)
    return result


def input_paths(files: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """The input files as given, each once: one path (a string is a file name, not a list of
    letters) or several; a file given twice (also spelled differently: ``a.root``, ``./a.root``,
    its absolute path) is kept once, under its first spelling.

    Examples
    --------
    >>> input_paths("a.root")
    ['a.root']
    >>> input_paths(["a.root", "./a.root", "b.root", "a.root"])
    ['a.root', 'b.root']
    """
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    first: dict[str, str] = {}
    for f in files:
        first.setdefault(os.path.abspath(os.fspath(f)), os.fspath(f))
    return list(first.values())


def missing_inputs_message(missing: Sequence[str]) -> str:
    """Why the input paths ``missing`` cannot be read, and what to do.

    Examples
    --------
    >>> missing_inputs_message(["nowhere/*.root"])  # doctest: +ELLIPSIS
    'input file(s) not found: nowhere/*.root (a pattern that matched no file reaches hepnn as written: ...'
    """
    shown = ", ".join(missing[:5]) + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
    folders = [p for p in missing if os.path.isdir(p)]
    hints = []
    if folders:
        hints.append(f"{folders[0]} is a folder: give the files in it, e.g. {os.path.join(folders[0], '*.root')}")
    if any(_GLOB_CHARS.intersection(p) for p in missing):
        hints.append("a pattern that matched no file reaches hepnn as written: check the folder and the pattern")
    hints.append("check the paths (relative ones are read from " + os.getcwd() + ")")
    return f"input file(s) not found: {shown} ({'; '.join(hints)})"


def check_same_run(out_path: Path, run_dir: str, fingerprint: str) -> None:
    """Refuse to replace ``out_path`` when its sidecar says another run wrote it.

    Scores of this run directory (retrained: another checksum) are redone, and a copy of the
    same run (same checksum, another folder) counts as this run; the scores of another run
    (another folder and another checksum) are kept unless ``force`` (checked by the caller).

    Raises
    ------
    OutputDirError
        Naming the file, the run that wrote it and how to go on.
    """
    try:
        record = json.loads(_sidecar(out_path).read_text())
    except (OSError, ValueError):
        return
    if not isinstance(record, dict):
        return
    other = record.get("run_dir")
    if not isinstance(other, str) or record.get("run_fingerprint") == fingerprint:
        return
    if os.path.realpath(other) == os.path.realpath(run_dir):  # this run, retrained (also through a link)
        return
    msg = (f"{out_path}: holds the scores of another run, {other} (its sidecar {_sidecar(out_path).name} says "
           f"so); scoring {run_dir} would replace them. Use another --out for this run, or pass --force to "
           "replace them")
    raise OutputDirError(msg)


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if not isinstance(err, HepnnError) else str(err)


def _run_local(run_dir, todo, absolute, out, names, fingerprint, options, result, log) -> None:
    # the run's problems (files missing, model unreadable) are one error, not one failure per input
    get_tagger(run_dir, fingerprint, options["tf_threads"])
    for p in todo:
        try:
            info = score_file(run_dir, absolute[p], str(out / names[p]), fingerprint, **options)
        except Exception as err:  # noqa: BLE001 - reported per file, the others go on
            result.failed[p] = _error_text(err)
            log(f"failed {p}: {result.failed[p]}")
            continue
        result.written[p] = Path(info["output"])
        log(f"wrote {info['output']}")


def local_worker_env() -> dict[str, str]:
    """Environment of the worker processes of ``workers=N``: they share this machine's GPUs, so each
    TensorFlow takes GPU memory as it needs it (``TF_FORCE_GPU_ALLOW_GROWTH=true`` unless set),
    instead of the first worker taking it all, as ``hepnn run --jobs`` does."""
    return {"TF_FORCE_GPU_ALLOW_GROWTH": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH", "true")}


def _is_scheduler_file(scheduler: str) -> bool:
    return "://" not in scheduler and (scheduler.endswith(".json") or os.path.isfile(scheduler)
                                       or os.sep in scheduler)


def _connect(workers, scheduler, client, timeout=None):
    """(client, close) for the requested cluster."""
    if client is not None:
        return client, lambda: None

    require("dask", extra="dask")
    distributed = require("distributed", extra="dask")
    if scheduler is not None:
        return _connect_scheduler(distributed, str(scheduler), CONNECT_TIMEOUT if timeout is None else float(timeout))
    import logging

    # the dashboard (a web server showing task names, file paths and logs) on this machine only
    cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                       silence_logs=logging.ERROR, dashboard_address="127.0.0.1:0",
                                       env=local_worker_env())
    c = distributed.Client(cluster)

    def close():
        c.close()
        cluster.close()

    return c, close


def _connect_scheduler(distributed, scheduler: str, timeout: float):
    """A client of the scheduler at ``scheduler`` (address or scheduler file); an error naming it within ``timeout`` s."""
    shown = redact(scheduler)
    if _is_scheduler_file(scheduler):
        if not os.path.isfile(scheduler):
            msg = (f"--scheduler {shown}: scheduler file not found ({os.path.abspath(scheduler)}); start a scheduler "
                   f"with `dask scheduler --scheduler-file {shown}`, or give its address (tcp://HOST:8786)")
            raise HepnnError(msg)
        try:
            with open(scheduler) as handle:
                address = json.load(handle)["address"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            msg = (f"--scheduler {shown}: not a Dask scheduler file ({type(err).__name__}: {err}); it should be the "
                   "JSON file written by `dask scheduler --scheduler-file FILE`")
            raise HepnnError(msg) from None
        where = f"{shown} (address {redact(str(address))})"
    else:
        address, where = scheduler, shown
    try:
        c = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        msg = (f"--scheduler {where}: cannot connect to the Dask scheduler within {timeout:g} s "
               f"({type(err).__name__}: {redact(str(err))}); check that it is running and reachable from this machine")
        raise HepnnError(msg) from None
    return c, c.close


def _run_dask(run_dir, todo, absolute, out, names, fingerprint, options, result, log, *, workers, scheduler, client,
              retries, timeout=None) -> None:
    c, close = _connect(workers, scheduler, client, timeout=timeout)
    try:
        from distributed import as_completed

        if workers is not None and options["tf_threads"] is None:
            options = {**options, "tf_threads": local_tf_threads(int(workers))}
        token = hashlib.sha1(f"{run_dir}{time.time_ns()}".encode()).hexdigest()[:8]
        # the run's problems (files missing, model unreadable) are one error, not one failure per input:
        # one worker loads the tagger first (it keeps it for its files)
        probe = c.submit(tagger_loads, run_dir, fingerprint, options["tf_threads"], key=f"hepnn-predict-load-{token}",
                         pure=False)
        try:
            probe.result()
        except Exception as err:  # noqa: BLE001 - one error for the whole run
            raise HepnnError(_error_text(err)) from None
        futures = {}
        for p in todo:
            key = f"hepnn-predict-{Path(p).stem}-{_path_hash(p)}-{token}"
            future = c.submit(score_file, run_dir, absolute[p], str(out / names[p]), fingerprint, key=key, pure=False,
                              retries=retries, **options)
            futures[future] = p
        for future in as_completed(list(futures)):
            p = futures[future]
            try:
                info = future.result()
            except Exception as err:  # noqa: BLE001 - reported per file, the others go on
                result.failed[p] = _error_text(err)
                log(f"failed {p}: {result.failed[p]}")
                continue
            result.written[p] = Path(info["output"])
            log(f"wrote {info['output']} (worker pid {info['pid']}, {info['seconds']:.1f} s)")
    finally:
        close()
