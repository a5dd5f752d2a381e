"""``permutation``: permutation importance of features, with repeats and their spread."""

from __future__ import annotations

import numpy as np

from ..exceptions import InputDataError
from ..metrics import roc_auc
from .registry import positive_int_problem, raise_option_problems, register_explainer

__all__ = ["permutation"]


def _applies(target):
    if not (target.of_kind("flat") or target.of_kind("sequence")):
        return "it permutes flat or sequence features; the model has only image inputs (use occlusion)"
    return None


def _auc(scores, labels, weights=None):
    return roc_auc(labels, scores, weights)


def _checked_weights(weights, n: int) -> np.ndarray | None:
    """``weights`` as float64, one per jet and summing to more than 0, or ``InputDataError``."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        msg = (f"weights: expected one finite weight per jet ({n}) summing to more than 0, received shape "
               f"{w.shape}" + (f" summing to {w.sum():g}" if w.shape == (n,) else "")
               + "; pass the explained jets' weights (or none)")
        raise InputDataError(msg)
    return w


def _explained_class(target, labels: np.ndarray) -> np.ndarray | None:
    """1 for the jets of the class whose output is explained, 0 for the others (the AUC's labels).

    A multiclass target explains ``target.class_index``; an anomaly score rises for the jets
    not of ``target.background`` (the trained-on class) when it is set; else a binary or
    anomaly output rises with the larger of two labels (``None`` for more than two label values)."""
    task = getattr(target, "task", None)
    if task == "multiclass":
        return (labels == target.class_index).astype(int)
    if task == "autoencoder" and getattr(target, "background", None) is not None:
        return (labels != target.background).astype(int)
    values = np.unique(labels)
    return (labels == values[-1]).astype(int) if len(values) == 2 else None


def _check(options):
    problem = positive_int_problem(options["n_repeats"])
    if problem:
        yield "n_repeats", problem


@register_explainer("permutation", applies=_applies, check=_check)
def permutation(target, inputs, n_repeats: int = 5, random_state: int = 0, labels=None, weights=None) -> dict:
    """Shuffle one feature across jets at a time and measure how the output changes.

    Per jet, ``values[name][i, ..., f]`` is the mean over repeats of
    ``output(x_i) - output(x_i with feature f shuffled)``; sequence features are shuffled
    as whole columns (padded slots stay padded) and the change is shared by the jet's
    real slots. Image inputs are left at zero (use ``occlusion``).

    Global importances go to ``extra``: ``importance_<input>`` (mean ``|change|``,
    averaged over repeats) with its spread ``importance_std_<input>`` over repeats, and
    with binary labels ``auc_drop_<input>`` / ``auc_drop_std_<input>``. With ``weights``
    the mean ``|change|`` and the AUCs are weighted (the per-jet values are not).

    Parameters
    ----------
    n_repeats : int
        Shuffles per feature.
    random_state : int
    labels : array, optional
        Class labels for the AUC drop: of the explained class against the others for a
        multiclass target, of the classes other than ``target.background`` for an autoencoder
        that names it, else of the larger of two labels against the smaller.
    weights : array, optional
        Per-jet weights (Python API; ``explain_run`` passes the run's evaluation weights
        when ``evaluation.weighted``), so that the base AUC is the weighted one of the evaluation.
    """
    raise_option_problems("permutation", _check({"n_repeats": n_repeats}))
    rng = np.random.default_rng(random_state)
    reference = target.predict(inputs)
    n = len(reference)
    w = _checked_weights(weights, n)
    is_signal = None if labels is None else _explained_class(target, np.asarray(labels))
    use_auc = is_signal is not None and 0 < is_signal.sum() < len(is_signal)
    base_auc = _auc(reference, is_signal, w) if use_auc else None
    real = target.real_slots(inputs)
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    extra: dict = {"n_repeats": n_repeats}
    for name in target.names:
        kind = target.kinds[name]
        if kind not in ("flat", "sequence"):
            continue
        n_feat = target.shapes[name][-1]
        importance = np.zeros((n_repeats, n_feat))
        auc_drop = np.zeros((n_repeats, n_feat))
        deltas = np.zeros((n_feat, n))

        def permuted(name=name, kind=kind, n_feat=n_feat):
            for f in range(n_feat):
                for r in range(n_repeats):
                    perm = rng.permutation(n)
                    column = inputs[name].copy()
                    if kind == "flat":
                        column[:, f] = inputs[name][perm, f]
                    else:
                        shuffled = inputs[name][perm, :, f]
                        keep = real[name] & real[name][perm]  # only slots real in both jets change
                        column[:, :, f] = np.where(keep, shuffled, inputs[name][:, :, f])
                    yield (f, r), {**inputs, name: column}

        # the permuted copies are scored together, in full batches (hepnn.explain.target)
        for (f, r), out in target.predict_each(permuted()):
            delta = reference - out
            deltas[f] += delta / n_repeats
            importance[r, f] = np.average(np.abs(delta), weights=w)
            if use_auc:
                auc_drop[r, f] = base_auc - _auc(out, is_signal, w)
        for f in range(n_feat):
            if kind == "flat":
                values[name][:, f] = deltas[f]
            else:
                n_real = np.maximum(real[name].sum(axis=1), 1)
                values[name][:, :, f] = real[name] * (deltas[f] / n_real)[:, None]
        extra[f"importance_{name}"] = importance.mean(axis=0)
        extra[f"importance_std_{name}"] = importance.std(axis=0)
        if use_auc:
            extra[f"auc_drop_{name}"] = auc_drop.mean(axis=0)
            extra[f"auc_drop_std_{name}"] = auc_drop.std(axis=0)
    return {"values": values, "outputs": reference, "extra": extra}
