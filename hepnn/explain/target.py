"""The quantity explained: one number per jet computed from a Keras model.

Binary taggers: the sigmoid score; multiclass: the probability of one class
(default the last, signal-like class); regression: the first output;
autoencoders: the anomaly score (mean squared reconstruction error over real slots).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from .._optional import require_keras
from ..exceptions import ConfigError
from ..models.inference import compiled, fixed_batches

__all__ = ["Target", "infer_task"]

KINDS = {1: "flat", 2: "sequence", 3: "image"}


def infer_task(model) -> str:
    """Guess ``binary``, ``multiclass``, ``regression`` or ``autoencoder`` from a model's last layer.

    Only a fallback for bare models: the task of a trained run is its spec's
    (:func:`hepnn.runs.load_spec`), which :func:`hepnn.explain.explain_run` passes on.
    """
    out_shape = tuple(model.outputs[0].shape[1:])
    in_shapes = [tuple(t.shape[1:]) for t in model.inputs]
    activation = getattr(model.layers[-1], "activation", None)
    name = getattr(activation, "__name__", str(activation))
    # a softmax output is a classifier, also when it has as many classes as the input has features
    if "softmax" in name:
        return "multiclass"
    if len(in_shapes) == 1 and out_shape == in_shapes[0] and out_shape != (1,):
        return "autoencoder"
    if out_shape[-1:] == (1,) and "sigmoid" in name:
        return "binary"
    return "binary" if out_shape == (1,) else "regression"


def find_mask_value(model, default: float = 0.0) -> float:
    for layer in model.layers:
        if hasattr(layer, "mask_value"):
            return float(layer.mask_value)
    return default


class Target:
    """A model plus the per-jet number to explain.

    Parameters
    ----------
    model : keras.Model
        A functional model taking a dict keyed by input name.
    task : str, optional
        ``binary``, ``multiclass``, ``regression`` or ``autoencoder`` (guessed when omitted).
    class_index : int, optional
        Multiclass: the class whose probability is explained (default: the last).
    mask_value : float, optional
        Value of padded sequence slots (default: found in the model's masking layers, else 0).
    batch_size : int
        Jets per model call.
    background : int, optional
        Autoencoder: the class index of the trained-on jets (``evaluation.background``); the
        anomaly score rises for the jets of the other classes. Unset: the smaller of two labels.
    """

    def __init__(self, model, task: str | None = None, class_index: int | None = None,
                 mask_value: float | None = None, batch_size: int = 512, background: int | None = None):
        self.keras = require_keras()
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.task = task or infer_task(model)
        struct = getattr(model, "_inputs_struct", None)
        tensors = list(struct.items()) if isinstance(struct, Mapping) else [
            (t.name.split(":")[0], t) for t in model.inputs]
        self.names = [n for n, _ in tensors]
        for n, t in tensors:
            if any(d is None for d in t.shape[1:]):
                msg = (f"model input {n!r}: the explainers need a fixed shape per jet, received "
                       f"{tuple(t.shape[1:])}; build the model with the padded length (e.g. max_length)")
                raise ConfigError(msg)
        self.shapes = {n: tuple(int(d) for d in t.shape[1:]) for n, t in tensors}
        self.kinds = {n: KINDS.get(len(s), "other") for n, s in self.shapes.items()}
        n_out = int(model.outputs[0].shape[-1]) if len(model.outputs[0].shape) > 1 else 1
        self.n_outputs = n_out
        if class_index is None:
            class_index = n_out - 1 if self.task == "multiclass" else 0
        if not 0 <= class_index < max(n_out, 1):
            msg = f"class_index: expected 0 <= class_index < {n_out} (the model's outputs), received {class_index}"
            raise ConfigError(msg)  # a ValueError too
        self.class_index = int(class_index)
        self.background = None if background is None else int(background)
        self.mask_value = float(find_mask_value(model) if mask_value is None else mask_value)
        self.batch_size = int(batch_size)
        self._fn = compiled(self._call)

    # --- evaluation -----------------------------------------------------------------

    def _call(self, inputs: dict):
        """The per-jet target as a TensorFlow tensor of shape (n,) (differentiable)."""
        return self.reduce(self.model(inputs, training=False), inputs)

    def reduce(self, out, inputs: dict):
        """The per-jet target from the model's output tensor ``out``."""
        tf = self.tf
        if isinstance(out, (list, tuple)):
            out = out[0]
        if self.task == "autoencoder":
            x = inputs[self.names[0]]
            err = tf.square(tf.cast(x, out.dtype) - out)
            if self.kinds[self.names[0]] == "sequence":
                real = tf.cast(tf.reduce_any(tf.not_equal(x, self.mask_value), axis=-1), out.dtype)
                per_slot = tf.reduce_mean(err, axis=-1) * real
                return tf.reduce_sum(per_slot, axis=1) / tf.maximum(tf.reduce_sum(real, axis=1), 1.0)
            return tf.reduce_mean(tf.reshape(err, (tf.shape(err)[0], -1)), axis=1)
        out = tf.reshape(out, (tf.shape(out)[0], -1))
        return out[:, self.class_index]

    def tensor(self, inputs: Mapping[str, Any]):
        return self._call({n: inputs[n] for n in self.names})

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The per-jet target for numpy inputs, in batches: shape ``(n_jets,)``."""
        n = len(inputs[self.names[0]])
        out = np.empty(n, dtype=np.float64)
        arrays = {k: np.asarray(inputs[k], dtype=np.float32) for k in self.names}
        for start, n_real, batch in fixed_batches(arrays, self.batch_size):
            out[start:start + n_real] = self._fn({k: self.tf.constant(v) for k, v in batch.items()}).numpy()[:n_real]
        return out

    def predict_each(self, items: Iterable[tuple[Any, Mapping[str, np.ndarray]]],
                     rows: int | None = None) -> Iterator[tuple[Any, np.ndarray]]:
        """``(tag, self.predict(inputs))`` for each ``(tag, inputs)`` of ``items``, in order.

        The inputs of consecutive items are scored together, in calls of at least ``rows``
        jets (default: 8 batches) when there are that many: a perturbation explainer's
        variants of a few hundred jets would each fill a whole batch of ``batch_size`` rows
        alone. Each jet's score is that of :meth:`predict` on its own batch position.
        """
        rows = 8 * self.batch_size if rows is None else max(1, int(rows))
        tags: list = []
        parts: list = []
        size = 0
        for tag, inputs in items:
            tags.append(tag)
            parts.append({k: np.asarray(inputs[k], dtype=np.float32) for k in self.names})
            size += len(parts[-1][self.names[0]])
            if size >= rows:
                yield from zip(tags, self._predict_parts(parts))
                tags, parts, size = [], [], 0
        if parts:
            yield from zip(tags, self._predict_parts(parts))

    def _predict_parts(self, parts: list[dict]) -> list[np.ndarray]:
        sizes = [len(p[self.names[0]]) for p in parts]
        out = self.predict({k: np.concatenate([p[k] for p in parts]) for k in self.names})
        return np.split(out, np.cumsum(sizes)[:-1])

    def gradients(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradients of the target with respect to every input, shaped like the inputs."""
        tf = self.tf
        grads = {k: np.zeros(np.shape(inputs[k]), dtype=np.float32) for k in self.names}
        arrays = {k: np.asarray(inputs[k], dtype=np.float32) for k in self.names}
        for start, n_real, batch in fixed_batches(arrays, self.batch_size):
            g = self._grad_fn({k: tf.constant(v) for k, v in batch.items()})
            for k in self.names:
                grads[k][start:start + n_real] = g[k].numpy()[:n_real]
        return grads

    @property
    def _grad_fn(self):
        if not hasattr(self, "_grad_cache"):
            tf = self.tf

            def grad(batch):
                with tf.GradientTape() as tape:
                    tape.watch(batch)
                    y = self._call(batch)
                return tape.gradient(y, batch)

            self._grad_cache = compiled(grad)
        return self._grad_cache

    # --- masks ----------------------------------------------------------------------

    def real_slots(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Sequence input -> ``(n_jets, max_length)`` bool, True for real (not padded) slots."""
        return {n: np.any(np.asarray(inputs[n]) != np.float32(self.mask_value), axis=-1)
                for n in self.names if self.kinds[n] == "sequence"}

    def mean_jet(self, inputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        """The mean over jets of input ``name``, shaped like one jet; for a sequence, each
        slot's mean over the jets where that slot is real (the pad value where none is),
        so that padded slots do not drag the mean towards the pad value."""
        x = np.asarray(inputs[name], dtype=np.float64)
        if self.kinds[name] != "sequence":
            return x.mean(axis=0).astype(np.float32)
        real = self.real_slots({name: x})[name]
        count = real.sum(axis=0)[:, None]
        total = np.where(real[..., None], x, 0.0).sum(axis=0)
        return np.where(count > 0, total / np.maximum(count, 1), self.mask_value).astype(np.float32)

    def zero_masked(self, values: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Set the attribution of padded sequence slots to exactly zero."""
        for name, real in self.real_slots(inputs).items():
            if name in values:
                v = np.array(values[name], dtype=np.float64, copy=True)
                v[~real] = 0.0
                values[name] = v
        return values

    def of_kind(self, kind: str) -> list[str]:
        return [n for n in self.names if self.kinds[n] == kind]
