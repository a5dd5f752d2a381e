"""``activation_maximization``: inputs that maximise chosen neurons or filters (gradient ascent)."""

from __future__ import annotations

import numpy as np

from ..exceptions import UnknownNameError
from ..models.inference import compiled
from .registry import positive_int_problem, raise_option_problems, register_explainer

__all__ = ["activation_maximization"]


def _layer(model, name):
    if name is None:
        return None
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise UnknownNameError(name, "layer", names)
    return model.get_layer(name)


def _check(options):
    problem = positive_int_problem(options["n_steps"])
    if problem:
        yield "n_steps", problem
    if options["start"] not in ("mean", "zero"):
        yield "start", f"expected 'mean' or 'zero', received {options['start']!r}"


@register_explainer("activation_maximization", check=_check)
def activation_maximization(
    target, inputs, layer: str | None = None, units=(0,), n_steps: int = 100, learning_rate: float = 0.1,
    l2: float = 0.01, start: str = "mean",
) -> dict:
    """Gradient ascent in input space on the activation of chosen neurons / filters.

    Each unit starts from the mean of the explained jets (``start="mean"``; a sequence
    slot's mean over the jets where it is real) or zeros
    and follows the normalised gradient of ``activation - l2 * |x - x0|^2``. Padded
    sequence slots of the start stay padded. The Explanation then has one row per
    unit: ``inputs`` the starting points, ``values`` the change ``optimised - start``,
    ``outputs`` the final activations; ``extra`` holds ``pattern_<input>`` (the
    optimised inputs), ``activation_start`` and ``activation_end``.

    Parameters
    ----------
    layer : str, optional
        Layer name (default: the explained output itself).
    units : sequence of int
        Neurons (dense layers) or filters (conv layers, spatially averaged) to maximise.
    n_steps, learning_rate : int, float
        Gradient-ascent steps and step size (in units of the normalised gradient).
    l2 : float
        Pull towards the start, keeps patterns near the data.
    start : {"mean", "zero"}
    """
    import tensorflow as tf

    keras = target.keras
    model = target.model
    chosen = _layer(model, layer)
    raise_option_problems("activation_maximization", _check({"n_steps": n_steps, "start": start}))
    units = [int(u) for u in np.atleast_1d(units)]
    struct = getattr(model, "_inputs_struct", None) or model.inputs
    if chosen is not None:
        sub = keras.Model(struct, chosen.output)
        n_units = int(chosen.output.shape[-1])
        for u in units:
            if not 0 <= u < n_units:
                msg = f"explain.options.activation_maximization.units: layer {layer!r} has {n_units} units, received {u}"
                raise ValueError(msg)

        def activation(batch, unit):
            a = sub(batch, training=False)
            a = tf.reshape(a, (tf.shape(a)[0], -1, a.shape[-1]))
            return tf.reduce_mean(a[..., unit], axis=1)
    else:

        def activation(batch, unit):
            return target.tensor(batch)

    x0 = {}
    for k, v in inputs.items():
        base = target.mean_jet(inputs, k) if start == "mean" and len(v) else np.zeros(v.shape[1:], np.float32)
        if target.kinds[k] == "sequence" and len(v):
            real = target.real_slots(inputs)[k].mean(axis=0) >= 0.5
            base = np.where(real[:, None], base, target.mask_value)
        x0[k] = np.repeat(base[None].astype(np.float32), len(units), axis=0)
    masks = {k: np.broadcast_to(np.any(x0[k] != target.mask_value, axis=-1, keepdims=True), x0[k].shape)
             .astype(np.float32) if target.kinds[k] == "sequence" else np.ones_like(x0[k]) for k in x0}
    unit_index = tf.constant(units)

    @compiled
    def step(x, origin):
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts = tf.stack([activation(x, units[i])[i] for i in range(len(units))])
            penalty = tf.add_n([tf.reduce_sum(tf.reshape(tf.square(x[k] - origin[k]), (len(units), -1)), axis=1)
                                for k in x])
            objective = tf.reduce_sum(acts - l2 * penalty)
        grads = tape.gradient(objective, x)
        return acts, grads

    del unit_index
    x = {k: tf.Variable(v) for k, v in x0.items()}
    origin = {k: tf.constant(v) for k, v in x0.items()}
    first = None
    for _ in range(n_steps):
        acts, grads = step({k: tf.convert_to_tensor(v) for k, v in x.items()}, origin)
        if first is None:
            first = acts.numpy()
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads.values()])) + 1e-12
        for k in x:
            x[k].assign_add(learning_rate * grads[k] * masks[k] / norm * np.sqrt(len(units)))
    final = {k: v.numpy() for k, v in x.items()}
    last = step({k: tf.constant(v) for k, v in final.items()}, origin)[0].numpy()
    if first is None:
        first = last
    extra = {f"pattern_{k}": v for k, v in final.items()}
    extra.update({"activation_start": first, "activation_end": last, "units": np.asarray(units),
                  "layer": chosen.name if chosen is not None else "output"})
    return {"values": {k: final[k] - x0[k] for k in final}, "inputs": x0, "outputs": last, "extra": extra}
