"""bench/train.py: the --copies files are files the reader accepts (it refuses one file under two names)."""

from __future__ import annotations

import os

import pytest
from script_helpers import load_script

from hepnn.config import load_config
from hepnn.exceptions import ConfigError
from hepnn.io.sources import resolve_files


def test_copies_are_real_files_the_reader_reads_once_each(tmp_path):
    bench = load_script("bench/train.py", "bench_train")
    for sample, size in (("top", 100), ("qcd", 150)):
        (tmp_path / f"{sample}.root").write_bytes(os.urandom(size))  # resolve_files reads no byte
    # what older runs of the script left: a hard link and a symlink to the original
    os.link(tmp_path / "top.root", tmp_path / "top_copy1.root")
    os.symlink(tmp_path / "qcd.root", tmp_path / "qcd_copy1.root")
    cfg = load_config(bench.config(tmp_path, bench.FAMILIES["dense"], streaming=True, epochs=1, copies=3))
    with pytest.raises(ConfigError, match="the same file"):
        resolve_files(cfg.data)  # why links will not do

    for sample in ("top", "qcd"):
        bench.copy_sample(tmp_path, sample, 3)
    files = resolve_files(cfg.data)
    assert sorted(os.path.basename(f.path) for f in files) == sorted(
        f"{s}{suffix}.root" for s in ("top", "qcd") for suffix in ("", "_copy1", "_copy2"))
    for sample in ("top", "qcd"):
        original = tmp_path / f"{sample}.root"
        for i in (1, 2):
            copy = tmp_path / f"{sample}_copy{i}.root"
            assert not copy.is_symlink() and not os.path.samefile(copy, original)
            assert copy.read_bytes() == original.read_bytes()
    stamp = (tmp_path / "top_copy2.root").stat().st_mtime_ns
    bench.copy_sample(tmp_path, "top", 3)  # a rerun keeps the copies it made
    assert (tmp_path / "top_copy2.root").stat().st_mtime_ns == stamp
