"""``track_dropping``: remove one sequence element (track, constituent) at a time."""

from __future__ import annotations

import numpy as np

from .registry import raise_option_problems, register_explainer

__all__ = ["track_dropping"]


def _applies(target):
    return None if target.of_kind("sequence") else "it needs a sequence input (max_length, n_features)"


def _check(options):
    if options["mode"] not in ("mask", "remove"):
        yield "mode", f"expected 'mask' or 'remove', received {options['mode']!r}"


@register_explainer("track_dropping", applies=_applies, check=_check)
def track_dropping(target, inputs, mode: str = "mask") -> dict:
    """Drop the element at each position and record ``output(x) - output(x without it)``.

    The change is shared equally by the element's features, so the values of a slot
    sum to its importance; padded slots get exactly zero. ``extra["position_importance_<input>"]``
    is the mean ``|change|`` per position over the jets where the slot is real.

    Parameters
    ----------
    mode : {"mask", "remove"}
        ``mask``: overwrite the slot with the pad value; ``remove``: shift the later
        elements forward and pad the end (keeps the ordering contiguous).
    """
    raise_option_problems("track_dropping", _check({"mode": mode}))
    reference = target.predict(inputs)
    real = target.real_slots(inputs)
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    extra: dict = {"mode": mode}
    for name in target.of_kind("sequence"):
        seq = inputs[name]
        n, length, n_feat = seq.shape
        position = np.zeros(length)

        def dropped_at(name=name, seq=seq, length=length):
            for p in range(length):
                jets = np.flatnonzero(real[name][:, p])
                if len(jets) == 0:
                    continue
                dropped = seq[jets].copy()
                if mode == "mask":
                    dropped[:, p, :] = target.mask_value
                else:
                    dropped[:, p:-1, :] = seq[jets, p + 1:, :]
                    dropped[:, -1, :] = target.mask_value
                yield (p, jets), {**{k: inputs[k][jets] for k in inputs}, name: dropped}

        # the positions' variants are scored together, in full batches (hepnn.explain.target)
        for (p, jets), out in target.predict_each(dropped_at()):
            delta = reference[jets] - out
            values[name][jets, p, :] = (delta / n_feat)[:, None]
            position[p] = np.mean(np.abs(delta))
        extra[f"position_importance_{name}"] = position
    return {"values": values, "outputs": reference, "extra": extra}
