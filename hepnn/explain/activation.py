"""``activation_maximization``: inputs that maximise chosen neurons or filters (gradient ascent)."""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError, UnknownNameError
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


def _units_problem(units, layer) -> str | None:
    """Why ``units`` cannot be maximised (None when they can): an empty or non-integer list, a
    negative index, or another unit than 0 of the explained output (``layer`` unset), which has one."""
    listed = list(np.atleast_1d(np.asarray(units, dtype=object)))
    if not listed or not all(isinstance(u, (int, np.integer)) and not isinstance(u, bool) and u >= 0
                             for u in listed):
        return f"expected a non-empty list of unit indices (ints >= 0), received {units!r}"
    if layer is None and [int(u) for u in listed] != [0]:
        return (f"the explained output (layer unset) is one unit, 0 (a multiclass model's class is "
                f"class_index), received {units!r}; set layer to a layer's name to maximise its units")
    return None


def _element_input(target, shape) -> str | None:
    """The sequence input whose elements a layer output of ``shape`` (batch, max_length, units)
    holds one row each of: the only sequence input of that length (None when there is none, or
    several)."""
    if len(shape) != 3:
        return None
    matches = [n for n in target.of_kind("sequence") if target.shapes[n][0] == shape[1]]
    return matches[0] if len(matches) == 1 else None


def _check_real_start(target, x0: dict[str, np.ndarray], start: str) -> None:
    """``ConfigError`` when a sequence input of the start has no real slot: the model masks every
    slot, its gradient is 0 and nothing would move (``start="zero"`` with pad value 0 did that)."""
    for name in target.of_kind("sequence"):
        if not np.any(x0[name] != np.float32(target.mask_value)):
            why = (f"'zero' sets every slot of {name!r} to its pad value ({target.mask_value:g})" if start == "zero"
                   else f"no slot of {name!r} is real in at least half of the jets")
            msg = (f"explain.options.activation_maximization.start: {why}, so the start has no real "
                   f"{name!r} element and nothing can be optimised; use start='mean' on jets with elements")
            raise ConfigError(msg)


def _check(options):
    problem = positive_int_problem(options["n_steps"])
    if problem:
        yield "n_steps", problem
    if options["start"] not in ("mean", "zero"):
        yield "start", f"expected 'mean' or 'zero', received {options['start']!r}"
    problem = _units_problem(options["units"], options["layer"])
    if problem:
        yield "units", problem


def _unit_steps(grads: dict[str, np.ndarray], learning_rate: float) -> dict[str, np.ndarray]:
    """Each unit's (row's) gradient scaled to length ``learning_rate`` over all inputs together.

    Every unit is normalised by its own gradient, so its pattern does not depend on which
    other units are optimised in the same call (a common norm made a unit beside a much
    steeper one barely move).
    """
    squares = sum(np.square(g, dtype=np.float64).reshape(len(g), -1).sum(axis=1) for g in grads.values())
    scale = learning_rate / (np.sqrt(squares) + 1e-12)
    return {k: (g * scale.reshape((-1,) + (1,) * (g.ndim - 1))).astype(g.dtype) for k, g in grads.items()}


@register_explainer("activation_maximization", check=_check)
def activation_maximization(
    target, inputs, layer: str | None = None, units=(0,), n_steps: int = 100, learning_rate: float = 0.1,
    l2: float = 0.01, start: str = "mean",
) -> dict:
    """Gradient ascent in input space on the activation of chosen neurons / filters.

    Each unit starts from the mean of the explained jets (``start="mean"``; a sequence
    slot's mean over the jets where it is real) or zeros
    and follows the normalised gradient of ``activation - l2 * |x - x0|^2``: every step
    moves each unit's input by ``learning_rate`` (its own gradient's length over all
    inputs), so the units are optimised independently of each other. Padded
    sequence slots of the start stay padded. The Explanation then has one row per
    unit: ``inputs`` the starting points, ``values`` the change ``optimised - start``,
    ``outputs`` the final activations; ``extra`` holds ``pattern_<input>`` (the
    optimised inputs), ``activation_start`` and ``activation_end``.

    Parameters
    ----------
    layer : str, optional
        Layer name (default: the explained output itself).
    units : sequence of int
        Neurons (dense layers) or filters (conv layers, spatially averaged; a per-element
        layer of a sequence input, averaged over the real elements) to maximise;
        without ``layer`` only ``(0,)``, the explained output (choose a multiclass model's
        class with ``class_index``).
    n_steps, learning_rate : int, float
        Gradient-ascent steps and step size (in units of the normalised gradient).
    l2 : float
        Pull towards the start, keeps patterns near the data.
    start : {"mean", "zero"}
        ``zero`` needs a pad value other than 0 for sequence inputs (all-zero slots are padded);
        a start without a real slot of a sequence input raises ``ConfigError``.
    """
    import tensorflow as tf

    keras = target.keras
    model = target.model
    chosen = _layer(model, layer)
    raise_option_problems("activation_maximization",
                          _check({"n_steps": n_steps, "start": start, "units": units, "layer": layer}))
    units = [int(u) for u in np.atleast_1d(units)]
    struct = getattr(model, "_inputs_struct", None) or model.inputs
    if chosen is not None:
        sub = keras.Model(struct, chosen.output)
        n_units = int(chosen.output.shape[-1])
        for u in units:
            if not 0 <= u < n_units:
                msg = f"explain.options.activation_maximization.units: layer {layer!r} has {n_units} units, received {u}"
                raise ConfigError(msg)

        per_element = _element_input(target, chosen.output.shape)

        def activation(batch, unit):
            a = sub(batch, training=False)
            if per_element is not None:  # the mean over the jet's real elements, not its padded slots
                x = batch[per_element]
                real = tf.cast(tf.reduce_any(tf.not_equal(x, tf.cast(target.mask_value, x.dtype)), axis=-1), a.dtype)
                return tf.reduce_sum(a[..., unit] * real, axis=1) / tf.maximum(tf.reduce_sum(real, axis=1), 1.0)
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
    _check_real_start(target, x0, start)
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
        for k, move in _unit_steps({k: grads[k].numpy() * masks[k] for k in x}, learning_rate).items():
            x[k].assign_add(move)
    final = {k: v.numpy() for k, v in x.items()}
    last = step({k: tf.constant(v) for k, v in final.items()}, origin)[0].numpy()
    if first is None:
        first = last
    extra = {f"pattern_{k}": v for k, v in final.items()}
    extra.update({"activation_start": first, "activation_end": last, "units": np.asarray(units),
                  "layer": chosen.name if chosen is not None else "output"})
    return {"values": {k: final[k] - x0[k] for k in final}, "inputs": x0, "outputs": last, "extra": extra}
