"""Atomic writes: nothing partial ever appears under a final name.

Files and directories are created with the permissions the user's umask gives
(``0o666 & ~umask`` and ``0o777 & ~umask``), like any other program's output, so that
colleagues on a shared filesystem can read runs when the umask allows it.

Durable as well as atomic: the new file's (or directory's) contents are flushed to disk
(``fsync``) before it is renamed onto its final name, and the folder holding it after, so
that a machine that crashes or loses power (a pre-empted cloud node, not just a killed
process) comes back with the old output or the complete new one, never a final name on a
file whose data never reached the disk. ``HEPNN_FSYNC=0`` turns the flushes off (a scratch
filesystem where a crash loses the job anyway; they cost about half a millisecond per file on
a local disk, more on some network filesystems).
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

__all__ = ["atomic_path", "atomic_write_text", "atomic_dir", "current_umask", "file_mode", "dir_mode", "sync_enabled",
           "flush_to_disk", "flush_folder", "durable_replace"]


def sync_enabled() -> bool:
    """Whether atomic writes flush to disk (``HEPNN_FSYNC``, default on; ``0`` turns it off)."""
    return os.environ.get("HEPNN_FSYNC", "1").strip().lower() not in ("0", "false", "no", "off")


def _fsync(path: str | os.PathLike) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk; a filesystem that cannot is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder: nothing more can be done there
        pass
    finally:
        os.close(fd)


def flush_to_disk(path: str | os.PathLike) -> None:
    """Flush a new file, or every file and folder of a new directory tree, to disk (unless
    ``HEPNN_FSYNC=0``): call it before renaming what was written onto its final name."""
    if sync_enabled():
        _fsync_tree(Path(path))


def flush_folder(path: str | os.PathLike) -> None:
    """Flush the entries of folder ``path`` (the renames into it) to disk, unless ``HEPNN_FSYNC=0``."""
    if sync_enabled():
        _fsync(path)


def durable_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """``os.replace(src, dst)`` with ``src``'s contents flushed first and the rename after
    (unless ``HEPNN_FSYNC=0``): a crash leaves ``dst`` old or complete."""
    flush_to_disk(src)
    os.replace(src, dst)
    flush_folder(Path(dst).parent)


def _fsync_tree(path: Path) -> None:
    """Flush a new file, or every file and folder of a new directory tree (children first)."""
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path, topdown=False):
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    _fsync(os.path.join(root, name))
            _fsync(root)
    elif path.is_file():
        _fsync(path)


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
    file gets the mode the umask gives (``0o666 & ~umask``). Its contents reach the disk
    before the rename, and the rename after it (see the module's notes on ``HEPNN_FSYNC``).

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
        durable_replace(tmp_path, path)  # the data on disk before the name points at it, then the rename
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
        flush_to_disk(tmp)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        flush_folder(path.parent)
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
