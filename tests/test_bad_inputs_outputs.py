"""Bad inputs that would overwrite, escape or silently spoil outputs: each is refused or stopped.

Every case asserts the exit code, that the message names the culprit (directory and
files, key and value, epoch and step), and that no file outside the run or output
directory changed (sha256 of the surrounding tree before and after).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hepnn.cli import main
from test_io_fixtures import make_per_jet

YAML = """
data:
  layout: per_jet
  files:
    - {path: top.root, tree: jets, label: 1}
    - {path: qcd.root, tree: jets, label: 0}
  inputs:
    highlevel: {kind: flat, variables: [jet_mass, jet_tau21, jet_tau32, jet_nparticles]}
model: {name: dense, units: [8]}
training: {epochs: 1, batch_size: 16, verbose: 0}
"""


def tree(folder: Path, skip: Path | None = None) -> dict[str, str]:
    """sha256 of every file under ``folder`` (except under ``skip``)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def project(tmp_path):
    """A user's folder: config, ROOT files and a file of their own."""
    config = make_per_jet(tmp_path, n=40, yaml_text=YAML)
    config.write_text("# my comments\n" + config.read_text())
    (tmp_path / "notes.txt").write_text("my notes\n")
    return config


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


# --- overwriting --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "convert", "run"])
def test_existing_directory_with_user_files_is_refused(tmp_path, project, capsys, command):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "results.csv").write_text("precious\n")
    before = tree(tmp_path)
    code, err = run_cli(capsys, command, str(project), "--out", str(target))
    assert code == 2
    assert str(target) in err and "results.csv" in err and "--force" in err
    assert tree(tmp_path) == before  # nothing written, not even the marker


def test_out_dot_never_rewrites_the_users_config(tmp_path, project, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    code, err = run_cli(capsys, "train", "config.yaml", "--out", ".")
    assert code == 2
    assert "config.yaml" in err and "notes.txt" in err and "hepnn did not write" in err
    assert tree(tmp_path) == before
    assert (tmp_path / "config.yaml").read_text().startswith("# my comments")


def test_force_writes_into_the_directory_and_keeps_other_files(tmp_path, project, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "results.csv").write_text("precious\n")
    outside = tree(tmp_path, skip=target)
    code, _ = run_cli(capsys, "convert", str(project), "--out", str(target), "--force")
    assert code == 0
    assert (target / "results.csv").read_text() == "precious\n" and (target / "train.npz").is_file()
    assert (target / ".hepnn").is_file()
    assert tree(tmp_path, skip=target) == outside


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that claims ``folder`` and holds its lock until killed."""
    code = (f"import sys, time; from hepnn.outdir import claim\n"
            f"with claim({str(folder)!r}, 'run'):\n    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("command", ["train", "convert", "run"])
def test_second_command_on_a_locked_directory_fails_at_once(tmp_path, project, capsys, command):
    target = tmp_path / "run"
    holder = _hold_lock(target)
    try:
        before = tree(tmp_path)
        start = time.monotonic()
        code, err = run_cli(capsys, command, str(project), "--out", str(target))
        assert code == 2 and time.monotonic() - start < 30
        assert f"pid {holder.pid}" in err and str(target) in err
        assert tree(tmp_path) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel released the killed holder's lock: the directory can be claimed again
    from hepnn.outdir import claim

    with claim(target, "run"):
        pass


def test_finished_run_with_another_config_is_an_error_that_lists_the_differences(tmp_path, project, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", str(project), "--out", str(run))[0] == 0
    saved = tree(run)
    outside = tree(tmp_path, skip=run)
    code, err = run_cli(capsys, "train", str(project), "--out", str(run), "--set", "training.epochs=3",
                        "--set", "model.units=[4]")
    assert code == 2
    assert "training.epochs: 1 -> 3" in err and "model.units: [8] -> [4]" in err
    assert "another --out" in err and str(run) in err
    assert tree(run) == saved and tree(tmp_path, skip=run) == outside  # config.yaml and model.keras untouched
    # the same config: nothing to do
    code = main(["train", str(project), "--out", str(run)])
    assert code == 0 and "nothing to do" in capsys.readouterr().out
    assert tree(run) == saved


def test_interrupted_run_with_another_config_is_an_error_that_lists_the_differences(tmp_path, project, capsys):
    """A killed run rerun with its input variables in another order would resume weights trained on the old
    order: refused before anything is written; the same config (more epochs allowed) resumes."""
    run = tmp_path / "run"
    assert run_cli(capsys, "train", str(project), "--out", str(run), "--set", "training.epochs=2")[0] == 0
    (run / "model.keras").unlink()  # an interruption after epoch 2: the checkpoint is there, the final model not
    saved = tree(run)
    outside = tree(tmp_path, skip=run)
    code, err = run_cli(capsys, "train", str(project), "--out", str(run), "--set", "training.epochs=3", "--set",
                        "data.inputs.highlevel.variables=[jet_tau21, jet_mass, jet_tau32, jet_nparticles]")
    assert code == 2
    assert f"{run} is an interrupted run trained with a different config" in err
    assert ("data.inputs.highlevel.variables: [\"jet_mass\", \"jet_tau21\", \"jet_tau32\", \"jet_nparticles\"] -> "
            "[\"jet_tau21\", \"jet_mass\", \"jet_tau32\", \"jet_nparticles\"]") in err
    assert "training.epochs:" not in err  # more epochs: not a difference that stops a resume
    assert "rerun with the config it was trained with" in err and "another --out" in err
    assert tree(run) == saved and tree(tmp_path, skip=run) == outside  # config.yaml and checkpoints untouched
    # the run's own config, with more epochs: resumes
    code = main(["train", str(project), "--out", str(run), "--set", "training.epochs=3"])
    assert code == 0 and "resuming from epoch 2" in capsys.readouterr().out
    assert (run / "model.keras").is_file()


def test_finished_run_with_other_data_is_an_error(tmp_path, project, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", str(project), "--out", str(run))[0] == 0
    saved = tree(tmp_path)
    code, err = run_cli(capsys, "train", str(project), "--out", str(run), "--set", "data.files[0].label=0",
                        "--set", "data.files[1].label=1")
    assert code == 2 and "data.files" in err and "label" in err
    assert tree(tmp_path) == saved


# --- names escaping the output folder -----------------------------------------------------------


@pytest.mark.parametrize(("section", "name"), [
    ("variants", "../evil"),
    ("variants", "/tmp/evil"),
    ("variants", "data"),
    ("generate", "../../escape.root"),
    ("generate", "/abs/top.root"),
])
def test_names_from_configs_stay_inside_the_output_folder(tmp_path, project, capsys, section, name):
    text = project.read_text()
    if section == "variants":
        text += f"variants:\n  {name!r}: {{model: {{name: dense}}}}\n"
    else:
        text += f"generate:\n  samples:\n    {name!r}: {{sample: top, n_jets: 10}}\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    before = tree(tmp_path.parent, skip=tmp_path / "out")
    for args in (["config", "check", str(bad)], ["run", str(bad), "--out", str(tmp_path / "out")]):
        code, err = run_cli(capsys, *args)
        assert code == 2
        key = "variants" if section == "variants" else "generate.samples"
        assert f"{key}.{name}" in err and repr(name) in err
    assert not (tmp_path / "out").exists()
    assert tree(tmp_path.parent, skip=tmp_path / "out") == before


# --- non-finite loss ----------------------------------------------------------------------------


def test_exploding_learning_rate_stops_with_a_clear_error(tmp_path, project, capsys):
    run = tmp_path / "run"
    outside = tree(tmp_path, skip=run)
    code, err = run_cli(capsys, "train", str(project), "--out", str(run), "--set", "training.epochs=3",
                        "--set", "training.optimizer={name: sgd, learning_rate: 1.0e+30}")
    assert code == 1
    assert "became nan" in err or "became inf" in err
    assert "epoch 1, step" in err and "learning_rate" in err and "1e+30" in err
    assert not (run / "model.keras").exists()  # not a finished run
    if not (run / "checkpoints" / "state.json").is_file():  # no checkpoint is named when none was written
        assert "last checkpoint" not in err
    assert tree(tmp_path, skip=run) == outside


def test_nan_inputs_stop_training_before_anything_is_saved_as_final(tmp_path, monkeypatch):
    from hepnn.exceptions import TrainingError
    from hepnn.training import trainer as trainer_module
    from hepnn.training.trainer import Trainer

    # NaN in the arrays is refused before training (test_bad_input_checks); here the NaN reaches
    # training, as a NaN made inside the model would, to test the guard that stops it
    monkeypatch.setattr(trainer_module, "check_training_arrays", lambda *a, **k: None)

    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=(n, 3)).astype("float32")
    x[17, 1] = np.nan
    data = {"jet": x, "label": rng.integers(0, 2, n).astype("int32"), "weight": np.ones(n, "float32"),
            "split": np.where(np.arange(n) < 160, 0, 1).astype("int8")}
    config = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
              "model": {"name": "dense", "units": [4]}, "training": {"epochs": 2, "batch_size": 32, "verbose": 0,
                                                                     "checkpoint_every_n_steps": 1}}
    run = tmp_path / "run"
    # where the clipped cross-entropy stays finite the weights turn NaN, so they are checked too;
    # whether clipping a NaN gives NaN depends on the CPU's vector kernels: either error stops training
    with pytest.raises(TrainingError, match=r"(weights \(.*\) became NaN or infinite|training loss became nan) "
                                            r"at epoch 1.*check the inputs") as info:
        Trainer(config, log=lambda s: None).fit(run, data=data)
    assert not (run / "model.keras").exists()
    assert "the last checkpoint in" in str(info.value)  # one was written before the NaN batch
    # the checkpoints taken before the NaN batch are kept; none holds a NaN model
    import json

    state = json.loads((run / "checkpoints" / "state.json").read_text())
    with np.load(run / "checkpoints" / state["model"]) as ckpt:  # the model's and the optimiser's variables
        weights = [ckpt[k] for k in ckpt.files if k != "manifest"]
    assert len(weights) > 4 and all(np.isfinite(w).all() for w in weights)


# --- permissions --------------------------------------------------------------------------------


def test_outputs_get_the_users_umask(tmp_path):
    from hepnn._fileio import atomic_dir, atomic_path, atomic_write_text

    old = os.umask(0o022)
    try:
        f = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_path(tmp_path / "b.npz") as tmp:
            tmp.write_bytes(b"y")
        with atomic_dir(tmp_path / "d") as d:
            (d / "inner.txt").write_text("z")
        os.umask(0o077)
        private = atomic_write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert (f.stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "b.npz").stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "d").stat().st_mode & 0o777) == 0o755
    assert ((tmp_path / "d" / "inner.txt").stat().st_mode & 0o777) == 0o644
    assert (private.stat().st_mode & 0o777) == 0o600


def test_a_converted_folder_is_readable_by_the_group_and_others(tmp_path, capsys):
    config = make_per_jet(tmp_path, n=20, yaml_text=YAML)
    old = os.umask(0o022)
    try:
        assert main(["convert", str(config), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir() if p.name != ".hepnn.lock"}
    assert modes == {name: 0o644 for name in modes} and "train.npz" in modes
    assert ((tmp_path / "out").stat().st_mode & 0o777) == 0o755
