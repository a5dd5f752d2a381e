"""Create or join an Optuna study and run trials; several workers may share one study.

The number of trials is exact, whatever the number of workers: the process that
creates the study puts ``n_trials`` placeholder trials in Optuna's trial queue
(``WAITING``; for a grid search, one per grid point with its parameters fixed), and
workers only ever take trials from that queue. Taking a waiting trial is an atomic
``WAITING -> RUNNING`` update in the storage, so no trial is run twice and none is
lost. Each running trial records a heartbeat; a worker that finds a trial whose
heartbeat stopped (its worker was killed) marks it ``FAIL`` and puts a copy with the
same parameters back in the queue, so the study still ends with ``n_trials`` trials
that completed or were pruned. A trial whose worker ran on this machine and is gone (the
rerun of a killed ``hepnn tune``) is failed and re-queued at once, without waiting for
its heartbeat to go stale.

The sampler draws each trial's values from a generator seeded with ``(seed, trial number)``,
so a study resumed after a kill (or with more ``--trials``) draws the values an uninterrupted
run would have, instead of starting the sampler's sequence again (which repeated the values
of the first trials).

Storage: ``sqlite:///OUT/study.db`` by default (processes on one machine), or any
SQLAlchemy database URL (``postgresql://...``, ``mysql://...``) for workers on several
machines.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import inspect
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from .._fileio import atomic_write_text
from .._redact import STORAGE_ENV, redact
from ..exceptions import ConfigError, HepnnError
from ..outdir import claim_directory
from .space import SearchSpace, load_space
from .._optional import require
from ..config import dump_config, load_config, save_config
from ..config.loader import dump_yaml
from ..exceptions import suggest

__all__ = [
    "SAMPLERS",
    "storage_url",
    "make_storage",
    "make_sampler",
    "make_pruner",
    "open_study",
    "fill_queue",
    "run_worker",
    "spawn_workers",
    "write_results",
    "tune",
]

SAMPLERS = ("tpe", "random", "grid")

#: seconds between heartbeats of a running trial; a trial is stale after ``2 x`` this
HEARTBEAT_INTERVAL = 30

#: the first epoch at which the default pruner may stop a trial: never on its first epoch (epochs are
#: reported 1-based, see :class:`hepnn.tune.objective.TrainingObjective`)
FIRST_PRUNABLE_EPOCH = 2


def _optuna():
    optuna = require("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- storage and study ---------------------------------------------------------------


def storage_url(out: str | os.PathLike, storage: str | None = None) -> str:
    """The storage URL: ``storage`` if given, else ``sqlite:///<OUT>/study.db`` (absolute).

    Examples
    --------
    >>> storage_url("/tmp/tune")
    'sqlite:////tmp/tune/study.db'
    """
    if storage:
        return storage
    return f"sqlite:///{Path(out).resolve() / 'study.db'}"


def _requeue_stale_trial(study, trial) -> None:
    """Put a copy of a trial whose worker died back in the queue (same parameters).

    The parameters are the ones it was queued with (a grid point's ``fixed_params``) and those it drew:
    a grid trial killed before it drew its values keeps its grid point instead of a random one.
    """
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    study.enqueue_trial(params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)


def make_storage(url: str, heartbeat_interval: int | None = HEARTBEAT_INTERVAL, grace_period: int | None = None):
    """An Optuna ``RDBStorage`` with heartbeats and re-queueing of trials whose worker died."""
    optuna = _optuna()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = int(heartbeat_interval)
        kwargs["grace_period"] = int(grace_period) if grace_period is not None else 2 * int(heartbeat_interval)
        params = inspect.signature(optuna.storages.RDBStorage).parameters
        name = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
        kwargs[name] = _requeue_stale_trial
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(optuna.exceptions, "ExperimentalWarning", Warning))
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
            if url.startswith("sqlite"):
                _begin_immediate(storage.engine)
            return storage
        except Exception as err:  # noqa: BLE001 - database errors can quote the URL with its password
            msg = (f"--storage {redact(url)}: cannot open the study database ({type(err).__name__}: "
                   f"{redact(str(err)).splitlines()[0] if str(err) else ''}); check the URL, that the server is "
                   "reachable and that its database driver is installed")
            raise HepnnError(msg) from None


def _begin_immediate(engine) -> None:
    """Make every transaction on a SQLite ``engine`` start with ``BEGIN IMMEDIATE``.

    Python's sqlite3 driver starts a transaction only at the first write, so the read of a
    read-then-write (a worker finding a WAITING trial and marking it RUNNING) runs outside it: two
    workers both read WAITING and both claim the trial. ``BEGIN IMMEDIATE`` takes SQLite's write lock
    when the transaction starts, so transactions run one after the other (waiting out the busy
    timeout) and the read and the write are one atomic step, as ``SELECT ... FOR UPDATE`` makes them
    on a database server. SQLAlchemy's recipe for SQLite transactions: the driver's own BEGIN is
    switched off and the engine emits ours.
    """
    import sqlalchemy  # Optuna's database layer, installed with it

    @sqlalchemy.event.listens_for(engine, "connect")
    def _driver_begins_nothing(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the storage was set up reconnect with the listeners


def make_sampler(name: str, seed: int | None = 0):
    """An Optuna sampler: ``tpe``, ``random`` or ``grid``.

    A grid search runs the grid points put in the queue by :func:`fill_queue`; their
    parameters are fixed, so the sampler itself only has to accept them.
    """
    optuna = _optuna()
    if name not in SAMPLERS:
        msg = f"--sampler {name!r}: unknown sampler{suggest(name, SAMPLERS)}; valid: {', '.join(SAMPLERS)}"
        raise ConfigError(msg)
    if name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    sampler._hepnn_seed = seed  # read by _seed_sampler before each trial
    return sampler


def make_pruner():
    """The default pruner of ``hepnn tune``: Optuna's median pruner, with hepnn's epoch numbers.

    A trial is stopped after an epoch when its reported value (``val_loss``, or ``val_auc`` for
    the physics objectives) is worse than the median of the completed trials at the same epoch,
    once 3 trials have completed, and never on its first epoch: from epoch
    :data:`FIRST_PRUNABLE_EPOCH` (2) on. hepnn reports epochs 1-based and Optuna prunes from step
    ``n_warmup_steps`` on (it skips ``step < n_warmup_steps``), so ``n_warmup_steps=1`` allowed
    pruning at epoch 1, on a single noisy epoch.

    Examples
    --------
    >>> type(make_pruner()).__name__  # doctest: +SKIP
    'MedianPruner'
    """
    optuna = _optuna()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=FIRST_PRUNABLE_EPOCH)


def open_study(name: str, storage, direction: str = "minimize", sampler: str = "tpe", seed: int | None = 0,
               pruner=None):
    """Create the study ``name`` in ``storage`` or load it; the direction must match.

    ``storage``: a storage object (:func:`make_storage`), a database URL, or ``None``
    (in memory). :func:`run_worker` claims trials through the same storage. ``pruner``:
    default :func:`make_pruner` (never on a trial's first epoch).
    """
    optuna = _optuna()
    if storage is None:
        storage = optuna.storages.InMemoryStorage()
    elif isinstance(storage, str):
        storage = make_storage(storage)
    if pruner is None:
        pruner = make_pruner()
    study = optuna.create_study(
        study_name=name, storage=storage, direction=direction, sampler=make_sampler(sampler, seed),
        pruner=pruner, load_if_exists=True,
    )
    _STORAGES[study] = storage
    have = study.direction.name.lower()
    if have != direction:
        msg = (
            f"study {name!r} in {redact(str(getattr(storage, 'url', storage)))} is a {have} study, but the objective asks to "
            f"{direction}; use another --out or --storage, or the same --objective"
        )
        raise ConfigError(msg)
    return study


#: study -> the storage object it was opened with (Optuna keeps its own reference private)
_STORAGES: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _storage_and_id(study):
    """The storage of a study opened by :func:`open_study`, and the study's id in it (public Optuna API)."""
    storage = _STORAGES.get(study)
    if storage is None:
        msg = f"study {study.study_name!r}: open it with hepnn.tune.study.open_study (hepnn claims trials through its storage)"
        raise ConfigError(msg)
    return storage, storage.get_study_id_from_name(study.study_name)


def fill_queue(study, n_trials: int | None, space: SearchSpace | None = None, sampler: str = "tpe",
               log: Callable[[str], None] = print) -> int:
    """Queue placeholder trials until the study holds ``n_trials`` live trials; return how many were added.

    Live trials are waiting, running, complete or pruned (failed ones do not count).
    For ``sampler="grid"`` the queue holds each grid point not yet tried, with its
    parameters fixed, and ``n_trials=None`` means the whole grid.
    """
    optuna = _optuna()
    state = optuna.trial.TrialState
    live = (state.WAITING, state.RUNNING, state.COMPLETE, state.PRUNED)
    trials = study.get_trials(deepcopy=False, states=live)
    if sampler == "grid":
        if space is None:
            msg = "a grid search needs the search space"
            raise ConfigError(msg)
        grid = space.grid()
        if n_trials is None:
            n_trials = len(grid)
        elif n_trials > len(grid):
            log(f"the grid has {len(grid)} points: running {len(grid)} trials, not {n_trials}")
            n_trials = len(grid)
        seen = [_params_key(t.system_attrs.get("fixed_params", t.params)) for t in trials]
        todo = [p for p in grid if _params_key(p) not in seen][: max(0, n_trials - len(trials))]
        for params in todo:
            study.enqueue_trial(params, skip_if_exists=False)
        added = len(todo)
    else:
        if n_trials is None:
            msg = "--trials: the number of trials is required for tpe and random searches"
            raise ConfigError(msg)
        added = max(0, n_trials - len(trials))
        for _ in range(added):
            study.enqueue_trial({}, skip_if_exists=False)
    study.set_user_attr("n_trials", int(n_trials))
    return added


def _check_same_search(study, base: Any, space: SearchSpace, url: str = "", objective: str | None = None) -> None:
    """Record the base config, search space and objective of a new study; refuse to resume one started
    with others.

    Trials of another base config are not comparable, and ``best_config.yaml`` is the current base
    config plus the best trial's values: it would not train to the number reported. Values of another
    objective of the same direction (``auc`` and ``rejection@0.5``, or two working points) would be
    ranked together, and the best trial chosen between an AUC and a rejection. The objective's name is
    kept in the study's ``objective`` user attribute (the y label of the history plot).
    """
    _check_same_objective(study, objective, url)
    search = {"space": hashlib.sha256(_space_yaml(space).encode()).hexdigest()}
    if base is not None:  # where the data lie may differ between the machines of --join workers
        local = dataclasses.replace(base, data=dataclasses.replace(base.data, directory=None))
        search["base_config"] = hashlib.sha256(dump_config(local).encode()).hexdigest()
    for key, digest in search.items():
        have = study.user_attrs.get(f"hepnn_{key}")
        if have is None:
            study.set_user_attr(f"hepnn_{key}", digest)
        elif have != digest:
            what = "search space (--space)" if key == "space" else "base config (CONFIG and --set)"
            msg = (
                f"study {study.study_name!r} in {redact(url)} was started with another {what}; its trials would not "
                f"compare with new ones: rerun with the same {what}, or use another --out, --storage or --study-name"
            )
            raise ConfigError(msg)


def _check_same_objective(study, objective: str | None, url: str) -> None:
    """Record a named objective in a new study; refuse another one in a study that has one."""
    if objective is None:  # a Python callable: no name to compare
        return
    have = study.user_attrs.get("objective")
    if have is None:
        study.set_user_attr("objective", objective)
    elif have != objective:
        msg = (
            f"study {study.study_name!r} in {redact(url)} was started with --objective {have}, not {objective}; "
            f"its trial values would be ranked with the new ones: rerun with --objective {have}, or use another "
            "--out, --storage or --study-name"
        )
        raise ConfigError(msg)


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


# --- workers ---------------------------------------------------------------------------


#: attempts of a study-database call that SQLite answers with "database is locked"
_DB_ATTEMPTS = 30


def _transient(err: BaseException) -> bool:
    """SQLite's "database is locked" / "busy": another worker holds the write lock. SQLite returns it
    at once, without waiting out the busy timeout, when two readers both try to start writing."""
    text = str(err).lower()
    return type(err).__name__ == "OperationalError" and ("locked" in text or "busy" in text)


def _retrying(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, tried again (with a growing pause) while the database is locked."""
    for attempt in range(_DB_ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - only SQLite's lock errors are retried
            if not _transient(err) or attempt == _DB_ATTEMPTS - 1:
                raise
            time.sleep(min(0.05 * 2 ** attempt, 2.0))
    raise AssertionError("unreachable")


def _tell(study, trial, value: float | None = None, state=None) -> None:
    """``study.tell``, retried while the database is locked.

    Optuna stores the trial's state in a ``finally`` after the sampler's ``after_trial``, so an
    attempt that raised "database is locked" may still have stored it: a retry then finds the trial
    finished, which is this worker's own result, not an error (``skip_if_finished``)."""
    _retrying(study.tell, trial, value, state=state, skip_if_finished=True)


def _seed_sampler(sampler, number: int) -> None:
    """Seed the random generators of a sampler made by :func:`make_sampler` with ``(seed, number)``.

    Optuna's samplers draw from one generator seeded once per process: a study resumed in a new
    process (after a kill, or with more ``--trials``) started that sequence again, and its new
    trials repeated the values of the first ones. Seeded per trial, trial ``n`` draws the values
    it would have drawn in an uninterrupted run (for TPE, while its history of finished trials is
    the same: always during its random start-up trials).
    """
    base = getattr(sampler, "_hepnn_seed", None)
    if base is None:  # no seed asked for (or a sampler hepnn did not make): Optuna's own randomness
        return
    import numpy as np

    state = int(np.random.SeedSequence([int(base) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])
    for part in (sampler, getattr(sampler, "_random_sampler", None)):
        rng = getattr(part, "_rng", None)
        if rng is not None and hasattr(rng, "rng"):
            rng.rng.seed(state)


def _this_process() -> dict[str, Any] | None:
    """Who runs a trial, to tell later whether it is still alive: host, boot, pid namespace, pid and
    start time (Linux ``/proc``); None where that cannot be known."""
    pid = os.getpid()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    status = _status(pid)
    if status is None:
        return None
    return {"host": socket.gethostname(), "boot": boot, "ns": namespace, "pid": pid, "start": status[1]}


def _status(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` from ``/proc/<pid>/stat`` (readable for any user's
    process); None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], fields[19]  # fields 3 and 22: the state, the start time in clock ticks after boot


_READ = object()  # _worker_gone's default: read _this_process() itself


def _worker_gone(worker: Any, me: Any = _READ) -> bool:
    """True when ``worker`` (a trial's ``hepnn_worker`` attribute) is a process of this machine that has
    ended (no such pid, a zombie, or the pid of another process since); False when alive or unknown
    (another machine or pid namespace: its heartbeat tells). ``me``: :func:`_this_process` of the
    caller, read once per pass over the running trials (default: read here)."""
    if me is _READ:
        me = _this_process()
    if me is None or not isinstance(worker, dict) or worker.get("host") != me["host"]:
        return False
    if worker.get("boot") != me["boot"]:
        return True  # the machine was restarted since
    if worker.get("ns") != me["ns"] or not isinstance(worker.get("pid"), int):
        return False
    status = _status(worker["pid"])
    return status is None or status[0] in ("Z", "X") or status[1] != worker.get("start")


def _fail_dead_local_trials(study) -> None:
    """Fail and re-queue the running trials whose worker ran on this machine and has ended (killed).

    Their heartbeat would go stale only after the grace period (60 s by default): a ``hepnn tune``
    rerun at once after a kill otherwise left the killed trial RUNNING for ever and ended the study
    a trial short, choosing ``best_config.yaml`` among the others.
    """
    optuna = _optuna()
    storage, study_id = _storage_and_id(study)
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    me = _this_process() if running else None  # two /proc reads: once per pass, not once per trial
    for trial in running:
        if not _worker_gone(trial.system_attrs.get("hepnn_worker"), me):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
            continue
        _requeue_stale_trial(study, trial)


def _claim_waiting_trial(study) -> int | None:
    """Atomically move one waiting trial to RUNNING and return its id (None: queue empty)."""
    optuna = _optuna()
    storage, study_id = _storage_and_id(study)
    # listed through the study: its (cached) storage then knows the trials the worker goes on to use
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.RUNNING):
                return trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


@contextlib.contextmanager
def _heartbeat(storage, trial_id: int) -> Iterator[None]:
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried at the next interval
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    _retrying(storage.record_heartbeat, trial_id)
    thread = threading.Thread(target=beat, name=f"hepnn-tune-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _fail_stale_trials(study) -> None:
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(optuna.exceptions, "ExperimentalWarning", Warning))
        optuna.storages.fail_stale_trials(study)


def run_worker(study, objective: Callable[[Any], float], log: Callable[[str], None] = print,
               max_trials: int | None = None) -> int:
    """Run queued trials of ``study`` until the queue is empty; return how many this worker ran.

    ``objective(trial) -> float`` may raise ``optuna.TrialPruned``. Any other exception
    marks the trial ``FAIL`` and the worker goes on with the next one, except a
    ``ConfigError``, which is the same for every trial and stops the worker.

    Examples
    --------
    >>> study = open_study("toy", "sqlite:///study.db")  # doctest: +SKIP
    >>> fill_queue(study, 10); run_worker(study, lambda t: t.suggest_float("x", -1, 1) ** 2)  # doctest: +SKIP
    10
    """
    optuna = _optuna()
    state = optuna.trial.TrialState
    storage, _ = _storage_and_id(study)
    n_run = 0
    while max_trials is None or n_run < max_trials:
        _retrying(_fail_stale_trials, study)
        _retrying(_fail_dead_local_trials, study)
        trial_id = _retrying(_claim_waiting_trial, study)
        if trial_id is None:
            break
        worker = _this_process()
        if worker is not None:  # who runs it: a rerun after a kill fails and re-queues the trial at once
            with contextlib.suppress(Exception):  # without it the heartbeat still tells, later
                _retrying(storage.set_trial_system_attr, trial_id, "hepnn_worker", worker)
        _seed_sampler(study.sampler, _retrying(storage.get_trial_number_from_id, trial_id))
        trial = optuna.Trial(study, trial_id)
        n_run += 1
        value, result, error = None, state.COMPLETE, None
        with _heartbeat(storage, trial_id):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                result = state.PRUNED
            except KeyboardInterrupt:
                _tell(study, trial, state=state.FAIL)
                raise
            except Exception as err:  # noqa: BLE001 - one bad trial must not end the study
                result, error = state.FAIL, err
        if result == state.COMPLETE and (value is None or math.isnan(float(value))):
            result, error = state.FAIL, ValueError(f"the objective returned {value!r}")
        if result == state.COMPLETE:
            _tell(study, trial, float(value))
            log(f"trial {trial.number}: {float(value):.6g}")
        else:
            _tell(study, trial, state=result)
            log(f"trial {trial.number}: {result.name.lower()}" + (f" ({type(error).__name__}: {error})" if error else ""))
            if isinstance(error, ConfigError):
                raise error
    return n_run


def spawn_workers(n_workers: int, argv: list[str], log: Callable[[str], None] = print,
                  env: Mapping[str, str] | None = None, storage: str | None = None) -> list[int]:
    """Start ``n_workers`` processes ``python -m hepnn <argv> --worker-seed i`` and wait for them all.

    ``storage`` (the study's database URL, which may hold a password) is handed over in
    the environment variable ``HEPNN_TUNE_STORAGE``, never on the command line, where
    every user of the machine could read it (``ps``). Returns the exit codes.
    """
    child_env = dict(env) if env is not None else dict(os.environ)
    if storage is not None:
        child_env[STORAGE_ENV] = storage
    procs = []
    for i in range(n_workers):
        cmd = [sys.executable, "-m", "hepnn", *argv, "--worker-seed", str(i + 1)]
        procs.append(subprocess.Popen(cmd, env=child_env))
    codes = [p.wait() for p in procs]
    for i, code in enumerate(codes):
        if code != 0:
            log(f"worker {i + 1} exited with code {code}")
    return codes


# --- results ---------------------------------------------------------------------------


def _trial_rows(study) -> list[dict[str, Any]]:
    trials = study.get_trials(deepcopy=False)
    # a killed trial's folder moved to the trial that retried it (optuna cannot change a finished
    # trial's attributes): its row shows where the folder is now
    moved = {t.user_attrs["retry_of"]: t.user_attrs.get("run_dir", "") for t in trials
             if t.user_attrs.get("retry_of", "") != "" and t.user_attrs.get("run_dir")}
    complete = _optuna().trial.TrialState.COMPLETE
    rows = []
    for t in trials:
        rows.append({
            "number": t.number,
            "state": t.state.name,
            # Optuna gives a pruned trial its last per-epoch report as value (val_auc for a rejection
            # objective, one epoch's val_loss): not the objective, so it is left out as for failed trials
            "value": "" if t.value is None or t.state != complete else repr(float(t.value)),
            "params": json.dumps(t.params, sort_keys=True),
            "run_dir": moved.get(t.number, t.user_attrs.get("run_dir", "")),
            "duration_s": "" if t.duration is None else f"{t.duration.total_seconds():.3f}",
            "retry_of": t.user_attrs.get("retry_of", ""),
        })
    return rows


def write_results(study, out: str | os.PathLike, space: SearchSpace | None = None, base_config: Any = None,
                  plots: bool = True, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Write ``trials.csv``, ``best_config.yaml`` (when a trial completed) and the plots into ``out``.

    ``trials.csv`` has one row per trial: ``number, state, value, params, run_dir, duration_s, retry_of``.
    ``value`` is the objective value of a ``COMPLETE`` trial and empty for the others (a pruned trial's
    per-epoch reports are in the study, ``trial.intermediate_values``); ``params`` are Optuna's
    parameters (a list or mapping choice as its JSON string).
    """
    out = Path(out)
    written: dict[str, Path] = {}
    rows = _trial_rows(study)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["number", "state", "value", "params", "run_dir", "duration_s", "retry_of"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    written["trials"] = atomic_write_text(out / "trials.csv", buffer.getvalue())
    optuna = _optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if complete and base_config is not None and space is not None:
        best = study.best_trial
        config = load_config(base_config, space.overrides(space.decode(best.params)))
        written["best_config"] = save_config(config, out / "best_config.yaml")
        log(f"best trial {best.number}: {best.value:.6g} with {space.decode(best.params)}")
    if plots and complete:
        # lazy: keeps `import hepnn.tune` free of numpy
        from .plots import plot_importances, plot_optimization_history
        from ..plotting import save_figure

        history_ax = plot_optimization_history(study)
        written["history_plot"] = save_figure(history_ax.figure, out / "plots" / "optimization_history", ("png",))[0]
        _close(history_ax)
        try:
            ax = plot_importances(study)
        except (RuntimeError, ValueError) as err:  # too few trials, or a single distinct value
            log(f"no parameter importances: {err}")
        else:
            written["importance_plot"] = save_figure(ax.figure, out / "plots" / "param_importances", ("png",))[0]
            _close(ax)
    return written


def _close(ax) -> None:
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


# --- the whole search -----------------------------------------------------------------


def tune(config: Any, space: Any, out: str | os.PathLike, n_trials: int | None = None, objective: Any = "val_loss",
         sampler: str = "tpe", seed: int = 0, storage: str | None = None, workers: int = 1,
         overrides: Iterable[str] = (), study_name: str | None = None, prune: bool = True, data: Mapping | None = None,
         heartbeat_interval: int | None = HEARTBEAT_INTERVAL, join: bool = False, plots: bool = True,
         log: Callable[[str], None] = print, force: bool = False):
    """Run a hyper-parameter search and return the Optuna study.

    Parameters
    ----------
    config : path, mapping or Config
        The base configuration.
    space : path, mapping or SearchSpace
        The search space (see :mod:`hepnn.tune.space`).
    out : path
        Study folder: ``study.db`` (default storage), ``trials/<n>/`` run directories,
        ``trials.csv``, ``best_config.yaml``, ``plots/``, ``space.yaml``, ``base_config.yaml``.
    n_trials : int, optional
        Trials in total over all workers (a grid search defaults to the whole grid).
    objective : str or callable
        ``val_loss``, ``auc``, ``rejection@<eff>``, or a callable ``f(trial) -> float`` (minimised;
        for tests and custom studies). A named objective is recorded in the study: resuming or
        joining it with another one is a ``ConfigError``.
    sampler : {"tpe", "random", "grid"}
    seed : int
        Sampler seed, the same in every worker: trial ``n`` draws its values from ``(seed, n)``,
        so a random or grid search gives the same trials whatever the number of workers
        (a TPE trial also depends on the trials finished before it).
    storage : str, optional
        Database URL shared by workers (default: the environment variable
        ``HEPNN_TUNE_STORAGE``, else ``sqlite:///OUT/study.db``). A password in it is
        never written or printed (shown as ``***``) and reaches worker processes through
        the environment, not their command line.
    workers : int
        Local worker processes (1: run in this process).
    join : bool
        Only run queued trials of an existing study (a worker): no queue filling, no results.
    force : bool
        Write into an existing ``out`` that holds files hepnn did not write. ``out`` is
        claimed for hepnn (see :mod:`hepnn.outdir`) before the study is opened; rerunning
        into it resumes the study. It is not locked: ``join`` workers write into it too.

    Examples
    --------
    >>> study = tune("config.yaml", "space.yaml", "runs/tune", n_trials=20, objective="auc")  # doctest: +SKIP
    >>> study.best_params  # doctest: +SKIP
    """
    # lazy: keeps `import hepnn.tune` free of numpy
    from .objective import TrainingObjective, parse_objective

    out = Path(out)
    log = _redacting(log)
    space = space if isinstance(space, SearchSpace) else load_space(space)
    overrides = list(overrides)
    if workers < 1:
        msg = f"--workers: expected a positive number of worker processes, received {workers}"
        raise ConfigError(msg)
    if callable(objective):
        direction, fn, base = "minimize", objective, (load_config(config, overrides) if config is not None else None)
        name_of_objective = None  # a Python function: nothing to compare with a resumed study
    else:
        metric, direction, working_point = parse_objective(objective)
        name_of_objective = metric if working_point is None else f"{metric}@{working_point:g}"
        fn = TrainingObjective(config, space, out, objective, overrides=overrides, data=data, prune=prune, log=log)
        base = fn.base
    name = study_name or (base.name if base is not None and base.name else "hepnn-tune")
    claim_directory(out, "tune", force=force)
    url = storage_url(out, storage or os.environ.get(STORAGE_ENV) or None)
    study = open_study(name.replace("/", "-"), make_storage(url, heartbeat_interval), direction, sampler, seed)
    _check_same_search(study, base, space, url, name_of_objective)
    if join:
        run_worker(study, fn, log=log)
        return study
    out.mkdir(parents=True, exist_ok=True)
    added = fill_queue(study, n_trials, space, sampler, log=log)
    log(f"study {study.study_name!r} in {redact(url)}: {added} trial(s) queued, {workers} worker(s)")
    t0 = time.perf_counter()
    if workers == 1:
        run_worker(study, fn, log=log)
    else:
        if callable(objective):
            msg = "workers > 1 needs a named objective (worker processes cannot receive a Python function)"
            raise ConfigError(msg)
        save_config(base, out / "base_config.yaml")
        atomic_write_text(out / "space.yaml", _space_yaml(space))
        argv = ["tune", str(out / "base_config.yaml"), "--space", str(out / "space.yaml"), "--out", str(out),
                "--objective", str(objective), "--sampler", sampler, "--seed", str(seed),
                "--study-name", study.study_name, "--join"]  # the workers join this study, whatever its name
        if heartbeat_interval is not None:
            argv += ["--heartbeat", str(heartbeat_interval)]
        if not prune:
            argv.append("--no-prune")
        codes = spawn_workers(workers, argv, log=log, storage=url)
        if any(codes):
            log("some workers failed; rerun the same command to finish the study")
    log(f"{len(study.trials)} trial(s) in {time.perf_counter() - t0:.1f} s")
    write_results(study, out, space, base, plots=plots, log=log)
    if not callable(objective):
        _check_finished(study)
    return study


def _redacting(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` with secrets (storage passwords, tokens) redacted from every line."""
    if getattr(log, "_redacts", False):
        return log

    def redacted(message: str) -> None:
        log(redact(message))

    redacted._redacts = True  # type: ignore[attr-defined]
    return redacted


def _space_yaml(space: SearchSpace) -> str:
    data: dict[str, Any] = {}
    for d in space:
        if d.kind == "categorical":
            data[d.key] = list(d.choices)
        else:
            spec: dict[str, Any] = {d.kind: [d.low, d.high]}
            if d.log:
                spec["log"] = True
            if d.step is not None:
                spec["step"] = d.step
            data[d.key] = spec
    return dump_yaml(data)


def _check_finished(study) -> None:
    optuna = _optuna()
    state = optuna.trial.TrialState
    if study.get_trials(deepcopy=False, states=(state.FAIL,)) and not study.get_trials(
        deepcopy=False, states=(state.COMPLETE, state.PRUNED)
    ):
        msg = "every trial failed: see the messages above, or trials.csv"
        raise HepnnError(msg)
