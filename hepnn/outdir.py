"""Output directories owned by hepnn: a marker written first, a lock while a command writes.

Every directory hepnn writes into as a whole (a run directory of ``hepnn train``, the
output folder of ``hepnn run`` and of ``hepnn convert``) is *claimed* before anything
else is written: a new or empty directory gets the marker file ``.hepnn`` first. A
directory that already holds other files and no marker belongs to the user and is
refused (``--force`` claims it anyway), so ``hepnn train config.yaml --out .`` can
never rewrite the user's own ``config.yaml``.

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
from typing import Iterator

from ._fileio import atomic_write_text, current_umask
from ._version import __version__
from .exceptions import OutputDirError

__all__ = ["MARKER", "LOCK", "claim", "claim_directory", "lock_directory", "is_owned"]

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


def _foreign(path: Path) -> list[str]:
    return sorted(
        p.name for p in path.iterdir()
        if p.name not in _OURS and not p.name.startswith(_SCRATCH_PREFIXES)
    )


def claim_directory(path: str | os.PathLike, kind: str, force: bool = False) -> Path:
    """Create or adopt ``path`` as a hepnn output directory of ``kind`` and return it.

    Raises
    ------
    OutputDirError
        ``path`` is a file, or a directory with other content and no marker (unless ``force``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"--out {path}: exists and is not a directory; choose another --out"
        raise OutputDirError(msg)
    if path.is_dir() and not is_owned(path):
        foreign = _foreign(path)
        legacy = _LEGACY.get(kind, ())
        adopted = bool(legacy) and all((path / name).is_file() for name in legacy)
        if kind == "analysis":  # an analysis folder of an older hepnn: it holds run directories
            adopted = any(p.is_dir() and (is_owned(p) or all((p / n).is_file() for n in _LEGACY["run"]))
                          for p in path.iterdir())
        if foreign and not adopted and not force:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            msg = (f"--out {path}: the directory exists, holds files hepnn did not write ({shown}) and is not a "
                   f"hepnn {kind} directory; hepnn could overwrite them. Choose a new or empty --out, "
                   "or pass --force to write into it anyway")
            raise OutputDirError(msg)
    path.mkdir(parents=True, exist_ok=True)
    if not is_owned(path):
        marker = {"hepnn": __version__, "kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_text(path / MARKER, json.dumps(marker) + "\n")
    return path


@contextlib.contextmanager
def lock_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path/.hepnn.lock`` (re-entrant within one process).

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
