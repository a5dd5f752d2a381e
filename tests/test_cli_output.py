"""Clean command-line output: no TensorFlow start-up noise, no retracing warnings, --quiet everywhere."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hepnn import cli
from hepnn._logs import NOISE, _replay, captured_stderr

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
NOISY = re.compile(r"(?i)retracing|cuda|onednn|WARNING: All log messages|absl::InitializeLog")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", **extra)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must quieten TensorFlow by itself
    return env


def _subcommands(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommands(sub, (*prefix, name))


def test_every_subcommand_takes_quiet():
    found = dict(_subcommands(cli.build_parser()))
    assert {("train",), ("evaluate",), ("config", "check"), ("predict",), ("generate",)} <= set(found)
    missing = [" ".join(name) for name, sub in found.items() if "--quiet" not in sub._option_string_actions]
    assert not missing, f"sub-commands without --quiet: {missing}"


def test_quiet_hides_stdout_but_not_errors(capsys, tmp_path):
    assert cli.main(["config", "show"]) == 0
    assert "training:" in capsys.readouterr().out
    assert cli.main(["config", "show", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["config", "check", str(tmp_path / "missing.yaml"), "--quiet"]) != 0
    assert "missing.yaml" in capsys.readouterr().err


def test_captured_stderr_drops_only_known_noise(capfd):
    with captured_stderr() as lines:
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n")
        os.write(2, b"E0000 00:00:1 something.cc:1] a real problem\n")
    assert len(lines) == 3 and capfd.readouterr().err == ""
    _replay(lines)
    assert capfd.readouterr().err.strip() == "E0000 00:00:1 something.cc:1] a real problem"
    assert not NOISE.search("hepnn: error: data.files[0]: no file matches 'x.root'")


def test_many_compiled_models_print_no_retracing_warning():
    """One compiled forward function per model: loading many models must not warn (TF counts per __code__)."""
    import keras
    import tensorflow as tf

    from hepnn.models.inference import predict

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        for i in range(8):
            inputs = keras.Input((3,), name="jet")
            model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
            x = {"jet": np.full((5, 3), i, np.float32)}
            out = predict(model, x, batch_size=8)  # one call, one trace per model: TF warns at 5 in 10 calls
            np.testing.assert_allclose(out, np.asarray(model(x)), atol=1e-6)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [r.getMessage() for r in records if "retracing" in r.getMessage()]


def test_cli_train_prints_progress_and_no_tensorflow_noise(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hepnn", "train", str(DATA / "nanoaod_btag.yaml"), "--out", str(out),
           "--set", "model.name=dense", "--set", "model.units=[8]", "--set", "training.epochs=2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^epoch 2/2, loss \d", proc.stdout, flags=re.M), proc.stdout
    noisy = [line for line in proc.stderr.splitlines() if NOISY.search(line)]
    assert not noisy, "\n".join(noisy)
    assert (out / "model.keras").is_file()


_QUIET_CONFIG = """
data:
  layout: per_jet
  files:
    - {path: top.root, tree: jets, label: 1}
    - {path: qcd.root, tree: jets, label: 0}
  spectators: [jet_pt, jet_mass]
  inputs:
    highlevel: {kind: flat, variables: [jet_mass, jet_tau21, jet_tau32, jet_nparticles]}
  split: {train: 0.6, val: 0.2, test: 0.2, seed: 1}
model: {name: dense, units: [4]}
training: {epochs: 1, batch_size: 32}
explain: {n_jets: 20}
"""

# Runs in a fresh interpreter (TensorFlow imported there for the first time, so its start-up
# noise would show): every command in-process through hepnn.cli.main with --quiet, file
# descriptors 1 and 2 captured per command (C++ output included).
_QUIET_DRIVER = r"""
import json, os, sys, tempfile
from hepnn.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            code = main(argv)
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        out.seek(0); err.seek(0)
        results.append({"argv": argv, "code": code, "out": out.read().decode(errors="replace"),
                        "err": err.read().decode(errors="replace")})
print(json.dumps(results))
"""

PROGRESS = re.compile(r"\d+%\||it/s|jet/s\]|plot/s|run/s|^epoch \d", re.M)


@pytest.mark.slow
def test_every_command_with_quiet_prints_no_progress_and_no_tensorflow_noise(tmp_path):
    """Each sub-command run with --quiet: nothing on stderr (no progress bars, no TensorFlow
    start-up or retracing messages) and no progress output on stdout."""
    (tmp_path / "tiny.yaml").write_text(_QUIET_CONFIG)
    (tmp_path / "space.yaml").write_text("training.batch_size: [16, 32]\n")
    analysis = tmp_path / "tiny_analysis"
    analysis.mkdir()
    (analysis / "config.yaml").write_text(
        _QUIET_CONFIG.replace("path: top.root", "path: t.root").replace("path: qcd.root", "path: q.root")
        + "generate:\n  samples:\n    t.root: {sample: top, n_jets: 30}\n    q.root: {sample: qcd, n_jets: 30}\n"
    )
    commands = [
        ["list"],
        ["config", "check", "tiny.yaml"],
        ["config", "show", "tiny.yaml"],
        ["generate", "top", "--n-jets", "60", "--out", "top.root"],
        ["generate", "qcd", "--n-jets", "60", "--out", "qcd.root"],
        ["convert", "tiny.yaml", "--out", "converted"],
        ["train", "tiny.yaml", "--out", "run"],
        ["evaluate", "run"],
        ["explain", "run", "--method", "permutation"],
        ["report", "run", "--out", "report"],
        ["predict", "run", "top.root", "--out", "scores"],
        ["jobs", "slurm", "--config", "tiny.yaml", "--out", "job.sh"],
        ["tune", "tiny.yaml", "--space", "space.yaml", "--trials", "1", "--out", "study"],
        ["export", "run", "--format", "onnx", "--out", "model.onnx"],
        ["run", str(analysis), "--out", "analysis_run", "--steps", "generate,train,evaluate,report"],
    ]
    argvs = [[*c, "--quiet"] for c in commands]
    proc = subprocess.run([sys.executable, "-c", _QUIET_DRIVER, json.dumps(argvs)], capture_output=True,
                          text=True, env=_env(), timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["argv"] for r in results] == argvs
    problems = []
    for r in results:
        name = " ".join(r["argv"])
        if r["code"] != 0 and "ModuleNotFoundError" not in r["err"]:  # an optional extra not installed
            problems.append(f"{name}: exit {r['code']}: {r['err'][-500:]}")
            continue
        if r["code"] == 0 and r["err"].strip():
            problems.append(f"{name}: stderr not empty:\n{r['err'][-1000:]}")
        if PROGRESS.search(r["out"]) or NOISY.search(r["out"]):
            problems.append(f"{name}: progress or noise on stdout:\n{r['out'][-1000:]}")
    assert not problems, "\n\n".join(problems)
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "analysis_run" / "report").is_dir()
