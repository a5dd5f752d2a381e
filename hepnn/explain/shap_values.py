"""``shap``: SHAP values with the explainer that works for the model.

``algorithm="auto"`` picks ``shap.DeepExplainer`` (DeepLIFT-style, exact additivity)
for single-input dense, CNN and Deep Sets taggers and ``shap.GradientExplainer``
(expected gradients) for recurrent, masked, multi-input models and autoencoders;
``kernel`` and ``permutation`` are model-agnostic fallbacks on the flattened inputs.

shap's DeepExplainer patches TensorFlow's gradient registry while it runs and does
not restore everything when a call fails (every later gradient in the process then
fails with ``LookupError: gradient registry has no entry for: shap_...``).
:func:`tf_gradients_guard` snapshots and restores that state around every shap call.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from .._optional import require
from ..exceptions import InputDataError, suggest
from .registry import positive_int_problem, raise_option_problems, register_explainer

__all__ = ["shap_explainer", "tf_gradients_guard", "deep_supported"]

#: layers shap.DeepExplainer cannot handle with TF 2.x / Keras 3 (see notes in REFERENCE.md)
DEEP_UNSUPPORTED = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "Masking", "MultiHeadAttention",
                    "Attention", "Conv1D", "ApplyMask")
ALGORITHMS = ("auto", "deep", "gradient", "kernel", "permutation")


@contextlib.contextmanager
def tf_gradients_guard() -> Iterator[None]:
    """Restore TensorFlow's gradient registry and ``record_gradient`` hook on exit, always.

    Examples
    --------
    >>> with tf_gradients_guard():  # doctest: +SKIP
    ...     shap.DeepExplainer(model, background).shap_values(x)
    """
    from tensorflow.python.eager import execute as tf_execute
    from tensorflow.python.framework import ops as tf_ops

    try:
        from tensorflow.python.ops import gradients_util as tf_gradients_impl
    except ImportError:  # pragma: no cover
        tf_gradients_impl = None
    registry = tf_ops._gradient_registry._registry
    saved = {key: dict(entry) if isinstance(entry, dict) else entry for key, entry in registry.items()}
    record = tf_execute.record_gradient
    backprop_check = getattr(tf_gradients_impl, "_IsBackpropagatable", None)
    try:
        yield
    finally:
        tf_execute.record_gradient = record
        if backprop_check is not None:
            tf_gradients_impl._IsBackpropagatable = backprop_check
        for key in [k for k in registry if k not in saved]:
            del registry[key]
        for key, entry in saved.items():
            if isinstance(entry, dict) and isinstance(registry.get(key), dict):
                registry[key].clear()
                registry[key].update(entry)
            else:
                registry[key] = entry


def deep_supported(target) -> str | None:
    """Why DeepExplainer should not be used for this model, or None."""
    if target.task == "autoencoder":
        return "autoencoder anomaly score"
    if len(target.names) > 1:
        return "multi-input model"
    bad = sorted({type(layer).__name__ for layer in _all_layers(target.model)} & set(DEEP_UNSUPPORTED))
    if bad:
        return f"layers {', '.join(bad)}"
    return None


def _all_layers(model):
    stack, out = list(model.layers), []
    while stack:
        layer = stack.pop()
        out.append(layer)
        stack.extend(getattr(layer, "layers", []))
        inner = getattr(layer, "layer", None) or getattr(layer, "forward_layer", None)
        if inner is not None:
            out.append(inner)
    return out


def _target_model(target):
    """A Keras model with list inputs and the explained target as a ``(n, 1)`` output."""
    keras = target.keras
    import tensorflow as tf

    names = list(target.names)

    class _Explained(keras.layers.Layer):  # not saved: lives for one explanation
        def call(self, tensors):
            out, xs = tensors[0], tensors[1:]
            return tf.expand_dims(target.reduce(out, dict(zip(names, xs))), -1)

        def compute_output_shape(self, shapes):
            return (shapes[0][0], 1)

    ins = [keras.Input(shape=target.shapes[n], name=f"shap_{n}") for n in names]
    out = target.model(dict(zip(names, ins)))
    if isinstance(out, (list, tuple)):
        out = out[0]
    if target.task in ("binary", "regression") and target.n_outputs == 1 and len(out.shape) == 2:
        y = out
    else:
        y = _Explained(name="explained_target")([out, *ins])
    return keras.Model(ins, y)


def _per_input(phis, names):
    """shap output -> list (one per input) of arrays shaped like the inputs."""
    if not isinstance(phis, list):
        phis = [phis]
    if len(phis) == 1 and len(names) > 1 and isinstance(phis[0], list):
        phis = phis[0]
    out = []
    for p in phis:
        p = np.asarray(p)
        out.append(p)
    return out


def _squeeze_output(arr, shape):
    arr = np.asarray(arr)
    if arr.ndim == len(shape) + 2 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def _check(options):
    """The options' problems: an unknown algorithm, a background or sample count below 1."""
    algorithm = options["algorithm"]
    if algorithm not in ALGORITHMS:
        yield "algorithm", f"unknown algorithm {algorithm!r}{suggest(str(algorithm), ALGORITHMS)}; valid: {', '.join(ALGORITHMS)}"
    for key in ("background_size", "n_samples"):
        problem = positive_int_problem(options[key])
        if problem:
            yield key, problem


def _background_arrays(target, background) -> dict[str, np.ndarray]:
    """``background`` as float32 arrays of at least one jet shaped as the model's inputs, or ``InputDataError``."""
    missing = [n for n in target.names if n not in background]
    if missing:
        msg = (f"background: the model needs {', '.join(target.names)}; missing {', '.join(missing)} "
               f"(received {', '.join(map(str, background)) or 'none'})")
        raise InputDataError(msg)
    arrays = {n: np.asarray(background[n], dtype=np.float32) for n in target.names}
    for n, x in arrays.items():
        if x.ndim != len(target.shapes[n]) + 1 or tuple(x.shape[1:]) != target.shapes[n] or not len(x):
            msg = (f"background[{n!r}]: expected an array of shape (n_jets >= 1, "
                   f"{', '.join(map(str, target.shapes[n]))}), received shape {x.shape}")
            raise InputDataError(msg)
    return arrays


@register_explainer("shap", check=_check)
def shap_explainer(target, inputs, algorithm: str = "auto", background_size: int = 40, n_samples: int = 50,
                   random_state: int = 0, background=None) -> dict:
    """SHAP values of the explained output (score, class probability or anomaly score).

    Parameters
    ----------
    algorithm : {"auto", "deep", "gradient", "kernel", "permutation"}
        ``auto``: ``deep`` where DeepExplainer works (single-input dense, CNN, Deep
        Sets), ``gradient`` otherwise; if ``deep`` fails, ``auto`` retries with
        ``gradient`` (``extra["fallback"]`` says why).
    background_size : int
        Jets integrated over (drawn from ``background`` or from the explained jets); at least 1
        (0 made the ``deep`` values NaN).
    n_samples : int
        At least 1. Samples per jet of ``gradient`` (expected gradients) and ``kernel``; the
        ``permutation`` explainer uses ``max(2 * n_features + 1, 10 * n_samples)`` evaluations.
    random_state : int
    background : dict of str to array, optional
        Background jets (Python API only); default: a random subset of ``inputs``.

    Notes
    -----
    ``deep``, ``kernel`` and ``permutation`` values sum to ``output - base_value``
    (``extra["additivity_error"]`` reports the largest deviation); ``gradient`` does
    only on average over its samples. Padded sequence slots get zero, so for sequence
    inputs the values miss the share the background's elements took in those slots
    (``extra["padded_share"]``, a fraction of the total ``|value|``), and the
    additivity error, measured on the values returned, shows it.
    """
    shap = require("shap")
    raise_option_problems("shap", _check({"algorithm": algorithm, "background_size": background_size,
                                          "n_samples": n_samples}))
    names = list(target.names)
    rng = np.random.default_rng(random_state)
    source = inputs if background is None else _background_arrays(target, background)
    n_bg = len(source[names[0]])
    pick = rng.choice(n_bg, size=min(background_size, n_bg), replace=False)
    bg = [source[n][pick] for n in names]
    X = [inputs[n] for n in names]
    extra: dict = {"background_size": int(len(pick))}
    chosen = algorithm
    if algorithm == "auto":
        reason = deep_supported(target)
        chosen = "gradient" if reason else "deep"
        if reason:
            extra["deep_skipped"] = reason
    outputs = target.predict(inputs)

    if chosen == "deep":
        try:
            values, base = _deep(shap, target, X, bg)
        except Exception as err:  # noqa: BLE001 - shap raises anything from assert to LookupError
            if algorithm != "auto":
                raise
            extra["fallback"] = f"DeepExplainer failed ({type(err).__name__}: {str(err)[:200]}); used GradientExplainer"
            chosen = "gradient"
    if chosen == "gradient":
        values, base = _gradient(shap, target, X, bg, n_samples, random_state)
    elif chosen in ("kernel", "permutation"):
        values, base = _agnostic(shap, chosen, target, X, bg, n_samples, random_state)
    extra["algorithm"] = chosen
    base_values = np.broadcast_to(np.asarray(base, dtype=np.float64).reshape(-1)[:1], outputs.shape).copy() \
        if np.size(base) == 1 else np.asarray(base, dtype=np.float64).reshape(-1)
    # padded sequence slots get exactly zero (hepnn.explain.explain does it too): the background's
    # real elements in those slots take a share that the error must show, not hide
    unmasked = sum(float(np.abs(v).sum()) for v in values)
    values = list(target.zero_masked(dict(zip(names, values)), inputs).values())
    extra["padded_share"] = 1.0 - sum(float(np.abs(v).sum()) for v in values) / unmasked if unmasked else 0.0
    summed = sum(v.reshape(len(v), -1).sum(axis=1) for v in values)
    extra["additivity_error"] = float(np.max(np.abs(summed + base_values - outputs))) if len(outputs) else 0.0
    return {"values": dict(zip(names, values)), "base_values": base_values, "outputs": outputs, "extra": extra}


def _deep(shap, target, X, bg):
    model = _target_model(target)
    with tf_gradients_guard():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = shap.DeepExplainer(model, bg if len(bg) > 1 else bg[0])
            phis = explainer.shap_values(X if len(X) > 1 else X[0], check_additivity=False)
    values = [_squeeze_output(p, x.shape[1:]) for p, x in zip(_per_input(phis, target.names), X)]
    return values, np.asarray(explainer.expected_value).reshape(-1)[0]


def _gradient(shap, target, X, bg, n_samples, random_state):
    model = _target_model(target)
    state = np.random.get_state()  # shap reseeds numpy's global generator
    try:
        with tf_gradients_guard():
            explainer = shap.GradientExplainer(model, bg if len(bg) > 1 else bg[0])
            phis = explainer.shap_values(X if len(X) > 1 else X[0], nsamples=n_samples, rseed=random_state)
    finally:
        np.random.set_state(state)
    values = [_squeeze_output(p, x.shape[1:]) for p, x in zip(_per_input(phis, target.names), X)]
    base = float(np.mean(target.predict(dict(zip(target.names, bg)))))
    return values, base


def _agnostic(shap, algorithm, target, X, bg, n_samples, random_state):
    names = target.names
    sizes = [int(np.prod(x.shape[1:])) for x in X]
    splits = np.cumsum(sizes)[:-1]

    def flatten(arrays):
        return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)

    def f(flat):
        flat = np.asarray(flat, dtype=np.float32)
        parts = np.split(flat, splits, axis=1)
        return target.predict({n: p.reshape((len(flat), *target.shapes[n])) for n, p in zip(names, parts)})

    Xf, bgf = flatten(X), flatten(bg)
    state = np.random.get_state()
    try:
        np.random.seed(random_state)
        if algorithm == "kernel":
            explainer = shap.KernelExplainer(f, bgf)
            phis = np.asarray(explainer.shap_values(Xf, nsamples=max(n_samples, 2 * Xf.shape[1] + 2), silent=True))
            base = np.asarray(explainer.expected_value).reshape(-1)[0]
        else:
            masker = shap.maskers.Independent(bgf, max_samples=len(bgf))
            explainer = shap.PermutationExplainer(f, masker, seed=random_state)
            result = explainer(Xf, max_evals=max(2 * Xf.shape[1] + 1, 10 * n_samples), silent=True)
            phis, base = np.asarray(result.values), np.asarray(result.base_values)
    finally:
        np.random.set_state(state)
    phis = phis.reshape(len(Xf), -1)
    values = [p.reshape(x.shape) for p, x in zip(np.split(phis, splits, axis=1), X)]
    return values, base
