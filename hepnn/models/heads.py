"""Output layers, default losses and default metrics for each task.

=============  ============================  =============================================
task           output layer                  losses (first is the default)
=============  ============================  =============================================
binary         ``n_outputs`` sigmoid units   binary_crossentropy, binary_focal_crossentropy
multiclass     ``n_outputs`` softmax units   sparse_categorical_crossentropy (integer
                                             labels) or categorical_crossentropy (one-hot)
regression     ``n_outputs`` linear units    mse, mae, huber
autoencoder    reconstruction of the input   mse, mae, huber
=============  ============================  =============================================

Losses and metrics are returned as Keras names (strings), so a compiled model
saves and reloads without custom objects. Compiling belongs to the training code.
"""

from __future__ import annotations

from typing import Any

from .._optional import require
from ..exceptions import ConfigError, suggest
from ._options import TASKS

__all__ = ["TASKS", "LOSSES", "output_layer", "default_loss", "default_metrics"]

LOSSES = {
    "binary": ("binary_crossentropy", "binary_focal_crossentropy"),
    "multiclass": ("sparse_categorical_crossentropy", "categorical_crossentropy"),
    "regression": ("mse", "mae", "huber"),
    "autoencoder": ("mse", "mae", "huber"),
}
_ALIASES = {
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "huber_loss": "huber",
}


def _check_task(task: Any) -> None:
    if task not in TASKS:
        msg = f"unknown task {task!r}{suggest(str(task), TASKS)}; valid tasks: {', '.join(TASKS)}"
        raise ConfigError(msg)


def output_layer(task: str, n_outputs: int = 1, name: str = "output"):
    """The final ``keras.layers.Dense`` layer for ``task``.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        binary: sigmoid (``n_outputs`` independent labels, usually 1);
        multiclass: softmax over ``n_outputs >= 2`` classes; regression: linear.
    n_outputs : int
        Number of output units.
    name : str
        Layer name.

    Returns
    -------
    keras.layers.Dense
        Always float32, so predictions are float32 under mixed precision too.

    Examples
    --------
    >>> layer = output_layer("multiclass", 3)  # doctest: +SKIP
    >>> layer.activation.__name__  # doctest: +SKIP
    'softmax'
    """
    _check_task(task)
    if task == "autoencoder":
        msg = "task 'autoencoder' has no classification head: use the 'autoencoder' model builder"
        raise ConfigError(msg)
    if not (isinstance(n_outputs, int) and not isinstance(n_outputs, bool) and n_outputs > 0):
        msg = f"n_outputs: expected a positive int, received {n_outputs!r}"
        raise ConfigError(msg)
    if task == "multiclass" and n_outputs < 2:
        msg = f"n_outputs: task 'multiclass' needs at least 2 classes, received n_outputs={n_outputs}"
        raise ConfigError(msg)
    keras = require("keras")
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[task]
    return keras.layers.Dense(n_outputs, activation=activation, dtype="float32", name=name)


def default_loss(task: str, n_outputs: int = 1, sparse: bool = True, loss: str | None = None) -> str:
    """The Keras loss name for ``task``, or ``loss`` after checking it fits the task.

    Parameters
    ----------
    task : str
        One of ``binary, multiclass, regression, autoencoder``.
    n_outputs : int
        Number of outputs (kept for symmetry with :func:`output_layer`).
    sparse : bool
        Multiclass only: integer labels (sparse categorical cross-entropy) rather
        than one-hot labels (categorical cross-entropy).
    loss : str, optional
        A loss name to use instead of the default; must be valid for ``task``.

    Examples
    --------
    >>> default_loss("binary")
    'binary_crossentropy'
    >>> default_loss("multiclass", 3, sparse=False)
    'categorical_crossentropy'
    >>> default_loss("regression", loss="huber")
    'huber'
    """
    _check_task(task)
    valid = LOSSES[task]
    if loss is not None:
        loss = _ALIASES.get(loss, loss)
        if loss not in valid:
            msg = (
                f"loss: expected one of {', '.join(valid)} for task {task!r}"
                f"{suggest(str(loss), valid)}, received {loss!r}"
            )
            raise ConfigError(msg)
        if loss == "categorical_crossentropy" and sparse:
            msg = ("loss: 'categorical_crossentropy' expects one-hot labels, and the labels here are class "
                   "indices; use 'sparse_categorical_crossentropy' (the same loss on class indices)")
            raise ConfigError(msg)
        return loss
    if task == "multiclass":
        return "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    return valid[0]


def default_metrics(task: str, sparse: bool = True) -> list:
    """Metrics to monitor for ``task`` (Keras metric objects with Keras' names, plus an AUC for binary).

    Objects, not names: Keras would make a named metric inside the first traced train step, and
    the variables created there make TensorFlow trace that step a second time.

    Examples
    --------
    >>> [m.name for m in default_metrics("regression")]
    ['mae']
    >>> [m.name for m in default_metrics("multiclass")]
    ['sparse_categorical_accuracy']
    """
    _check_task(task)
    if task == "autoencoder":
        return []
    metrics = require("keras").metrics
    if task == "binary":
        return [metrics.BinaryAccuracy(name="binary_accuracy"), metrics.AUC(name="auc")]
    if task == "multiclass":
        if sparse:
            return [metrics.SparseCategoricalAccuracy(name="sparse_categorical_accuracy")]
        return [metrics.CategoricalAccuracy(name="categorical_accuracy")]
    if task == "regression":
        return [metrics.MeanAbsoluteError(name="mae")]
    return []
