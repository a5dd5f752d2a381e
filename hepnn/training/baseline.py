"""A boosted-decision-tree baseline, the way TMVA's BDT is used beside neural networks.

``HistGradientBoostingClassifier`` from scikit-learn trained on flat inputs and on
summaries of sequence inputs (per feature: mean, max and min over the real
elements, and the number of elements). Its test-split scores go on the same
plots as the networks'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._fileio import atomic_path
from ..runs.spec import class_index
from .evaluate import compute_metrics
from .rundir import write_json
from .splits import subset

__all__ = ["summary_features", "train_bdt", "BDT_DIR"]

BDT_DIR = "bdt"


def summary_features(data: Mapping[str, np.ndarray], names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Flat inputs as they are; sequences summarised per feature (mean, max, min) plus their length.

    Examples
    --------
    >>> seq = np.array([[[1.0], [3.0], [0.0]]]); mask = np.array([[True, True, False]])
    >>> x, names = summary_features({"trk": seq, "trk_mask": mask}, ["trk"])
    >>> x.tolist(), names
    ([[2.0, 3.0, 1.0, 2.0]], ['trk_0_mean', 'trk_0_max', 'trk_0_min', 'trk_n'])
    """
    columns, labels = [], []
    for name in names:
        x = np.asarray(data[name], dtype=np.float64)
        if x.ndim == 2:
            columns.append(x)
            labels.extend(f"{name}_{i}" for i in range(x.shape[1]))
        elif x.ndim == 3:
            mask = np.asarray(data.get(f"{name}_mask", np.ones(x.shape[:2], bool)), dtype=bool)
            n = mask.sum(axis=1)
            m = mask[..., None]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(n[:, None] > 0, (x * m).sum(axis=1) / np.maximum(n, 1)[:, None], 0.0)
            big = np.where(m, x, -np.inf).max(axis=1)
            small = np.where(m, x, np.inf).min(axis=1)
            big[~np.isfinite(big)] = 0.0
            small[~np.isfinite(small)] = 0.0
            for i in range(x.shape[2]):
                columns.append(np.stack([mean[:, i], big[:, i], small[:, i]], axis=1))
                labels.extend([f"{name}_{i}_mean", f"{name}_{i}_max", f"{name}_{i}_min"])
            columns.append(n[:, None].astype(np.float64))
            labels.append(f"{name}_n")
        # images are not summarised: a BDT on pixels is not a sensible baseline
    if not columns:
        msg = "the BDT baseline needs at least one flat or sequence input"
        raise ValueError(msg)
    return np.concatenate(columns, axis=1), labels


def train_bdt(data: Mapping[str, np.ndarray], names: Sequence[str], out: str | Path, seed: int = 1,
              working_points: Sequence[float] = (0.3, 0.5, 0.6, 0.7, 0.77, 0.85), classes: Sequence[str] | None = None,
              weighted: bool = False, signal: str | None = None, **params) -> dict:
    """Train the BDT on the train split, score the test split, write ``OUT/metrics.json`` and scores.

    Jets with a negative (NLO) weight count as 0 in the BDT's training, as TMVA's
    ``IgnoreNegWeightsInTraining`` does: gradient boosting with signed weights fits leaves on
    sums of Hessians that can be negative, and on a toy with 20 % weights of -1 it reached
    AUC 0.706 against 0.720 with them ignored. ``metrics.json`` then says how many
    (``negative_weights_ignored``).

    ``weighted`` (``evaluation.weighted``): the test metrics, and the scores the report draws
    (``baselines.npz``), carry the test jets' weights, as the networks' do.

    ``signal`` (``evaluation.signal``, a class name; default: the class with label 1): the signal
    class of a binary BDT's metrics, as for the networks. ``baselines.npz`` holds the probability of
    that class and labels 1 for its jets, 0 for the others (what the report's baselines expect);
    ``scores.npz`` holds the probability of label 1 and the labels as they are.

    Returns the metrics (same layout as a network's ``metrics.json``).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = subset(data, "train"), subset(data, "test")
    x_train, feature_names = summary_features(train, names)
    x_test, _ = summary_features(test, names)
    options = {"max_iter": 200, "learning_rate": 0.1, "early_stopping": True, "random_state": seed, **params}
    bdt = HistGradientBoostingClassifier(**options)
    weight = train.get("weight")
    negative = 0 if weight is None else int(np.count_nonzero(np.asarray(weight) < 0))
    if negative:
        weight = np.clip(np.asarray(weight, dtype=np.float64), 0.0, None)
    bdt.fit(x_train, train["label"], sample_weight=weight)
    probs = bdt.predict_proba(x_test)
    n_classes = probs.shape[1]
    classes = list(classes) if classes else (["background", "signal"] if n_classes == 2 else [str(i) for i in range(n_classes)])
    task = "binary" if n_classes == 2 else "multiclass"
    outputs = probs[:, 1] if task == "binary" else probs
    test_weights = None
    if weighted:
        test_weights = np.asarray(test["weight"] if "weight" in test else np.ones(len(test["label"])), dtype=np.float64)
    metrics = compute_metrics(outputs, test["label"], task, classes, working_points, weights=test_weights,
                              signal=signal)
    if weighted:
        metrics["weighted"] = True
    metrics["model"] = "HistGradientBoostingClassifier"
    metrics["features"] = feature_names
    if negative:
        metrics["negative_weights_ignored"] = negative
    # metrics.json last: it is what a rerun takes as "the baseline exists" (a kill before it redoes all)
    with atomic_path(out / "scores.npz", suffix=".npz") as tmp:
        np.savez(tmp, outputs=np.asarray(outputs, np.float32), label=np.asarray(test["label"], np.int32))
    write_json(out / "options.json", options)
    if task == "binary":  # the report draws binary baselines beside the networks
        _write_baselines(out.parent / "baselines.npz", probs, test["label"], classes, signal, test_weights)
    write_json(out / "metrics.json", metrics)
    return metrics


def _write_baselines(path: Path, probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], signal: str | None,
                     weights: np.ndarray | None) -> None:
    """``baselines.npz`` of a binary BDT: the probability of the signal class and labels 1 for signal
    jets, 0 for background (the report's baselines), with the signal of ``evaluation.signal``."""
    sig = class_index(classes, signal, "evaluation.signal", 1)
    with atomic_path(path, suffix=".npz") as tmp:
        extra = {} if weights is None else {"weights_BDT": weights}
        np.savez(tmp, scores_BDT=np.asarray(probs[:, sig], np.float32),
                 labels_BDT=(np.asarray(labels) == sig).astype(np.int32), **extra)
