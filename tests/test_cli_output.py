"""Clean command-line output: no TensorFlow start-up noise, no retracing warnings, --quiet everywhere."""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

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
