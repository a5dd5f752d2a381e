"""What a run records of its input files (provenance, the key of stored predictions) is what the
reader reads: ``~`` expanded, paths relative to ``data.directory``, one file per literal path."""

from __future__ import annotations

import os

import pytest

from hepnn.config import load_config
from hepnn.io.sources import resolve_files
from hepnn.training.evaluate import prediction_key
from hepnn.training.rundir import input_files, provenance


def _config(path, directory=None):
    data = {"files": [{"path": path, "label": 0}], "inputs": {"jet": {"kind": "flat", "variables": ["pt"]}}}
    if directory is not None:
        data["directory"] = str(directory)
    return load_config({"data": data})


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_a_path_under_the_home_folder_is_recorded_as_the_reader_reads_it(home, tmp_path):
    (home / "data" / "a.root").write_bytes(b"first")
    (home / "data" / "b.root").write_bytes(b"second!")
    config = _config("~/data/*.root", directory=tmp_path)
    read = [s.path for s in resolve_files(config.data)]
    assert read == [str(home / "data" / "a.root"), str(home / "data" / "b.root")]
    assert [str(p) for p in input_files(config.data)] == read  # was []: the glob of a literal "~"
    records = provenance(config, {"seed": 1})["inputs"]
    assert [r["path"] for r in records] == read and [r["bytes"] for r in records] == [5, 7]


def test_stored_predictions_are_not_reused_when_a_home_folder_input_changes(home, tmp_path):
    data = home / "data" / "a.root"
    data.write_bytes(b"first")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"model")
    config = _config("~/data/a.root", directory=tmp_path)
    before = prediction_key(run, config)
    data.write_bytes(b"rewritten, longer")
    os.utime(data, ns=(1, 1))
    assert prediction_key(run, config) != before  # the file was not in the key: stale scores reused


def test_a_group_matching_nothing_adds_no_file_and_records_nothing_else(tmp_path):
    (tmp_path / "x.root").write_bytes(b"x")
    config = load_config({"data": {"directory": str(tmp_path), "files": [
        {"path": "missing/*.root", "label": 0}, {"path": "x.root", "label": 1}],
        "inputs": {"jet": {"kind": "flat", "variables": ["pt"]}}}})
    assert [str(p) for p in input_files(config.data)] == [str(tmp_path / "x.root")]
