"""Documented training and model options act as documented, or are refused with the key to change."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.config import load_config
from hepnn.config.schema import OptimizerConfig
from hepnn.exceptions import ConfigError
from hepnn.training import Trainer
from hepnn.training.optimizers import OPTIMIZERS, build_optimizer
from test_bad_input_checks import toy_config

pytest.importorskip("keras")

SEQUENCE = {"kind": "sequence", "variables": ["px", "py", "pz", "energy"]}


def toy_data(n=200, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return {
        "jet": (rng.normal(size=(n, 2)) + y[:, None]).astype("float32"),
        "label": y.astype("int32"),
        "weight": np.ones(n, "float32"),
        "split": rng.choice([0, 1, 2], n, p=[0.7, 0.15, 0.15]).astype("int8"),
    }


def test_weight_decay_reaches_every_optimizer():
    for name in OPTIMIZERS:
        assert build_optimizer(OptimizerConfig(name=name, weight_decay=0.01)).weight_decay == pytest.approx(0.01), name
    assert build_optimizer(OptimizerConfig(name="adamw")).weight_decay == pytest.approx(0.004)
    assert build_optimizer(OptimizerConfig(name="adam")).weight_decay is None


def test_trained_model_uses_the_configured_weight_decay(tmp_path):
    config = toy_config(training={"optimizer": {"name": "adam", "weight_decay": 0.05, "clipnorm": 1.0}})
    trainer = Trainer(config, log=lambda _: None).fit(tmp_path / "run", data=toy_data())
    settings = trainer.model_.optimizer.get_config()
    assert settings["weight_decay"] == pytest.approx(0.05)
    assert settings["clipnorm"] == pytest.approx(1.0)


def test_optimizer_options_that_would_be_ignored_are_refused():
    refused = [
        ({"name": "adam", "momentum": 0.9}, "training.optimizer.momentum: optimizer 'adam' has no momentum option"),
        ({"name": "nadam", "momentum": 0.5}, "training.optimizer.momentum: optimizer 'nadam' has no momentum"),
        ({"name": "rmsprop", "momentum": 0.9, "nesterov": True}, "training.optimizer.nesterov: Nesterov momentum is an sgd"),
        ({"name": "sgd", "nesterov": True}, "training.optimizer.nesterov: Nesterov momentum with momentum: 0"),
    ]
    for optimizer, message in refused:
        with pytest.raises(ConfigError, match=message):
            load_config(toy_config(training={"optimizer": optimizer}))
    # where they act, they are accepted and reach the Keras optimiser
    config = load_config(toy_config(training={"optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True}}))
    optimizer = build_optimizer(config.training.optimizer)
    assert optimizer.momentum == pytest.approx(0.9) and optimizer.nesterov
    config = load_config(toy_config(training={"optimizer": {"name": "rmsprop", "momentum": 0.5}}))
    assert build_optimizer(config.training.optimizer).momentum == pytest.approx(0.5)


def test_one_hot_loss_on_class_indices_is_refused_before_training(tmp_path):
    files = {"files": [{"path": f"{c}.root", "label": i} for i, c in enumerate("abc")]}
    config = toy_config(data=files, training={"loss": "categorical_crossentropy"})
    with pytest.raises(ConfigError, match="'categorical_crossentropy' expects one-hot labels.*sparse_categorical"):
        Trainer(config, log=lambda _: None).fit(tmp_path / "run", data=toy_data(n_classes=3))
    assert not (tmp_path / "run" / "history.csv").exists()


@pytest.mark.parametrize("option", [{"l2": 1e-4}, {"l1": 1e-4}, {"batch_norm": True}])
def test_transformer_head_options_without_a_head_are_refused(option):
    data = {"inputs": {"parts": SEQUENCE}}
    (key,) = option
    with pytest.raises(ConfigError, match=f"model.{key}: applies to the head's hidden layers"):
        load_config({"data": data, "model": {"name": "transformer", **option}})
    config = load_config({"data": data, "model": {"name": "transformer", "dense_units": [8], **option}})
    assert config.model.params[key] == option[key]


def test_augment_that_would_be_ignored_is_refused():
    with pytest.raises(ConfigError, match=r"training.augment: flips jet images, and the model's inputs are jet \(flat\)"):
        load_config(toy_config(training={"augment": {}}))
    image = {"data": {"inputs": {"image": {"kind": "image"}}}, "model": {"name": "cnn"}}
    with pytest.raises(ConfigError, match="training.augment: image augmentation flips the images of the in-memory"):
        load_config({**image, "training": {"augment": {}, "streaming": True}})
    assert load_config({**image, "training": {"augment": {}}}).training.augment is not None


def test_deterministic_is_set_for_every_run_not_left_on_by_the_last():
    from tensorflow.python.framework import config as tf_config

    quiet = lambda _: None  # noqa: E731
    try:
        for deterministic in (True, False, True):
            trainer = Trainer(toy_config(training={"deterministic": deterministic}), log=quiet)
            trainer._set_seeds_and_precision()
            assert tf_config.is_op_determinism_enabled() is deterministic
    finally:
        tf_config.disable_op_determinism()
