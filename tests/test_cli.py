"""The `hepnn` command line: exit codes, one-line errors, --debug, list and config check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hepnn import __version__
from hepnn.cli import main


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hepnn", *args], capture_output=True, text=True, cwd=cwd)


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"hepnn {__version__}"


def test_list_shows_analyses_in_the_working_directory(tmp_path, capsys, monkeypatch):
    (tmp_path / "analyses" / "demo_ana").mkdir(parents=True)
    (tmp_path / "analyses" / "demo_ana" / "config.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "analyses:" in out and "demo_ana" in out
    assert "models:" in out


def test_config_check_ok_and_typo(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("training: {epochs: 3}\n")
    assert main(["config", "check", str(good)]) == 0
    assert "ok" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epocs: 3}\n")
    out = run_cli("config", "check", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == ["hepnn: error: training.epocs: unknown key 'epocs'; did you mean 'epochs'? "
                     "(valid keys: " + lines[0].split("(valid keys: ")[1]]
    assert "Traceback" not in out.stderr


def test_set_overrides_on_the_command_line(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("training: {epochs: 3}\n")
    assert main(["config", "show", str(good), "--set", "training.epochs=7"]) == 0
    assert "epochs: 7" in capsys.readouterr().out
    assert main(["config", "check", str(good), "--set", "training.epochs=zero"]) == 2
    assert "training.epochs: expected a positive int, received 'zero'" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epocs: 3}\n")
    out = run_cli("--debug", "config", "check", str(bad))
    assert out.returncode == 1 and "Traceback" in out.stderr and "ConfigError" in out.stderr


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert main([]) == 2


def test_run_unknown_analysis_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "no_such_analysis_xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hepnn: error: unknown analysis") and err.count("\n") == 1


def test_run_unknown_step_exits_2(tmp_path, capsys):
    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "config.yaml").write_text("{}\n")
    assert main(["run", str(tmp_path / "ana"), "--out", str(tmp_path / "out"), "--steps", "trian"]) == 2
    assert "unknown step 'trian'; did you mean 'train'?" in capsys.readouterr().err


@pytest.mark.parametrize("steps", ["", ","])
def test_run_with_no_step_exits_2(tmp_path, capsys, steps):
    """`--steps ""` ran nothing and still reported the run finished."""
    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "config.yaml").write_text("{}\n")
    assert main(["run", str(tmp_path / "ana"), "--out", str(tmp_path / "out"), "--steps", steps]) == 2
    assert "--steps: no step given" in capsys.readouterr().err


def test_other_failures_exit_1(tmp_path, capsys, monkeypatch):
    import hepnn.cli as cli

    def boom(args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cli, "_cmd_list", boom)
    assert main(["list"]) == 1
    assert capsys.readouterr().err.strip() == "hepnn: error: RuntimeError: disk full (rerun with --debug for the traceback)"


def _study_and_analysis_folders(tmp_path):
    """A `hepnn tune` study (trial 1 the best by val_loss, trial 2 pruned) and a `hepnn run` output folder."""
    import json

    from hepnn.outdir import claim_directory

    study = claim_directory(tmp_path / "study", "tune")
    for n, record in enumerate([{"state": "complete", "value": 0.7}, {"state": "complete", "value": 0.6},
                                {"state": "pruned", "epoch": 1}]):
        trial = claim_directory(study / "trials" / str(n), "run")
        (trial / "tune.json").write_text(json.dumps({"trial": n, "objective": "val_loss", "values": {}, **record}))
    analysis = claim_directory(tmp_path / "analysis", "analysis")
    for variant in ("dense", "gru"):
        (claim_directory(analysis / variant, "run") / "config.yaml").write_text("{}\n")
    return study, analysis


@pytest.mark.parametrize("command", [["evaluate"], ["explain", "--method", "permutation"], ["export"], ["report"],
                                     ["predict", "--out", "scores", "f.root"]])
def test_a_tune_study_or_analysis_folder_as_run_dir_names_its_runs(command, tmp_path, capsys, monkeypatch):
    # was "config file not found" or "train it with `hepnn train CONFIG --out STUDY`" (a folder hepnn
    # would refuse to train into): the folders that hold runs now name them
    monkeypatch.chdir(tmp_path)
    study, analysis = _study_and_analysis_folders(tmp_path)
    assert main([command[0], str(study), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "a `hepnn tune` study, not a run" in err and f"the best (val_loss 0.6) is {study / 'trials' / '1'}" in err
    assert main([command[0], str(analysis), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert f"its run directories are {analysis / 'dense'}, {analysis / 'gru'}" in err
