"""Output layers, losses and metrics per task."""

from __future__ import annotations

import pytest

from hepnn.exceptions import ConfigError
from hepnn.models.heads import default_loss, default_metrics, output_layer

keras = pytest.importorskip("keras")


@pytest.mark.parametrize(
    ("task", "n_outputs", "activation"),
    [("binary", 1, "sigmoid"), ("multiclass", 3, "softmax"), ("regression", 2, "linear")],
)
def test_output_layer(task, n_outputs, activation):
    layer = output_layer(task, n_outputs)
    assert layer.units == n_outputs
    assert layer.activation.__name__ == activation


def test_output_layer_rejects_bad_combinations():
    with pytest.raises(ConfigError, match="at least 2 classes"):
        output_layer("multiclass", 1)
    with pytest.raises(ConfigError, match="autoencoder"):
        output_layer("autoencoder", 1)
    with pytest.raises(ConfigError, match="did you mean 'binary'"):
        output_layer("binar", 1)


@pytest.mark.parametrize(
    ("task", "sparse", "loss", "expected"),
    [
        ("binary", True, None, "binary_crossentropy"),
        ("multiclass", True, None, "sparse_categorical_crossentropy"),
        ("multiclass", False, None, "categorical_crossentropy"),
        ("regression", True, None, "mse"),
        ("regression", True, "mae", "mae"),
        ("regression", True, "huber", "huber"),
        ("regression", True, "mean_absolute_error", "mae"),
        ("autoencoder", True, None, "mse"),
    ],
)
def test_default_loss(task, sparse, loss, expected):
    name = default_loss(task, sparse=sparse, loss=loss)
    assert name == expected
    assert keras.losses.get(name) is not None


def test_loss_must_fit_task():
    with pytest.raises(ConfigError, match="loss: expected one of binary_crossentropy"):
        default_loss("binary", loss="mse")


def test_default_metrics():
    """Metric objects (their variables made at compile, not in the traced train step) with Keras' names."""
    def names(task, **kw):
        return [m.name for m in default_metrics(task, **kw)]

    assert names("binary") == ["binary_accuracy", "auc"]
    assert names("multiclass") == ["sparse_categorical_accuracy"]
    assert names("multiclass", sparse=False) == ["categorical_accuracy"]
    assert names("regression") == ["mae"]
    assert default_metrics("autoencoder") == []
    assert all(m.variables for task in ("binary", "multiclass", "regression") for m in default_metrics(task))


def test_metric_names_are_those_of_the_default_metrics():
    """The names the config check accepts for training.early_stopping.monitor (without importing Keras)."""
    from hepnn.config.schema import METRIC_NAMES
    from hepnn.models.heads import TASKS

    assert set(METRIC_NAMES) == set(TASKS)
    for task in TASKS:
        assert METRIC_NAMES[task] == tuple(m.name for m in default_metrics(task)), task
