"""Gradient attributions: ``saliency`` and ``integrated_gradients``."""

from __future__ import annotations

import numpy as np

from .registry import positive_int_problem, raise_option_problems, register_explainer

__all__ = ["saliency", "integrated_gradients"]


@register_explainer("saliency")
def saliency(target, inputs, absolute: bool = False, times_input: bool = False) -> dict:
    """Gradient of the explained output with respect to every input feature.

    Parameters
    ----------
    absolute : bool
        Return ``|gradient|`` (classic saliency map) instead of the signed gradient.
    times_input : bool
        Multiply by the input (gradient x input).

    Examples
    --------
    >>> explain(model, {"jet": x}, method="saliency", absolute=True)  # doctest: +SKIP
    """
    grads = target.gradients(inputs)
    values = {}
    for name, g in grads.items():
        v = g.astype(np.float64)
        if times_input:
            v = v * inputs[name]
        values[name] = np.abs(v) if absolute else v
    return {"values": values}


def _baseline(target, inputs, baseline) -> dict[str, np.ndarray]:
    out = {}
    for name, x in inputs.items():
        if baseline == "mean":
            out[name] = np.broadcast_to(target.mean_jet(inputs, name)[None], x.shape).astype(np.float32)
            if target.kinds[name] == "sequence":  # a jet's padded slots stay padded: no importance, no fake elements
                out[name] = np.where(target.real_slots({name: x})[name][..., None], out[name],
                                     np.float32(target.mask_value))
        else:  # padded sequences (all slots == mask_value), empty images and zero features
            fill = target.mask_value if target.kinds[name] == "sequence" else 0.0
            out[name] = np.full_like(x, fill)
    return out


def _check_integrated(options):
    problem = positive_int_problem(options["n_steps"])
    if problem:
        yield "n_steps", problem
    if options["baseline"] not in ("zero", "mean"):
        yield "baseline", f"expected 'zero' or 'mean', received {options['baseline']!r}"


@register_explainer("integrated_gradients", check=_check_integrated)
def integrated_gradients(target, inputs, n_steps: int = 16, baseline: str = "zero") -> dict:
    """Integrated gradients (Sundararajan et al. 2017) along the straight path from a baseline.

    The attributions of a jet sum to ``output - base_value`` up to the error of the
    ``n_steps``-point midpoint rule (``extra["completeness_error"]`` reports it).

    Parameters
    ----------
    n_steps : int
        Points of the midpoint rule.
    baseline : {"zero", "mean"}
        ``zero``: all features 0 (padded slots for sequences, empty images);
        ``mean``: the mean of the explained jets (of a sequence slot: over the jets where
        it is real; a jet's padded slots stay padded).
    """
    raise_option_problems("integrated_gradients", _check_integrated({"n_steps": n_steps, "baseline": baseline}))
    base = _baseline(target, inputs, baseline)
    total = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    for alpha in (np.arange(n_steps) + 0.5) / n_steps:
        point = {k: (base[k] + alpha * (inputs[k] - base[k])).astype(np.float32) for k in inputs}
        for k, g in target.gradients(point).items():
            total[k] += g
    values = {k: total[k] / n_steps * (inputs[k] - base[k]) for k in inputs}
    outputs = target.predict(inputs)
    base_values = target.predict(base)
    summed = sum(v.reshape(len(v), -1).sum(axis=1) for v in values.values())
    error = np.abs(summed - (outputs - base_values))
    return {"values": values, "base_values": base_values, "outputs": outputs,
            "extra": {"completeness_error": float(error.max()) if len(error) else 0.0, "n_steps": n_steps}}
