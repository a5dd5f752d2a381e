"""More configurations of "a run killed at any point and resumed ends as an uninterrupted run".

Each test kills training through ``hepnn._faults`` (in process, with an exception nothing
catches), resumes it into the same folder, and compares the final weights and every history
number except timings with an uninterrupted run's, bit for bit (``training.deterministic: true``).
The families and options checked without finding a difference have no test here (see
``tests/test_faults_training.py`` for the dense model's kill points).
"""

from __future__ import annotations

import numpy as np
import pytest

import hepnn._faults as faults
from hepnn.training.trainer import Trainer

pytest.importorskip("keras")

N_JETS, N_TRAIN = 300, 240


class Killed(BaseException):
    """Raised by the fault hook (a BaseException: nothing catches it, like a kill)."""


def numbers(history):
    """The history without its timing columns (those differ between any two runs)."""
    keep = lambda k: k in ("epoch", "learning_rate") or k.endswith("loss") or "auc" in k or "accuracy" in k  # noqa: E731
    return [{k: v for k, v in row.items() if keep(k)} for row in history]


def images():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, N_JETS)
    image = rng.random((N_JETS, 8, 8, 1)).astype("float32")
    image[:, :4, :2] += 0.5 * y[:, None, None, None]  # asymmetric: a flip changes what the network sees
    return {"image": image, "label": y.astype("int32"), "weight": np.ones(N_JETS, "float32"),
            "split": np.where(np.arange(N_JETS) < N_TRAIN, 0, 1).astype("int8")}


def killed_and_resumed(config, data, run, point, when, monkeypatch):
    def hook(name, info):
        if name == point and when(info):
            raise Killed(f"{name} {info}")

    monkeypatch.setattr(faults, "HOOK", hook)
    with pytest.raises(Killed):
        Trainer(config, log=lambda s: None).fit(run, data=data)
    monkeypatch.setattr(faults, "HOOK", None)
    assert not (run / "model.keras").exists(), "the kill came too late"
    return Trainer(config, log=lambda s: None).fit(run, data=data)


def test_augmented_run_killed_mid_epoch_resumes_with_the_same_flips(tmp_path, monkeypatch):
    """training.augment draws each epoch's flips for the whole permutation: a run resumed from a
    step checkpoint flips each remaining jet as the uninterrupted run did (it drew the flips for
    the remaining jets only, so jet i got the flip of jet i - skipped)."""
    config = {"data": {"inputs": {"image": {"kind": "image", "pixels": 8}}},
              "model": {"name": "cnn", "filters": [4], "convs_per_block": 1, "dense_units": [8], "dropout": 0.0,
                        "inputs": ["image"]},
              "training": {"epochs": 2, "batch_size": 32, "deterministic": True, "early_stopping": None,
                           "checkpoint_every_n_steps": 2, "verbose": 0,
                           "augment": {"flip_eta": True, "flip_phi": True}}}
    data = images()
    full = Trainer(config, log=lambda s: None).fit(tmp_path / "full", data=data)
    resumed = killed_and_resumed(config, data, tmp_path / "cut", "step",
                                 lambda i: (i["epoch"], i["step"]) == (1, 3), monkeypatch)  # resumes after step 2
    assert numbers(resumed.history_) == numbers(full.history_)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("point", "at"), [("checkpoint", 4), ("step", 3)])
def test_multi_worker_loop_killed_mid_epoch_logs_the_loss_of_the_whole_epoch(tmp_path, monkeypatch, point, at):
    """The multi-worker custom loop (here one worker) keeps its epoch loss as a running sum, not in
    Keras metrics: a step checkpoint carries that sum, so the resumed epoch's loss is the mean over
    all its steps (it was the mean over the steps after the resume; the weights were right)."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, N_JETS)
    data = {"jet": (rng.normal(size=(N_JETS, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(N_JETS, "float32"), "split": np.where(np.arange(N_JETS) < N_TRAIN, 0, 1).astype("int8")}
    config = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
              "model": {"name": "dense", "units": [8]},
              "training": {"epochs": 2, "batch_size": 32, "deterministic": True, "early_stopping": None,
                           "checkpoint_every_n_steps": 2, "verbose": 0, "distribute": "multi_worker"}}
    full = Trainer(config, log=lambda s: None).fit(tmp_path / "full", data=data)
    # killed inside the step-4 checkpoint, or after step 3: it resumes after step 2
    resumed = killed_and_resumed(config, data, tmp_path / "cut", point,
                                 lambda i: (i["epoch"], i["step"]) == (1, at), monkeypatch)
    assert numbers(resumed.history_) == numbers(full.history_)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
