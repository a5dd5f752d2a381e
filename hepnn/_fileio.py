"""Atomic writes: nothing partial ever appears under a final name.

Files and directories are created with the permissions the user's umask gives
(``0o666 & ~umask`` and ``0o777 & ~umask``), like any other program's output, so that
colleagues on a shared filesystem can read runs when the umask allows it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a concurrent writer's temporary file is not protected
    fcntl = None

__all__ = ["atomic_path", "atomic_write_text", "atomic_dir", "current_umask", "file_mode", "dir_mode"]


def current_umask() -> int:
    """The process umask (read without changing it where the OS allows)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: read by setting and restoring
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new output file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new output directory: ``0o777 & ~umask``."""
    return 0o777 & ~current_umask()


def _chmod_tree(path: Path) -> None:
    fmode, dmode = file_mode(), dir_mode()
    if path.is_dir() and not path.is_symlink():
        os.chmod(path, dmode)
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(root, name), dmode)
            for name in files:
                os.chmod(os.path.join(root, name), fmode)
    elif path.exists():
        os.chmod(path, fmode)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was. The
    file gets the mode the umask gives (``0o666 & ~umask``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else ".part" + path.suffix,
        dir=path.parent,
    )
    if fcntl is not None:  # held while writing: remove_stale_parts leaves a live writer's file alone
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _chmod_tree(tmp_path)  # mkstemp creates 0600
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    finally:
        os.close(fd)  # releases the lock (a killed writer's is released by the kernel)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary directory beside ``path``; on success it replaces ``path``.

    A directory cannot be renamed onto a non-empty one, so an existing ``path`` is first
    renamed aside and removed after the swap; between the two renames ``path`` is briefly
    absent, never partial. On an exception the temporary directory is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        _chmod_tree(tmp)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def remove_stale_parts(path: str | os.PathLike) -> None:
    """Remove the temporary files (``.<name>.*.part*``) a killed earlier write of ``path`` left beside it.

    A temporary file that a live :func:`atomic_path` is writing (in this or another process: it
    holds an ``flock`` on it) is left alone, so a second writer of the same output does not pull
    the first one's file from under it.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part*"):
        if _being_written(stale):  # another process is writing it now (its atomic_path holds the lock)
            continue
        try:
            stale.unlink()
        except OSError:
            pass


def _being_written(path: Path) -> bool:
    """True when a live :func:`atomic_path` holds the lock of the temporary file ``path``."""
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
