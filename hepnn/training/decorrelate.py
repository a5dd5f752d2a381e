"""Mass decorrelation while training: DisCo and an adversary (``training.decorrelate``).

A tagger that learns the jet mass sculpts the background mass spectrum (a cut on
its score turns a falling QCD spectrum into a peak), which ruins a bump hunt. Two
remedies, both applied to the background jets by default (``background_only``): the
class ``evaluation.background`` names, else the class that is not ``evaluation.signal``
(label 0 unless ``evaluation.signal`` names class 0), the background of the run's
metrics, sculpting numbers and reweighting:

- **DisCo** (arXiv:2001.05310): the loss gains ``strength * dCorr^2(score, mass)``,
  the squared distance correlation of score and mass over the background jets of
  each batch, computed with the jets' weights (:func:`distance_correlation`).
- **Adversary** (arXiv:1611.01046, 1703.03507): a small network predicts the mass
  quantile bin from the score; a gradient-reversal layer makes the classifier
  *maximise* the adversary's loss with weight ``strength`` while the adversary
  minimises it, in one optimiser step. For the first ``pretrain_epochs`` epochs the
  adversary learns without acting on the classifier. The logged ``loss`` (and
  ``val_loss``, which early stopping watches) is the classifier's objective
  ``L_clf - strength * L_adv``: negative, and lower for a better-hidden mass.
  Adversarial training is sensitive to ``strength``: on generated top/QCD jets (dense
  tagger on mass and N-subjettiness) strengths of 1-10 left the mass sculpted and 30-100
  made the classifier collapse (AUC near 0.5) within 20 epochs; DisCo at strength 100 cut
  the sculpting (1/JSD) fourteen-fold. Scan the strength and watch the report's
  rejection against 1/JSD.

Training runs on a wrapper model: the classifier's inputs plus the variable, the
label and the weight of each jet (``decorrelate_variable``, ``decorrelate_label``,
``decorrelate_weight``), with the penalty added as a layer loss. The wrapper holds
the adversary's weights, so checkpoints carry them and a resumed run continues
where it stopped; ``model.keras`` is always the plain classifier
(:func:`classifier_of`), which evaluation, ``Tagger``, explainers and ONNX export read
as for any run.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..exceptions import ConfigError
from ..io.labels import class_names
from ..runs.spec import class_index
from .splits import subset

__all__ = [
    "background_label",
    "distance_correlation",
    "distance_correlation_numpy",
    "attach",
    "prepare",
    "callbacks",
    "classifier_of",
    "is_wrapped",
    "INPUT_VARIABLE",
    "INPUT_LABEL",
    "INPUT_WEIGHT",
]

INPUT_VARIABLE = "decorrelate_variable"
INPUT_LABEL = "decorrelate_label"
INPUT_WEIGHT = "decorrelate_weight"
_EXTRA = (INPUT_VARIABLE, INPUT_LABEL, INPUT_WEIGHT)


# --- distance correlation ---------------------------------------------------------------


def distance_correlation_numpy(x: Any, y: Any, weights: Any = None) -> float:
    """Squared distance correlation dCorr^2 of two 1-d samples, by the direct O(n^2) definition.

    With weights ``w`` (normalised to ``p = w / sum(w)``) the double-centred distance
    matrices are ``A_ij = a_ij - sum_k p_k a_ik - sum_k p_k a_kj + sum_kl p_k p_l a_kl``
    and ``dCov^2(x, y) = sum_ij p_i p_j A_ij B_ij``; unit weights give the usual
    V-statistic. Returns 0 when either sample is constant or no jet has weight.

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> round(distance_correlation_numpy(x, 3 * x - 1), 6)
    1.0
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = len(x)
    p = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(p) != n or len(y) != n:
        msg = f"distance_correlation_numpy: one value per jet expected; received {n}, {len(y)}, {len(p)}"
        raise ValueError(msg)
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        msg = "distance_correlation_numpy: weights must be finite and non-negative"
        raise ValueError(msg)
    if not p.sum() > 0:
        return 0.0
    p = p / p.sum()

    def centred(v):
        a = np.empty((n, n))
        for i in range(n):
            for j in range(n):
                a[i, j] = abs(v[i] - v[j])
        row = a @ p
        return a - row[:, None] - row[None, :] + p @ row

    a, b = centred(x), centred(y)
    dcov_xy = p @ (a * b) @ p
    dvar = (p @ (a * a) @ p) * (p @ (b * b) @ p)
    return float(dcov_xy / np.sqrt(dvar)) if dvar > 0 else 0.0


def distance_correlation(x: Any, y: Any, weights: Any = None, epsilon: float = 1e-12) -> Any:
    """Squared distance correlation dCorr^2 of two 1-d tensors, weighted, differentiable (Keras ops).

    O(n^2) in memory and time: meant for one batch. Jets with weight 0 do not
    count (that is how the DisCo penalty keeps only the background). Returns 0 for
    a batch with no weight or a constant sample.

    Parameters
    ----------
    x, y : tensors of shape (n,)
    weights : tensor of shape (n,), optional
        Non-negative per-jet weights (normalised inside; the penalty layers clip
        negative ones to zero before calling this).
    epsilon : float
        Added to the product of the distance variances before the square root.

    Returns
    -------
    scalar tensor in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0.0, 1.0, 50, dtype="float32")
    >>> round(float(distance_correlation(x, 2 * x + 1)), 4)
    1.0
    """
    from keras import ops

    x = ops.reshape(ops.cast(x, "float32"), (-1,))
    y = ops.reshape(ops.cast(y, "float32"), (-1,))
    w = ops.ones_like(x) if weights is None else ops.reshape(ops.cast(weights, "float32"), (-1,))
    p = w / ops.maximum(ops.sum(w), 1e-30)

    def centred(v):
        # distances of standardised values: dCorr is invariant under affine maps, and the
        # matrices then stay O(1) whatever the units of the variable
        mean = ops.sum(p * v)
        scale = ops.sqrt(ops.sum(p * ops.square(v - mean)) + 1e-12)
        v = (v - mean) / scale
        a = ops.abs(v[:, None] - v[None, :])
        row = ops.sum(a * p[None, :], axis=1)
        return a - row[:, None] - row[None, :] + ops.sum(p * row)

    a, b = centred(x), centred(y)
    pp = p[:, None] * p[None, :]
    dcov_xy = ops.sum(pp * a * b)
    dvar = ops.sum(pp * a * a) * ops.sum(pp * b * b)
    return ops.maximum(dcov_xy, 0.0) / ops.sqrt(dvar + epsilon)


# --- layers (Keras imported on first use) ---------------------------------------------------


def _layers() -> dict[str, type]:
    """The wrapper's Keras layers, registered on first use (safe-mode loading of checkpoints)."""
    # lazy: import cycle with hepnn.training.decorrelate_layers
    from . import decorrelate_layers as layers  # needs Keras: imported when decorrelation is used

    return {"DiscoPenalty": layers.DiscoPenalty, "GradientReversal": layers.GradientReversal,
            "AdversaryLoss": layers.AdversaryLoss}


# --- trainer hooks ---------------------------------------------------------------------------


def check(config: Any, task: str, streaming: bool) -> None:
    """Refuse what decorrelation does not support, with the key to change."""
    tcfg = config.training
    if task != "binary":
        msg = (f"training.decorrelate: supported for binary taggers (signal vs background), this run's task is "
               f"{task!r}; remove training.decorrelate or use two classes")
        raise ConfigError(msg)
    if streaming:
        msg = ("training.decorrelate: the decorrelation variable reaches the batches of the in-memory feed only; "
               "set training.streaming: false (the jets are then read into memory once)")
        raise ConfigError(msg)
    if tcfg.train_classes:
        msg = "training.decorrelate: cannot be combined with training.train_classes (it needs both classes)"
        raise ConfigError(msg)
    if tcfg.distribute == "multi_worker":
        msg = "training.decorrelate: not supported with training.distribute: multi_worker; use auto or mirrored"
        raise ConfigError(msg)


def attach(feed: Any, config: Any, data: Mapping[str, Any]) -> None:
    """Add the variable, label and weight of each training and validation jet to the feed's inputs.

    The feed's ``input_shapes`` (what the classifier is built for) stay unchanged; it gets
    ``decorrelate_label_`` (the background label, :func:`background_label`) and
    ``decorrelate_background_`` (the variable's values of the training background jets).
    """
    decor = config.training.decorrelate
    _layers()  # registered before a checkpoint of the wrapper is loaded
    key = f"spec_{decor.variable}"
    if key not in data:
        msg = (f"training.decorrelate.variable: {decor.variable!r} is not in the loaded data (no {key!r}); "
               "list it in data.spectators")
        raise ConfigError(msg)
    for split, x, y, w in (("train", feed.x_train, feed.y_train, feed.w_train), ("val", feed.x_val, feed.y_val, feed.w_val)):
        values = np.asarray(subset(data, split)[key], dtype=np.float32)
        if len(values) != len(y):
            msg = f"training.decorrelate: {len(values)} {split} values of {key!r} for {len(y)} jets"
            raise ConfigError(msg)
        if not np.all(np.isfinite(values)):
            msg = f"training.decorrelate.variable: {decor.variable!r} has NaN or infinite values in the {split} split"
            raise ConfigError(msg)
        x[INPUT_VARIABLE] = values.reshape(-1, 1)
        x[INPUT_LABEL] = np.asarray(y, dtype=np.float32).reshape(-1, 1)
        x[INPUT_WEIGHT] = np.asarray(w, dtype=np.float32).reshape(-1, 1)
    background = background_label(config, data)
    bkg = feed.y_train == background
    if not np.any(bkg):
        msg = (f"training.decorrelate: the training split has no background jets (label {background}) to "
               "decorrelate on")
        raise ConfigError(msg)
    feed.decorrelate_label_ = background
    feed.decorrelate_background_ = feed.x_train[INPUT_VARIABLE][bkg, 0]


def background_label(config: Any, data: Mapping[str, Any]) -> int:
    """The label of the background jets the penalty acts on: ``evaluation.background``, else the class
    that is not ``evaluation.signal`` (default signal: label 1), as for the metrics and reweighting.

    Class names as the run spec takes them: the data's (``JetData.class_names``), else those of
    the data config.

    Examples
    --------
    >>> from hepnn.config import load_config
    >>> config = load_config({"evaluation": {"signal": "background"}})
    >>> background_label(config, {"label": np.array([0, 1])}), background_label(load_config({}), {})
    (1, 0)
    """
    classes = getattr(data, "class_names", None) or None
    if not classes:
        classes = class_names(config.data, labels=np.asarray(data["label"]) if "label" in data else None)
    signal = class_index(classes, config.evaluation.signal, "evaluation.signal", 1)
    return class_index(classes, config.evaluation.background, "evaluation.background", 1 if signal == 0 else 0)


def is_wrapped(model: Any) -> bool:
    """True for a decorrelation training wrapper (e.g. a resumed checkpoint)."""
    return any(getattr(t, "name", None) == INPUT_VARIABLE for t in getattr(model, "inputs", None) or [])


def classifier_of(model: Any) -> Any:
    """The plain classifier inside a training wrapper (``model`` itself when not wrapped)."""
    if not is_wrapped(model):
        return model
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[0]


def _input_dict(model: Any) -> dict:
    import keras

    return {t.name: keras.Input(shape=tuple(t.shape[1:]), name=t.name, dtype=t.dtype) for t in model.inputs}


def prepare(model: Any, config: Any, feed: Any, compile_fn) -> Any:
    """The model to train: ``model`` wrapped with the DisCo penalty or the adversary, compiled.

    A model that is already a wrapper (a resumed checkpoint) is returned as it is.
    """
    if is_wrapped(model):
        return model
    import keras

    layers = _layers()
    decor = config.training.decorrelate
    label_of_background = int(getattr(feed, "decorrelate_label_", 0))
    inputs = _input_dict(model)
    score = model(inputs)
    variable = keras.Input(shape=(1,), name=INPUT_VARIABLE)
    label = keras.Input(shape=(1,), name=INPUT_LABEL)
    weight = keras.Input(shape=(1,), name=INPUT_WEIGHT)
    if decor.method == "disco":
        out = layers["DiscoPenalty"](decor.strength, decor.background_only, background=label_of_background,
                                     name="disco")([score, variable, label, weight])
    else:
        background = feed.decorrelate_background_
        edges = np.quantile(background, np.linspace(0, 1, decor.bins + 1)[1:-1])
        start = 0.0 if decor.pretrain_epochs > 0 else decor.strength
        h = layers["GradientReversal"](start, name="gradient_reversal")(score)
        for i in range(decor.adversary_layers):
            h = keras.layers.Dense(decor.adversary_units, activation="relu", name=f"adversary_dense_{i}")(h)
        probs = keras.layers.Dense(decor.bins, activation="softmax", name="adversary_output")(h)
        out = layers["AdversaryLoss"](edges.tolist(), decor.background_only, start,
                                      background=label_of_background, name="adversary")(
            [score, probs, variable, label, weight]
        )
    wrapper = keras.Model({**inputs, INPUT_VARIABLE: variable, INPUT_LABEL: label, INPUT_WEIGHT: weight}, out,
                          name=f"decorrelated_{model.name}")
    compile_fn(wrapper)
    if getattr(model, "optimizer", None) is not None:  # the saved classifier then reloads without optimizer warnings
        model.optimizer.build(model.trainable_variables)
    return wrapper


def callbacks(model: Any, config: Any) -> list:
    """Keras callbacks of the adversary: its gradient reversal acts from epoch ``pretrain_epochs + 1``."""
    decor = config.training.decorrelate
    if decor is None or decor.method != "adversary" or not is_wrapped(model):
        return []
    import keras

    factors = [model.get_layer("gradient_reversal").factor, model.get_layer("adversary").factor]

    class _AdversarySchedule(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            for factor in factors:
                factor.assign(0.0 if epoch < decor.pretrain_epochs else decor.strength)

    return [_AdversarySchedule()]
