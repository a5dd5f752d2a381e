"""Test-split metrics of a trained tagger: ``RUN_DIR/metrics.json``.

Binary taggers::

    {"auc": 0.97, "accuracy": 0.91, "rejection": {"0.3": 512.0, ..., "0.85": 9.1}, "n_test": 20000}

Multiclass taggers add ``"classes": {name: {auc, rejection, ...}}`` (each class against
the rest) and, for flavour tagging (classes named b, c and light), the b-vs-light and
c-vs-light rejections of the usual log-likelihood-ratio discriminants under
``"discriminants"``. Autoencoders report the same using the anomaly score, with the
configured background class as background.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._fileio import atomic_path
from .._version import __version__
from ..config import load_config, to_dict
from ..exceptions import ConfigError, InputDataError
from ..io import load
from ..io.labels import class_names
from ..metrics import efficiency_auc, efficiency_curve, rejection_at
from ..models.autoencoder import anomaly_score
from ..models.inference import predict
from ..preprocessing import Preprocessor
from ..runs.spec import class_index, load_spec
from .kfold import fold_data, fold_dirs, fold_parts, fold_position, folds_of, is_kfold_run, summarise
from .rundir import RunDirectory, input_files, load_run_model, missing_preprocessing, read_json, write_json
from .sculpting import run_sculpting
from .splits import subset

__all__ = ["binary_metrics", "multiclass_metrics", "flavour_discriminant", "compute_metrics", "split_data", "predict_split",
           "prediction_key", "evaluate_run", "evaluate_folds", "evaluation_weights", "recorded_analysis", "check_analysis"]

#: c- and b-fractions in the b- and c-tagging discriminants
F_C = 0.05
F_B = 0.2


def _wp_key(wp: float) -> str:
    return f"{wp:g}"


def binary_metrics(
    scores: np.ndarray, labels: np.ndarray, working_points: Sequence[float], weights: np.ndarray | None = None,
    signal: int = 1,
) -> dict:
    """AUC, accuracy at score 0.5, rejection 1/eB at each signal efficiency, and counts.

    Examples
    --------
    >>> m = binary_metrics(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]), [0.5, 1.0])
    >>> m["auc"], m["rejection"]["1"], m["n_test"]
    (0.75, 2.0, 4)
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    is_signal = labels == signal
    eff_s, eff_b, _ = efficiency_curve(is_signal.astype(int), scores, weights)
    rejection = rejection_at(eff_s, eff_b, np.asarray(working_points, dtype=float))
    return {
        "auc": round(efficiency_auc(eff_s, eff_b), 6),
        "accuracy": round(_accuracy((scores >= 0.5) == is_signal, weights), 6),
        "rejection": {_wp_key(wp): _finite(r) for wp, r in zip(working_points, np.atleast_1d(rejection))},
        "n_test": int(len(scores)),
        "n_signal": int(is_signal.sum()),
        "n_background": int((~is_signal).sum()),
    }


def _accuracy(correct: np.ndarray, weights: np.ndarray | None) -> float:
    """The (weighted, like the AUC and rejections beside it) fraction of correct decisions."""
    if weights is None:
        return float(np.mean(correct))
    w = np.asarray(weights, dtype=np.float64)
    total = np.sum(w)
    if not total > 0:
        msg = f"weights: the {len(w)} jets' weights sum to {total:g}, so the weighted accuracy is undefined"
        raise ValueError(msg)
    return float(np.sum(w * correct) / total)


def _check_class_totals(labels: np.ndarray, classes: Sequence[str], weights: np.ndarray | None) -> None:
    """Each class's efficiencies divide by its total weight: a class whose signed (NLO) weights sum to <= 0
    is named (the one-vs-rest curve would otherwise call it "signal (label 1)")."""
    if weights is None:
        return
    w = np.asarray(weights, dtype=np.float64)
    for i, name in enumerate(classes):
        chosen = labels == i
        total = np.sum(w[chosen])
        if chosen.any() and not total > 0:
            msg = (f"weights: the {int(chosen.sum())} {name!r} jets' weights sum to {total:g} (negative weights "
                   "outweigh the positive ones), so their efficiencies and metrics are undefined; check the "
                   "weights of this class")
            raise ValueError(msg)


def _finite(value: float) -> float | None:
    """JSON has no infinity: an infinite rejection (no background left) is written as null."""
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def flavour_discriminant(probs: np.ndarray, classes: Sequence[str], tag: str = "b", fraction: float | None = None):
    """``log(p_tag / (f p_other + (1 - f) p_light))`` for b- (other = c) or c-tagging (other = b)."""
    index = {name: i for i, name in enumerate(classes)}
    other = "c" if tag == "b" else "b"
    f = (F_C if tag == "b" else F_B) if fraction is None else fraction
    eps = 1e-12
    num = probs[:, index[tag]] + eps
    den = f * probs[:, index[other]] + (1 - f) * probs[:, index["light"]] + eps
    return np.log(num / den)


def multiclass_metrics(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], working_points: Sequence[float],
    weights: np.ndarray | None = None,
) -> dict:
    """Per class (vs the rest) metrics, overall accuracy and flavour-tagging discriminants."""
    labels = np.asarray(labels)
    _check_class_totals(labels, classes, weights)
    out: dict = {
        "accuracy": round(_accuracy(np.argmax(probs, axis=1) == labels, weights), 6),
        "n_test": int(len(labels)),
        "classes": {},
    }
    for i, name in enumerate(classes):
        if np.any(labels == i) and np.any(labels != i):
            out["classes"][name] = binary_metrics(probs[:, i], (labels == i).astype(int), working_points, weights)
    if {"b", "c", "light"} <= set(classes):
        index = {name: i for i, name in enumerate(classes)}
        disc = {}
        for tag, fraction in (("b", F_C), ("c", F_B)):
            keep = np.isin(labels, [index[tag], index["light"]])
            if np.any(labels == index[tag]) and np.any(labels == index["light"]):
                d = flavour_discriminant(probs[keep], classes, tag)
                y = (labels[keep] == index[tag]).astype(int)
                w = None if weights is None else np.asarray(weights)[keep]
                m = binary_metrics(1 / (1 + np.exp(-d)), y, working_points, w)
                m["fraction"] = fraction
                disc[f"{tag}_vs_light"] = m
        out["discriminants"] = disc
    return out


def compute_metrics(
    outputs: np.ndarray, labels: np.ndarray, task: str, classes: Sequence[str], working_points: Sequence[float],
    weights: np.ndarray | None = None, background: str | None = None, signal: str | None = None,
) -> dict:
    """Metrics for any task from model outputs (scores, probabilities or anomaly scores)."""
    outputs = np.asarray(outputs)
    labels = np.asarray(labels)
    if task == "binary":
        sig = class_index(classes, signal, "evaluation.signal", 1)
        scores = outputs.reshape(len(outputs), -1)[:, 0]
        if sig == 0:
            scores = 1 - scores
        return {"task": task, **binary_metrics(scores, (labels == sig).astype(int), working_points, weights)}
    if task == "multiclass":
        return {"task": task, **multiclass_metrics(outputs, labels, classes, working_points, weights)}
    if task == "autoencoder":
        bkg = class_index(classes, background, "evaluation.background", 0)
        y = (labels != bkg).astype(int)
        scores = outputs.reshape(-1)
        metrics = binary_metrics(scores, y, working_points, weights)
        # an anomaly score has no natural cut: flag as many jets as there are signal jets
        n_sig = int(y.sum())
        flagged = np.zeros(len(y), dtype=bool)
        if n_sig:
            flagged[np.argsort(-scores, kind="stable")[:n_sig]] = True
        metrics["accuracy"] = round(_accuracy(flagged == (y == 1), weights), 6)  # weighted as the AUC beside it
        metrics["accuracy_definition"] = "the n_signal jets with the highest anomaly score flagged as signal"
        return {"task": task, "score": "reconstruction_error", "background": classes[bkg], **metrics}
    msg = f"cannot evaluate task {task!r}"
    raise ValueError(msg)


def write_metrics(path, metrics: Mapping) -> None:
    write_json(path, dict(metrics))


def recorded_analysis(run_dir) -> dict | None:
    """The analysis plugin whose data hooks (``select``, ``labels``) a run was trained with:
    ``provenance.json`` ``analysis`` (the first fold's for a k-fold run), ``None`` when it used none."""
    path = RunDirectory(fold_dirs(run_dir, 1)[0] if is_kfold_run(run_dir) else run_dir).provenance
    try:
        record = read_json(path).get("analysis") if path.is_file() else None
    except (ValueError, OSError, AttributeError):
        return None
    return record if isinstance(record, dict) and record.get("data_hooks") else None


def check_analysis(run_dir, analysis: Any) -> None:
    """Refuse to read a run's data again without the analysis whose hooks chose its jets and labels
    (its test split would hold other jets, and the metrics would silently be of other data)."""
    if analysis is not None:
        return
    record = recorded_analysis(run_dir)
    if record is None:
        return
    hooks = " and ".join(f"{h}()" for h in record["data_hooks"])
    target = record.get("target") or record.get("name")
    msg = (f"{run_dir}: trained with analysis plugin {record.get('name')} ({record.get('class')}), whose {hooks} "
           "hook chose its jets and labels; read without it, the test split would hold other jets. Pass the "
           f"analysis: --analysis {target} (hepnn evaluate, report, explain), or in Python "
           f"analysis=hepnn.plugins.load_analysis({target!r})")
    raise ConfigError(msg)


def load_run_data(run_dir, config, analysis=None, cache: dict | None = None):
    """The data of ``config`` transformed with the run's own saved preprocessing (not refitted).

    With a ``cache`` dict, runs with the same ``data`` section and the same saved
    preprocessing (byte for byte: the variants of an analysis, fitted on one training
    split) share one read of the files.

    The run of one fold of a k-fold run (``RUN/folds/<k>``) gets its own data as it
    trained on them (:func:`hepnn.training.kfold.fold_data`): its test split is its fold,
    whose jets it never trained on (the config's test split holds jets of the other folds,
    which it did train on). Other data (``config.data`` not the run's) keep their splits.
    """
    check_analysis(run_dir, analysis)
    run = RunDirectory(run_dir)
    position = fold_position(run.path)
    if position is not None and to_dict(config.data) != to_dict(load_config(run.config).data):
        position = None
    key = None
    if cache is not None:
        prep = run.preprocessing.read_bytes() if run.preprocessing.is_file() else b""
        key = (repr(to_dict(config.data)), id(analysis), hashlib.sha256(prep).hexdigest())
    data = cache.get(key) if key is not None else None
    if data is None:
        problem = missing_preprocessing(run, load_spec(run.path, config).preprocessing)
        if problem:
            raise InputDataError(problem)
        data = load(config, analysis=analysis, standardize=False)
        if run.preprocessing.is_file():
            data = Preprocessor.load(run.preprocessing).transform(data)
        if key is not None:
            cache[key] = data
    if position is not None:  # the cache holds the data before the fold split: the folds share them
        _, k, n_folds = position
        data = fold_data(data, folds_of(data, n_folds), k)
    return data


def split_data(run_dir, split: str = "test", data_config=None, analysis=None, data=None,
               cache: dict | None = None) -> dict:
    """What :func:`predict_split` returns, without the model's outputs (nothing is predicted).

    For callers that need the jets of a split as the model sees them (an explainer
    picking a few hundred jets) but not the scores of all of them. ``cache`` is
    passed to :func:`load_run_data` when ``data`` is not given.
    """
    run = RunDirectory(run_dir)
    config = load_config(run.config)
    spec = load_spec(run.path, config)
    if data_config is not None:
        import dataclasses

        other = load_config(data_config).data
        _check_other_data(config.data, other, spec, data_config)
        config = dataclasses.replace(config, data=other)
    if data is None:
        data = load_run_data(run_dir, config, analysis, cache=cache)
    part = subset(data, split)
    return {"label": part["label"], "weight": part.get("weight"), "task": spec.task,
            "classes": list(spec.classes), "config": config, "data": part, "spec": spec}


def _check_other_data(own: Any, other: Any, spec: Any, source: Any) -> None:
    """The data of another config mean to the model what they meant in training: the same classes
    in the same order, and every model input defined as the run's (variables, order, shape)."""
    where = f"--data {source}" if isinstance(source, (str, os.PathLike)) else "data_config"
    classes, own_classes = list(class_names(other)), list(spec.classes)
    # names may differ (file groups named after other files); a swapped order or another count may not
    swapped = sorted(classes) == sorted(own_classes) and classes != own_classes
    if swapped or len(classes) != len(own_classes):
        msg = (f"{where}: its classes are {', '.join(classes)}, the run's {', '.join(own_classes)} (in this order); "
               "label the jets as in training (the same data.label.classes or file-group labels)")
        raise ConfigError(msg)
    for name in spec.names:
        if name not in other.inputs:
            msg = (f"{where}: data.inputs has no {name!r}, an input of the model "
                   f"(it defines {', '.join(other.inputs) or 'none'}); copy its definition from the run's config.yaml")
            raise ConfigError(msg)
        mine, theirs = to_dict(own.inputs[name]), to_dict(other.inputs[name])
        if mine != theirs:
            keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            shown = "; ".join(f"{k}: {theirs.get(k)!r} (the run: {mine.get(k)!r})" for k in keys[:4])
            msg = (f"{where}: data.inputs.{name} differs from the run's ({shown}); the model reads the input as it "
                   "was defined in training: copy its definition from the run's config.yaml")
            raise ConfigError(msg)


def other_metrics_path(run_dir, data_config: Any):
    """Where ``hepnn evaluate RUN --data OTHER`` writes its metrics: ``RUN/metrics_<OTHER's stem>.json``
    (the run's own ``metrics.json`` stays the metrics of its own test split)."""
    stem = Path(data_config).stem if isinstance(data_config, (str, os.PathLike)) else "other"
    return RunDirectory(run_dir).path / f"metrics_{stem}.json"


def predict_split(run_dir, split: str = "test", data_config=None, analysis=None, data=None,
                  cache: dict | None = None, key: str | None = None, store: bool = True):
    """Model outputs, labels and weights of one split, with the run's own preprocessing.

    For autoencoders the output is the per-jet anomaly score (reconstruction error).
    The model is loaded once per process (:func:`hepnn.training.rundir.load_run_model`);
    ``cache`` shares the data between runs (:func:`load_run_data`). With a ``key``
    (:func:`prediction_key` of the data the outputs are for), the outputs stored in
    ``RUN_DIR/predictions/<split>.npz`` under that key are returned without loading the
    model, and outputs computed here are stored under it (unless not ``store``).
    """
    out = split_data(run_dir, split, data_config=data_config, analysis=analysis, data=data, cache=cache)
    part, config = out["data"], out["config"]
    outputs = _stored_outputs(run_dir, split, key, len(out["label"])) if key else None
    if outputs is None:
        model = load_run_model(RunDirectory(run_dir).model)
        x = {n: part[n] for n in out["spec"].names}
        if out["task"] == "autoencoder":
            outputs = anomaly_score(model, x)
        else:
            outputs = predict(model, x, batch_size=config.evaluation.batch_size)
        if key and store:
            _store_outputs(run_dir, split, key, outputs)
    return {"outputs": outputs, **out}


def prediction_key(run_dir, config, analysis: Any = None) -> str | None:
    """What a run's stored predictions are valid for: a hash of the model file, the saved
    preprocessing, the ``data`` section, the input files (size and modification time), the
    analysis class' source file and hepnn's version. ``None`` when the model or an input file is missing.
    """
    run = RunDirectory(run_dir)
    if not run.model.is_file():
        return None
    h = hashlib.sha256()
    h.update(run.model.read_bytes())
    h.update(run.preprocessing.read_bytes() if run.preprocessing.is_file() else b"")
    stamps = []
    try:
        for path in input_files(config.data):
            if isinstance(path, str):  # a remote file: by its URL (a file rewritten under it is not seen)
                stamps.append([path])
                continue
            st = os.stat(path)
            stamps.append([str(path), st.st_size, st.st_mtime_ns])
    except OSError:  # a missing input file: nothing to reuse (reading the data says what is wrong)
        return None
    source = None
    if analysis is not None:
        try:
            source = inspect.getsourcefile(type(analysis))
        except TypeError:  # a class defined in the interpreter
            source = None
    if source and os.path.isfile(source):
        st = os.stat(source)
        source_stamp = [type(analysis).__qualname__, source, st.st_size, st.st_mtime_ns]
    else:
        source_stamp = [type(analysis).__qualname__ if analysis is not None else None]
    h.update(json.dumps([repr(to_dict(config.data)), stamps, source_stamp, __version__]).encode())
    return h.hexdigest()


def _stored_outputs(run_dir, split: str, key: str, n: int) -> np.ndarray | None:
    path = RunDirectory(run_dir).predictions / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key or len(f["outputs"]) != n:
                return None
            return np.asarray(f["outputs"])
    except (OSError, KeyError, ValueError):
        return None


def _store_outputs(run_dir, split: str, key: str, outputs: np.ndarray) -> None:
    folder = RunDirectory(run_dir).predictions
    folder.mkdir(exist_ok=True)
    with atomic_path(folder / f"{split}.npz", suffix=".part.npz") as tmp:
        np.savez(tmp, outputs=np.asarray(outputs), key=np.asarray(key))


def evaluate_run(run_dir, data_config=None, analysis=None, data=None, cache: dict | None = None,
                 keep_predictions: bool = False) -> dict:
    """Compute test-split metrics of a run and write ``RUN_DIR/metrics.json``.

    For a k-fold run: the metrics of the out-of-fold scores of every jet, with the
    spread over folds (see :mod:`hepnn.training.kfold`). With a ``cache`` dict, runs
    with the same data and saved preprocessing read the files once (:func:`load_run_data`).
    ``keep_predictions`` (the ``evaluate`` step of ``hepnn run``) stores the outputs on the
    test and training splits in ``RUN_DIR/predictions/`` for the report (when the data are
    the run's own: no ``data`` or ``data_config`` given).
    """
    if is_kfold_run(run_dir):
        return evaluate_folds(run_dir, data=data, analysis=analysis, data_config=data_config)

    key = None
    if keep_predictions and data is None and data_config is None:
        key = prediction_key(run_dir, load_config(RunDirectory(run_dir).config), analysis)
    pred = predict_split(run_dir, "test", data_config=data_config, analysis=analysis, data=data, cache=cache,
                         key=key)
    if key:
        predict_split(run_dir, "train", analysis=analysis, cache=cache, key=key)
    return _write_run_metrics(run_dir, pred, data_config)


def _write_run_metrics(run_dir, pred: Mapping, data_config=None) -> dict:
    """The metrics of one run's test-split prediction (:func:`predict_split`), written to its
    ``metrics.json`` (with ``data_config``: beside it, named after the other data)."""
    config = pred["config"]
    _check_two_classes(run_dir, pred, config.evaluation, data_config)
    metrics = compute_metrics(
        pred["outputs"], pred["label"], pred["task"], pred["classes"], config.evaluation.working_points,
        weights=evaluation_weights(config, pred), background=config.evaluation.background,
        signal=config.evaluation.signal,
    )
    if config.evaluation.weighted:
        metrics["weighted"] = True
    metrics.update(run_sculpting(config, pred))  # rejection vs 1/JSD of the mass at 50% signal efficiency
    target = RunDirectory(run_dir).metrics if data_config is None else other_metrics_path(run_dir, data_config)
    write_metrics(target, metrics)
    return metrics


def evaluation_weights(config: Any, pred: Mapping) -> np.ndarray | None:
    """The jets' weights of a split (:func:`split_data`) when ``evaluation.weighted``, else None."""
    if not config.evaluation.weighted:
        return None
    weight = pred.get("weight")
    return np.ones(len(pred["label"])) if weight is None else np.asarray(weight, dtype=np.float64)


def _check_two_classes(run_dir, pred: Mapping, evaluation: Any, data_config: Any) -> None:
    """Binary and anomaly metrics need signal and background jets in the test split."""
    task, classes = pred["task"], list(pred["classes"])
    if task not in ("binary", "autoencoder"):
        return
    labels = np.asarray(pred["label"])
    if task == "binary":
        signal = class_index(classes, evaluation.signal, "evaluation.signal", 1)
        is_signal, what = labels == signal, f"signal ({classes[signal]})"
    else:
        background = class_index(classes, evaluation.background, "evaluation.background", 0)
        is_signal, what = labels != background, "anomalous (not " + classes[background] + ")"
    if is_signal.any() and not is_signal.all():
        return
    found = ", ".join(f"{np.count_nonzero(labels == i)} {c}" for i, c in enumerate(classes)) or "none"
    where = f"the test split of {run_dir}" if data_config is None else f"the test split of --data {data_config}"
    msg = (f"{where} has {len(labels)} jets ({found}); its metrics need both {what} and other jets: "
           "give the test split more jets (data.split.test or more input files)")
    raise InputDataError(msg)


def evaluate_folds(run_dir, data: Mapping[str, np.ndarray] | None = None, analysis: Any = None,
                   data_config=None) -> dict:
    """Out-of-fold metrics of a k-fold run and their spread; writes ``RUN_DIR/metrics.json``."""
    run = RunDirectory(run_dir)
    config = load_config(run.config)
    if data is None:
        source = config
        if data_config is not None:  # other data, with the run's saved preprocessing (not refitted on them)
            other = load_config(data_config).data
            _check_other_data(config.data, other, load_spec(run.path, config), data_config)
            source = dataclasses.replace(config, data=other)
        data = load_run_data(run_dir, source, analysis)
    per_fold, outputs, labels, weights, task, classes = [], [], [], [], None, None
    for path, part in fold_parts(run_dir, data):
        # other data: the folds' metrics go beside their own (RUN/folds/<k>/metrics_<stem>.json)
        pred = predict_split(path, "test", data_config=data_config, data=part)  # once per fold model
        per_fold.append(_write_run_metrics(path, pred, data_config))
        outputs.append(np.asarray(pred["outputs"]))
        labels.append(np.asarray(pred["label"]))
        weights.append(evaluation_weights(config, pred))
        task, classes = pred["task"], pred["classes"]
    metrics = compute_metrics(
        np.concatenate(outputs), np.concatenate(labels), task, classes, config.evaluation.working_points,
        weights=None if weights[0] is None else np.concatenate(weights),
        background=config.evaluation.background, signal=config.evaluation.signal,
    )
    if config.evaluation.weighted:
        metrics["weighted"] = True
    metrics["scored_out_of_fold"] = True
    metrics["folds"] = {"n_folds": len(per_fold), **summarise(per_fold)}
    write_json(run.metrics if data_config is None else other_metrics_path(run_dir, data_config), metrics)
    return metrics
