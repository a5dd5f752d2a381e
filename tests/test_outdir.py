"""hepnn.outdir: the marker, adoption of older hepnn directories, refusal, the lock."""

from __future__ import annotations

import json

import pytest

from hepnn.exceptions import OutputDirError
from hepnn.outdir import LOCK, MARKER, claim, claim_directory, claim_file, is_owned, lock_directory, make_directory


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


def test_folders_of_an_older_report_export_and_tune_are_adopted_by_their_content(tmp_path):
    import sqlite3

    older = {
        "report": {"index.html": "<html>", "manifest.json": '{"runs": {}, "figures": []}'},
        "export": {"model.onnx": "x", "metadata.json": '{"max_abs_diff_vs_keras": 0.0, "verified_on": {}}'},
        "tune": {"trials.csv": "number,state,value,params,run_dir,duration_s,retry_of\n"},
    }
    for kind, files in older.items():
        for name, text in files.items():
            (tmp_path / kind / name).parent.mkdir(exist_ok=True)
            (tmp_path / kind / name).write_text(text)
        claim_directory(tmp_path / kind, kind)
        assert is_owned(tmp_path / kind)
    (tmp_path / "study").mkdir()
    with sqlite3.connect(tmp_path / "study" / "study.db") as db:  # Optuna's storage, killed before trials.csv
        db.execute("CREATE TABLE studies (id INTEGER)")
        db.execute("CREATE TABLE trials (id INTEGER)")
    claim_directory(tmp_path / "study", "tune")
    # the same names with the user's content are the user's
    mine = {
        "report": {"index.html": "<html>my page</html>"},
        "export": {"model.onnx": "my model", "metadata.json": '{"mine": 1}'},
        "tune": {"best_config.yaml": "mine", "study.db": "not a database"},
    }
    for kind, files in mine.items():
        folder = tmp_path / f"mine_{kind}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        with pytest.raises(OutputDirError, match=rf"mine_{kind}: .*not a hepnn {kind} directory.*--force"):
            claim_directory(folder, kind)
        assert not is_owned(folder)


def test_a_directory_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirError, match=r"f/sub: cannot create the directory \(Not a directory\)"):
        claim_directory(tmp_path / "f" / "sub", "report")
    with pytest.raises(OutputDirError, match="f: exists and is not a directory"):
        make_directory(tmp_path / "f")
    assert make_directory(tmp_path / "new" / "dir").is_dir()


def test_a_file_is_replaced_only_when_hepnn_wrote_it_or_with_force(tmp_path):
    mine = tmp_path / "notes.txt"
    assert claim_file(mine, "sample", lambda p: False) == mine  # new: fine
    mine.write_text("my notes")
    assert claim_file(mine, "sample", lambda p: True) == mine  # hepnn's own: a rerun replaces it
    with pytest.raises(OutputDirError, match=r"notes.txt: the file exists and is not a sample.*pass --force"):
        claim_file(mine, "sample", lambda p: False)
    assert claim_file(mine, "sample", lambda p: False, force=True) == mine
    with pytest.raises(OutputDirError, match="is a directory"):
        claim_file(tmp_path, "sample", lambda p: True, force=True)
    assert mine.read_text() == "my notes"


def test_stale_parts_are_removed_but_a_live_writers_file_is_kept(tmp_path):
    """A killed write's temporary file is cleaned; the one another writer is filling now is not
    (two `hepnn generate` of one --out: the second pulled the first's file from under it)."""
    import subprocess
    import sys

    from hepnn._fileio import atomic_path, remove_stale_parts

    out = tmp_path / "qcd.root"
    stale = tmp_path / ".qcd.root.killed.part.root"
    stale.write_text("left by a killed run")
    with atomic_path(out) as tmp:
        tmp.write_text("being written")
        remove_stale_parts(out)  # in this process
        # and from another process, as a second command would
        code = f"from hepnn._fileio import remove_stale_parts; remove_stale_parts({str(out)!r})"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        assert tmp.read_text() == "being written"
        assert not stale.exists()
    assert out.read_text() == "being written" and not tmp.exists()
    # once its writer has finished (or was killed), a left-over part is stale again
    leftover = tmp_path / ".qcd.root.done.part.root"
    leftover.write_text("x")
    remove_stale_parts(out)
    assert not leftover.exists()


def test_a_locked_run_names_the_reading_command_not_out(tmp_path):
    # hepnn explain writes into the run it reads: its error said "--out RUN: ... choose another --out"
    import fcntl

    held = open(tmp_path / LOCK, "a+")  # noqa: SIM115 - another command's lock
    fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    held.write("4242\n")
    held.flush()
    try:
        with pytest.raises(OutputDirError) as err, lock_directory(tmp_path, reader="hepnn explain"):
            pass
        assert "pid 4242" in str(err.value) and "run hepnn explain again" in str(err.value)
        assert "--out" not in str(err.value)
        with pytest.raises(OutputDirError, match="choose another --out"), lock_directory(tmp_path):
            pass
    finally:
        held.close()
