"""Atomic writes are durable: data flushed before the rename, the rename flushed after.

A rename without ``fsync`` is atomic against a killed process but not against a crashed machine:
the final name can survive the crash while the data it points at never reached the disk. The
tests record every ``os.fsync`` (which path it flushed, seen through ``/proc/self/fd``) and every
``os.replace``, in order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hepnn import _fileio
from hepnn._fileio import atomic_dir, atomic_path, atomic_write_text, durable_replace, flush_to_disk, sync_enabled

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see what fsync flushed")


@pytest.fixture
def events(monkeypatch):
    """``[("fsync", path), ("replace", src, dst), ...]`` in call order."""
    log: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        log.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(_fileio.os, "fsync", fsync)
    monkeypatch.setattr(_fileio.os, "replace", replace)
    monkeypatch.delenv("HEPNN_FSYNC", raising=False)
    return log


def _index(log, event) -> int:
    return log.index(event)


def test_atomic_path_flushes_the_data_before_the_rename_and_the_folder_after(tmp_path, events):
    target = tmp_path / "out.npz"
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, x=np.arange(5))
        part = str(tmp)
    assert np.load(target)["x"].tolist() == [0, 1, 2, 3, 4]
    rename = _index(events, ("replace", part, str(target)))
    assert _index(events, ("fsync", part)) < rename  # the temporary file's data, under its temporary name
    assert ("fsync", str(tmp_path)) in events[rename + 1:]  # the folder's entry for the new name


def test_atomic_dir_flushes_every_file_and_folder_of_the_new_tree_first(tmp_path, events):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "a.txt").write_text("a")
        (tmp / "sub" / "b.txt").write_text("b")
        staged = str(tmp)
    assert sorted(p.name for p in target.rglob("*")) == ["a.txt", "b.txt", "sub"]
    rename = _index(events, ("replace", staged, str(target)))
    flushed_before = {e[1] for e in events[:rename] if e[0] == "fsync"}
    assert {f"{staged}/a.txt", f"{staged}/sub/b.txt", f"{staged}/sub", staged} <= flushed_before
    assert ("fsync", str(tmp_path)) in events[rename + 1:]


def test_durable_replace_and_flush_to_disk(tmp_path, events):
    src, dst = tmp_path / "a.onnx.part", tmp_path / "a.onnx"
    src.write_bytes(b"model")
    durable_replace(src, dst)
    assert dst.read_bytes() == b"model"
    assert events == [("fsync", str(src)), ("replace", str(src), str(dst)), ("fsync", str(tmp_path))]
    events.clear()
    flush_to_disk(tmp_path / "missing")  # nothing there: nothing to flush, no error
    assert events == []


@pytest.mark.parametrize("value", ["0", "false", "off", "No"])
def test_hepnn_fsync_0_turns_the_flushes_off(tmp_path, events, monkeypatch, value):
    monkeypatch.setenv("HEPNN_FSYNC", value)
    assert not sync_enabled()
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "f").write_text("y")
    durable_replace(tmp_path / "a.txt", tmp_path / "b.txt")
    assert [e for e in events if e[0] == "fsync"] == []
    assert (tmp_path / "b.txt").read_text() == "x" and (tmp_path / "d" / "f").read_text() == "y"


def test_a_filesystem_refusing_fsync_still_gets_the_file(tmp_path, monkeypatch):
    def refuse(fd):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(_fileio.os, "fsync", refuse)
    monkeypatch.delenv("HEPNN_FSYNC", raising=False)
    assert atomic_write_text(tmp_path / "a.txt", "kept").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_a_failed_write_flushes_and_renames_nothing(tmp_path, events):
    (tmp_path / "a.txt").write_text("before")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "a.txt").read_text() == "before"
    assert events == []
