"""hepnn.outdir: the marker, adoption of older hepnn directories, refusal, the lock."""

from __future__ import annotations

import json

import pytest

from hepnn.exceptions import OutputDirError
from hepnn.outdir import LOCK, MARKER, claim, claim_directory, is_owned, lock_directory


def test_new_and_empty_directories_are_claimed_with_a_marker(tmp_path):
    claim_directory(tmp_path / "new" / "run", "run")
    (tmp_path / "empty").mkdir()
    claim_directory(tmp_path / "empty", "convert")
    assert is_owned(tmp_path / "new" / "run") and is_owned(tmp_path / "empty")
    marker = json.loads((tmp_path / "empty" / MARKER).read_text())
    assert marker["kind"] == "convert" and marker["hepnn"]


def test_directories_of_an_older_hepnn_are_adopted(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: {name: dense}\n")
    (run / "provenance.json").write_text("{}\n")
    claim_directory(run, "run")
    assert is_owned(run)
    analysis = tmp_path / "analysis"
    (analysis / "dense").mkdir(parents=True)
    for name in ("config.yaml", "provenance.json"):
        (analysis / "dense" / name).write_text("x")
    (analysis / "results.md").write_text("x")
    claim_directory(analysis, "analysis")
    assert is_owned(analysis)
    # a folder that only holds a config.yaml is the user's
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.yaml").write_text("x")
    with pytest.raises(OutputDirError, match=r"mine: .*\(config.yaml\)"):
        claim_directory(tmp_path / "mine", "run")
    assert not is_owned(tmp_path / "mine")


def test_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirError, match="not a directory"):
        claim_directory(tmp_path / "f", "run")


def test_worker_scratch_folders_do_not_count_as_foreign(tmp_path):
    (tmp_path / "run" / ".worker-1").mkdir(parents=True)
    claim_directory(tmp_path / "run", "run")


def test_many_foreign_files_are_summarised(tmp_path):
    for i in range(12):
        (tmp_path / f"f{i:02d}.txt").write_text("x")
    with pytest.raises(OutputDirError, match=r"f07.txt and 4 more"):
        claim_directory(tmp_path, "run")


def test_the_lock_is_reentrant_in_one_process_and_released(tmp_path):
    with claim(tmp_path / "run", "run") as path:
        with lock_directory(path):  # the same process (e.g. a k-fold run inside a run) may re-enter
            assert (path / LOCK).read_text().strip().isdigit()
    assert (tmp_path / "run" / LOCK).read_text() == ""  # released: the pid is cleared
    with claim(tmp_path / "run", "run"):
        pass
