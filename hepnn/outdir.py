"""Output directories owned by hepnn: a marker written first, a lock while a command writes.

Every directory hepnn writes into as a whole (a run directory of ``hepnn train``, the
output folder of ``hepnn run``, ``convert``, ``report``, ``export`` and ``tune``) is
*claimed* before anything else is written: a new or empty directory gets the marker file
``.hepnn`` first. A directory that already holds other files and no marker belongs to the
user and is refused (``--force`` claims it anyway), so ``hepnn train config.yaml --out .``
can never rewrite the user's own ``config.yaml``. Commands that write single named files
(``hepnn generate``, ``hepnn predict``) check each file with :func:`claim_file`: an
existing file is replaced only when hepnn wrote it, or with ``--force``.

While a command writes, it holds ``fcntl.flock`` on ``.hepnn.lock`` in the directory:
a second command on the same directory fails at once and names the holder's pid. The
kernel drops the lock when the holder exits, however it exits (SIGKILL, Slurm requeue).

Examples
--------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> with claim(out, "run"):
...     sorted(p.name for p in out.iterdir())
['.hepnn', '.hepnn.lock']
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from ._fileio import atomic_write_text, current_umask
from ._version import __version__
from .exceptions import OutputDirError

__all__ = ["MARKER", "LOCK", "claim", "claim_directory", "claim_file", "lock_directory", "is_owned", "runs_instead",
           "make_directory", "foreign_files"]

MARKER = ".hepnn"
LOCK = ".hepnn.lock"

# files that a hepnn directory made before markers existed holds (adopted without --force)
_LEGACY = {
    "run": ("config.yaml", "provenance.json"),
    "convert": ("config.yaml", "preprocessing.json", "train.npz"),
}

# entries that do not count as "other content" (hepnn's own scratch and lock)
_OURS = (MARKER, LOCK)
_SCRATCH_PREFIXES = (".worker-",)

_HELD: dict[Path, list] = {}  # directory -> [file object, count]: the locks this process holds


def is_owned(path: str | os.PathLike) -> bool:
    """True when ``path`` carries hepnn's marker file."""
    return (Path(path) / MARKER).is_file()


def runs_instead(path: str | os.PathLike) -> str | None:
    """For a folder that holds run directories (a ``hepnn tune`` study, a ``hepnn run`` output
    folder), the sentence naming the run directories to pass instead; else ``None``."""
    path = Path(path)
    try:
        kind = json.loads((path / MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    if kind == "tune":
        trials = []
        for trial in sorted((path / "trials").glob("*/tune.json"), key=lambda p: int(p.parent.name)
                            if p.parent.name.isdigit() else -1):
            try:
                info = json.loads(trial.read_text())
            except (OSError, ValueError):
                continue
            if info.get("state") == "complete" and isinstance(info.get("value"), (int, float)):
                trials.append((info["value"], info.get("objective", "val_loss"), trial.parent))
        if not trials:
            return (f"a `hepnn tune` study, not a run: its trials are the run directories {path / 'trials'}/<n> "
                    "(none has completed yet)")
        lowest = trials[0][1] == "val_loss"  # val_loss is minimised, auc and rejection maximised
        value, objective, best = (min if lowest else max)(trials, key=lambda t: t[0])
        return (f"a `hepnn tune` study, not a run: its trials are the run directories {path / 'trials'}/<n>; "
                f"the best ({objective} {value:.6g}) is {best}, retrain its best_config.yaml for a final run")
    if kind == "analysis":
        runs = sorted(p.name for p in path.iterdir() if (p / "config.yaml").is_file() and (p / MARKER).is_file())
        shown = ", ".join(str(path / name) for name in runs) or f"none yet ({path}/<variant>)"
        return f"a `hepnn run` output folder, not a run: its run directories are {shown}"
    return None


def _foreign(path: Path) -> list[str]:
    return sorted(
        p.name for p in path.iterdir()
        if p.name not in _OURS and not p.name.startswith(_SCRATCH_PREFIXES)
    )


def _json_with(path: Path, keys: tuple[str, ...]) -> bool:
    """True when ``path`` is a JSON object with all of ``keys``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in keys)


def _older_analysis(path: Path) -> bool:  # an analysis folder of an older hepnn: it holds run directories
    return any(p.is_dir() and (is_owned(p) or all((p / n).is_file() for n in _LEGACY["run"])) for p in path.iterdir())


def _older_tune(path: Path) -> bool:  # trials.csv or Optuna's study.db of an older hepnn tune
    try:
        with open(path / "trials.csv") as handle:
            if handle.readline().startswith("number,state,value,params,run_dir"):
                return True
    except OSError:
        pass
    if not (path / "study.db").is_file():
        return False
    # lazy: only for a folder without hepnn's marker; keeps `import hepnn.cli` light
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path / 'study.db'}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        return False
    return {"studies", "trials"} <= tables


# folders of an older hepnn recognised by what they hold (hepnn's own files, not only their names)
_OLDER: dict[str, Callable[[Path], bool]] = {
    "analysis": _older_analysis,
    "report": lambda path: _json_with(path / "manifest.json", ("runs", "figures")),
    "export": lambda path: (path / "model.onnx").is_file() and _json_with(
        path / "metadata.json", ("max_abs_diff_vs_keras", "verified_on")),
    "tune": _older_tune,
}


def foreign_files(path: str | os.PathLike, kind: str) -> list[str]:
    """The entries of directory ``path`` that hepnn did not write, for which claiming it as ``kind``
    is refused without ``force`` (empty: missing, empty, owned, or hepnn's output of an older version)."""
    path = Path(path)
    if not path.is_dir() or is_owned(path):
        return []
    foreign = _foreign(path)
    legacy = _LEGACY.get(kind, ())
    older = _OLDER.get(kind)
    adopted = (bool(legacy) and all((path / name).is_file() for name in legacy)) or (
        older is not None and older(path))
    return [] if adopted else foreign


def claim_directory(path: str | os.PathLike, kind: str, force: bool = False) -> Path:
    """Create or adopt ``path`` as a hepnn output directory of ``kind`` and return it.

    Raises
    ------
    OutputDirError
        ``path`` is a file or cannot be created, or a directory with other content and no marker
        that is not hepnn's output of an older version (unless ``force``).
    """
    path = Path(path)
    if path.is_dir() and not is_owned(path):
        foreign = foreign_files(path, kind)
        if foreign and not force:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            msg = (f"--out {path}: the directory exists, holds files hepnn did not write ({shown}) and is not a "
                   f"hepnn {kind} directory; hepnn could overwrite them. Choose a new or empty --out, "
                   "or pass --force to write into it anyway")
            raise OutputDirError(msg)
    make_directory(path)
    if not is_owned(path):
        marker = {"hepnn": __version__, "kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            atomic_write_text(path / MARKER, json.dumps(marker) + "\n")
        except OSError as err:
            msg = f"--out {path}: cannot write into the directory ({err.strerror or err}); choose another --out"
            raise OutputDirError(msg) from None
    return path


def make_directory(path: str | os.PathLike) -> Path:
    """Create the directory ``path`` (and its parents) if needed and return it.

    Raises
    ------
    OutputDirError
        ``path`` is a file, or cannot be created (no permission, a parent that is a file, ``/proc``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"--out {path}: exists and is not a directory; choose another --out"
        raise OutputDirError(msg)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"--out {path}: cannot create the directory ({err.strerror or err}); choose another --out"
        raise OutputDirError(msg) from None
    return path


def claim_file(path: str | os.PathLike, what: str, written_by_hepnn: Callable[[Path], bool],
               force: bool = False) -> Path:
    """Check that the output file ``path`` may be written and return it.

    A new file may; an existing one only when ``written_by_hepnn(path)`` says hepnn wrote
    it (a rerun replaces its own output), or with ``force``.

    Raises
    ------
    OutputDirError
        ``path`` is a directory, or a file hepnn did not write (unless ``force``); the
        message names it and says how to go on.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> mine = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = mine.write_text("my notes")
    >>> try:
    ...     claim_file(mine, "sample of hepnn generate", lambda p: False)
    ... except OutputDirError as err:
    ...     print("pass --force" in str(err))
    True
    >>> claim_file(mine, "sample of hepnn generate", lambda p: False, force=True).name
    'notes.txt'
    """
    path = Path(path)
    if path.is_dir():
        msg = f"{path}: is a directory, expected a file; choose another --out"
        raise OutputDirError(msg)
    if path.exists() and not force and not written_by_hepnn(path):
        msg = (f"{path}: the file exists and is not a {what}; hepnn would replace it. Choose another "
               "--out, move the file away, or pass --force to replace it")
        raise OutputDirError(msg)
    return path


@contextlib.contextmanager
def lock_directory(path: str | os.PathLike, reader: str | None = None) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path/.hepnn.lock`` (re-entrant within one process).

    ``reader``: the command that writes into a folder it was given as input (``"hepnn explain"``
    into a run), named in the error instead of ``--out``.

    Raises
    ------
    OutputDirError
        Another process holds the lock (its pid is in the message).
    """
    import fcntl

    path = Path(path)
    key = path.resolve()
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield path
        finally:
            held[1] -= 1
        return
    handle = open(path / LOCK, "a+")  # noqa: SIM115 - kept open while the lock is held
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        if reader:
            msg = (f"{path}: another hepnn command (pid {holder}) is writing into this directory; wait for it "
                   f"to finish or stop it, then run {reader} again")
        else:
            msg = (f"--out {path}: another hepnn command (pid {holder}) is writing into this directory; wait for it "
                   "to finish, stop it, or choose another --out")
        raise OutputDirError(msg) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        with contextlib.suppress(OSError):
            os.chmod(path / LOCK, 0o666 & ~_umask())
        _HELD[key] = [handle, 1]
        yield path
    finally:
        _HELD.pop(key, None)
        with contextlib.suppress(OSError):
            handle.truncate(0)
        handle.close()  # closing releases the flock


@contextlib.contextmanager
def claim(path: str | os.PathLike, kind: str, force: bool = False) -> Iterator[Path]:
    """:func:`claim_directory` then :func:`lock_directory` for the duration of the block."""
    path = claim_directory(path, kind, force=force)
    with lock_directory(path):
        yield path


def _umask() -> int:
    return current_umask()
