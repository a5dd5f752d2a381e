"""``predict``, ``export``, ``report``, ``tune`` and ``generate`` never replace a file hepnn did not write.

For each command: a user's file where the command writes survives byte for byte and the
command exits 2 naming it and ``--force``; ``--force`` writes; rerunning into hepnn's own
output works as before (resume, regenerate). An ``--out`` that is a file, or that cannot be
created, is a one-line error naming it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import uproot

from hepnn.cli import main
from test_bad_inputs_outputs import YAML, tree
from test_io_fixtures import make_per_jet


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A user's folder (config, ROOT files) with a tiny trained run in ``run/``."""
    folder = tmp_path_factory.mktemp("project")
    config = make_per_jet(folder, n=60, yaml_text=YAML)
    assert main(["train", str(config), "--out", str(folder / "run"), "--quiet"]) == 0
    return folder


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def user_folder(parent: Path, files: dict[str, str]) -> Path:
    """``parent/mine`` holding the user's ``files`` (name: text)."""
    folder = parent / "mine"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def refused(code: int, err: str, *names: str) -> bool:
    """Exit 2 with one message naming ``names`` and ``--force`` (no raw Python exception)."""
    return code == 2 and "--force" in err and all(name in err for name in names) and "Error:" not in err


# --- predict: files with the output names ---------------------------------------------------


def test_predict_keeps_a_users_file_with_an_output_name(trained, tmp_path, capsys):
    mine = user_folder(tmp_path, {"qcd_scores.root": "my own analysis output\n"})
    before = tree(tmp_path)
    code, err = run_cli(capsys, "predict", trained / "run", trained / "qcd.root", "--out", mine, "--quiet")
    assert refused(code, err, str(mine / "qcd_scores.root"))
    assert tree(tmp_path) == before
    assert run_cli(capsys, "predict", trained / "run", trained / "qcd.root", "--out", mine, "--quiet",
                   "--force")[0] == 0
    assert uproot.open(mine / "qcd_scores.root")["jets"].keys() == ["hepnn_score"]


def test_predict_reruns_into_its_own_outputs(trained, tmp_path, capsys):
    out = tmp_path / "scores"
    args = ["predict", trained / "run", trained / "qcd.root", trained / "top.root", "--out", out, "--quiet"]
    assert run_cli(capsys, *args)[0] == 0
    assert main([str(a) for a in args]) == 0
    assert "0 written, 2 skipped" in capsys.readouterr().out
    (out / "qcd_scores.json").unlink()  # killed between the friend file and its sidecar: still hepnn's
    assert main([str(a) for a in args]) == 0
    assert "1 written, 1 skipped" in capsys.readouterr().out
    assert json.loads((out / "qcd_scores.json").read_text())["output"] == "qcd_scores.root"
    assert run_cli(capsys, *args, "--no-resume")[0] == 0


# --- export, report, tune: folders ------------------------------------------------------------


def test_export_keeps_a_users_folder(trained, tmp_path, capsys):
    mine = user_folder(tmp_path, {"model.onnx": "my hand-tuned model\n", "metadata.json": '{"mine": 1}\n'})
    before = tree(tmp_path)
    code, err = run_cli(capsys, "export", trained / "run", "--out", mine)
    assert refused(code, err, str(mine), "metadata.json", "model.onnx")
    assert tree(tmp_path) == before
    assert run_cli(capsys, "export", trained / "run", "--out", mine, "--force")[0] == 0
    assert "max_abs_diff_vs_keras" in json.loads((mine / "metadata.json").read_text())
    assert run_cli(capsys, "export", trained / "run", "--out", mine)[0] == 0  # its own folder now


def test_report_keeps_a_users_folder(trained, tmp_path, capsys):
    mine = user_folder(tmp_path, {"index.html": "<html>my page</html>\n"})
    before = tree(tmp_path)
    code, err = run_cli(capsys, "report", trained / "run", "--out", mine, "--no-progress")
    assert refused(code, err, str(mine), "index.html")
    assert tree(tmp_path) == before
    assert run_cli(capsys, "report", trained / "run", "--out", mine, "--no-progress", "--force")[0] == 0
    assert "hepnn report" in (mine / "index.html").read_text()
    assert run_cli(capsys, "report", trained / "run", "--out", mine, "--no-progress")[0] == 0


def test_tune_keeps_a_users_folder_and_resumes_its_own(trained, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("training.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}\n")
    mine = user_folder(tmp_path, {"best_config.yaml": "my hand-written best config\n"})
    before = tree(tmp_path)
    args = ["tune", trained / "config.yaml", "--space", space, "--out", mine, "--sampler", "random", "--quiet"]
    code, err = run_cli(capsys, *args, "--trials", "1")
    assert refused(code, err, str(mine), "best_config.yaml")
    assert tree(tmp_path) == before
    assert run_cli(capsys, *args, "--trials", "1", "--force")[0] == 0
    assert (mine / "best_config.yaml").read_text() != "my hand-written best config\n"
    assert run_cli(capsys, *args, "--trials", "2")[0] == 0  # resumes the study: one more trial
    assert len((mine / "trials.csv").read_text().splitlines()) == 1 + 2


# --- generate: one file -----------------------------------------------------------------------


def test_generate_replaces_only_its_own_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("my notes\n")
    base = ["generate", "top", "--n-jets", "5", "--quiet"]
    code, err = run_cli(capsys, *base, "--out", "notes.txt")
    assert refused(code, err, "notes.txt")
    assert run_cli(capsys, "generate", "qcd", "--n-jets", "5", "--quiet", "--out", "qcd.root")[0] == 0
    shutil.copy(tmp_path / "qcd.root", tmp_path / "mydata.root")  # a user's copy of another sample
    before = tree(tmp_path)
    code, err = run_cli(capsys, *base, "--out", "mydata.root")
    assert refused(code, err, "mydata.root")
    assert tree(tmp_path) == before
    assert run_cli(capsys, *base, "--out", "top.root")[0] == 0
    assert run_cli(capsys, *base, "--seed", "2", "--out", "top.root")[0] == 0  # a rerun replaces its own sample
    assert run_cli(capsys, *base, "--out", "notes.txt", "--force")[0] == 0
    assert uproot.open(tmp_path / "notes.txt")["jets"].num_entries == 5


# --- --out that is a file or cannot be created ------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "export"])
def test_out_that_is_a_file_or_cannot_be_created_is_named(trained, tmp_path, capsys, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    args = [command, trained / "run", *([trained / "qcd.root"] if command == "predict" else []), "--quiet"]
    for out, says in ((notes, "exists and is not a directory"), (notes / "sub", "cannot create the directory")):
        code, err = run_cli(capsys, *args, "--out", out)
        assert code == 2 and says in err and str(out) in err and "Error:" not in err, err
    assert notes.read_text() == "my notes\n"
