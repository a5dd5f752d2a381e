"""The trainer: builds the model from the config, trains it resumably, writes the run directory.

A run reads as prepare, build or restore, callbacks, fit, save (:meth:`Trainer.fit`).
The training policy (learning rate, early stopping, plateau, best weights, checkpoints,
history, input-wait warning, finite-loss guard) is one Keras callback per policy in
:mod:`hepnn.training.callbacks`, and in memory ``model.fit`` is called once per run.
Epoch ``e`` always trains on the permutation drawn from ``(seed, e)``, so an interrupted
run that resumes from its last checkpoint sees exactly the batches an uninterrupted one
would: with ``training.deterministic: true`` both end with identical weights. Early
stopping and reduce-on-plateau state live in the checkpoint too.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .._faults import fault as _fault
from .._memory import tensor_allocator
from .._optional import require_keras
from ..config import Config, load_config, save_config
from ..exceptions import ConfigError, HepnnError, InputDataError, OutputDirError, PluginError, suggest
from ..io import fit_preprocessing, iterate, load
from ..io.stream import READER_WAIT
from ..models import MODELS, load_model
from ..models.heads import default_loss, default_metrics
from ..models.registry import context_options
from ..outdir import claim
from ..preprocessing import Preprocessor
from ..runs.spec import RunSpec, check_evaluation_classes, class_index, infer_task, model_inputs
from . import callbacks as cb
from . import decorrelate
from .arrays import check_training_arrays
from .callbacks import InputBoundWarning, RunState
from .checkpoint import SUFFIX, restore_variables, save_variables
from .distribute import is_chief, is_multi_worker, select_strategy, set_mixed_precision, worker_index
from .distributed_loop import DistributedLoop
from .feeds import InMemoryFeed, StreamingFeed
from .kfold import KFoldTrainer
from .optimizers import build_optimizer
from .rundir import RunDirectory, config_differences, provenance, read_json, write_json
from .splits import SPLITS, subset
from .tracking import start_tracking

__all__ = ["Trainer", "SPLITS", "subset", "infer_task", "model_inputs", "InputBoundWarning"]

logger = logging.getLogger("hepnn.training")

#: the model file of a checkpoint: the variables as arrays (:mod:`hepnn.training.checkpoint`);
#: ``".keras"`` writes whole Keras models, as hepnn did before (slower; kept for the tests of old runs)
CHECKPOINT_SUFFIX = SUFFIX
#: the weights of the best epoch so far (``early_stopping.restore_best_weights``) as an hepnn before
#: ``best-NNNNNN.weights.npz`` (named in ``state.json``) wrote them: still restored when a run resumes
BEST_WEIGHTS = "best.weights.npz"
#: the config keys an interrupted run may resume with changed (to train for more epochs, or fewer);
#: any other difference from the run's config.yaml is refused
RESUMABLE_CHANGES = ("training.epochs",)

def _dropped_labels(data: Any) -> dict | None:
    """Jets dropped per label value not in data.label.classes (JSON keys), from the read's summary
    (None when not counted: streaming runs log the count of the training split instead)."""
    dropped = (getattr(data, "summary", None) or {}).get("dropped_labels")
    return None if dropped is None else {str(k): int(v) for k, v in dropped.items()}


def _set_op_determinism(on: bool) -> None:
    """TensorFlow's op determinism, set for every run: the switch is global, and a previous run in this
    process may have turned it on (on a GPU, an op without a deterministic kernel then fails)."""
    # lazy: TensorFlow only once a run starts (the module is imported by the light CLI layers)
    import tensorflow as tf

    if on:
        tf.config.experimental.enable_op_determinism()
        return
    # TensorFlow has no public switch back; its framework module has one (TF 2.9+)
    from tensorflow.python.framework import config as tf_config

    if getattr(tf_config, "is_op_determinism_enabled", lambda: False)():
        tf_config.disable_op_determinism()


def analysis_record(analysis: Any) -> dict | None:
    """``provenance.json`` ``analysis``: the plugin a run was trained with (:meth:`hepnn.Analysis.record`:
    name, class, where it is found again, the data hooks it overrides), ``None`` without one."""
    if analysis is None:
        return None
    record = getattr(analysis, "record", None)
    if callable(record):
        return dict(record())
    kind = type(analysis)
    return {"name": getattr(analysis, "name", None) or kind.__name__, "class": f"{kind.__module__}.{kind.__qualname__}",
            "target": getattr(analysis, "target", None),
            "data_hooks": [h for h in ("select", "labels") if callable(getattr(analysis, h, None))]}


def sample_weights(config: Config, data: Mapping[str, np.ndarray], classes: list[str],
                   split: str | None = None) -> np.ndarray:
    """Per-jet weights: input weights x class weights x kinematic reweighting (``split``: named in errors)."""
    labels = np.asarray(data["label"])
    weights = np.asarray(data.get("weight", np.ones(len(labels))), dtype=np.float64).copy()
    if "weight" in data:
        _check_input_weights(config, weights, labels, classes, split)
    cw = config.training.class_weight
    if cw == "balanced":
        totals = np.array([weights[labels == i].sum() for i in range(len(classes))])
        # each class present gets an equal share of the total (a class without jets, e.g. one an
        # autoencoder does not train on, takes no share: the weights keep their sum)
        n_present = max(int(np.count_nonzero(totals > 0)), 1)
        scale = np.where(totals > 0, weights.sum() / (n_present * np.maximum(totals, 1e-12)), 0.0)
        weights *= scale[labels]
    elif isinstance(cw, dict):
        for name, value in cw.items():
            if name not in classes:
                msg = f"training.class_weight.{name}: unknown class{suggest(name, classes)}; classes are {', '.join(classes)}"
                raise ConfigError(msg)
            weights[labels == classes.index(name)] *= value
    rw = config.training.reweight
    if rw is not None:
        key = f"spec_{rw.variable}"
        if key not in data:
            msg = f"training.reweight.variable: {rw.variable!r} must be listed in data.spectators to reweight on it"
            raise ConfigError(msg)
        # the classes evaluation.signal and evaluation.background name (defaults: the last and the first)
        signal = class_index(classes, config.evaluation.signal, "evaluation.signal", len(classes) - 1)
        background = class_index(classes, config.evaluation.background, "evaluation.background",
                                 1 if signal == 0 else 0)
        try:
            weights *= reweight_factors(np.asarray(data[key]), labels, weights, rw.bins, rw.target,
                                        background=background, signal=signal, name=rw.variable, class_names=classes)
        except ValueError as err:
            where = "training.reweight" if split is None else f"training.reweight, {split} split"
            raise InputDataError(f"{where}: {err} (training.reweight.bins is {rw.bins})") from err
    return weights.astype(np.float32)


def _check_input_weights(config: Config, weights: np.ndarray, labels: np.ndarray, classes: list[str],
                         split: str | None = None) -> None:
    """Weights a network cannot learn from (every weight of a class 0, NaN) are an error, not a loss of 0."""
    # a class can sum to <= 0 in a small validation split only
    where = _weights_source(config, None if split is None else f"{split} split")
    bad = ~np.isfinite(weights)
    if bad.any():
        msg = f"{where}: {int(bad.sum())} of {len(weights)} jets have a NaN or infinite weight; fix or drop them"
        raise InputDataError(msg)
    counts = np.array([int((labels == index).sum()) for index in range(len(classes))])
    totals = np.array([weights[labels == index].sum() for index in range(len(classes))])
    _check_class_totals(where, counts, totals, classes)


def _weights_source(config: Config, split: str | None) -> str:
    """Where the training weights come from, for error messages."""
    where = f"data.weight ({config.data.weight!r})" if config.data.weight else "the data's 'weight' array"
    return where if split is None else f"{where}, {split}"


def _check_class_totals(where: str, counts: np.ndarray, totals: np.ndarray, classes: list[str]) -> None:
    """Each class present must carry weight summing above 0, or the network cannot learn from it."""
    for index, name in enumerate(classes):
        if counts[index] and not totals[index] > 0:
            msg = (f"{where}: the weights of the {int(counts[index])} {name!r} jets sum to {totals[index]:g}, so the "
                   "network cannot learn from them; check the weight branch (or leave data.weight unset)")
            raise InputDataError(msg)


def _check_two_classes(present, classes: list[str], how: str = "") -> None:
    """A tagger needs jets of two classes at least in its training split."""
    if len(present) < 2:
        names = [classes[int(k)] if 0 <= int(k) < len(classes) else str(k) for k in present]
        msg = (f"the training split{how} holds jets of {len(present)} class(es) only ({', '.join(names) or 'none'}) "
               f"of {', '.join(classes)}; a tagger needs jets of two classes at least: check the labels "
               "(data.files[].label, data.label) and the cuts")
        raise InputDataError(msg)


def reweight_factors(values, labels, weights, bins: int, target: str = "signal", *, background: int = 0,
                     signal: int | None = None, name: str = "values", class_names: list[str] | None = None) -> np.ndarray:
    """Factors that make the spectrum of ``values`` of the ``background`` class (label 0) match
    that of the ``signal`` class (default: the largest label), or a flat one.

    Other jets keep factor 1. Returns ones where a bin has no background; the target jets in such
    bins cannot be matched and are left out of the target spectrum (a warning gives their share),
    so the background keeps its total weight (and a ``balanced`` class weight its balance). Signed (NLO) weights
    are summed as they are; a bin whose background (or signal) jets carry weight that sums to
    <= 0 has no spectrum to match and no factor: ValueError naming the bin (wider bins help).

    Examples
    --------
    >>> v = np.array([1.0, 1.0, 2.0, 1.0, 2.0, 2.0]); y = np.array([0, 0, 0, 1, 1, 1])
    >>> reweight_factors(v, y, np.ones(6), bins=2).round(2).tolist()  # background 2:1, signal 1:2
    [0.5, 0.5, 2.0, 1.0, 1.0, 1.0]
    """
    edges = np.histogram_bin_edges(values, bins=bins)
    idx = np.clip(np.digitize(values, edges[1:-1]), 0, bins - 1)
    bkg = labels == background
    h_bkg = _spectrum(idx, weights, bkg, edges, name, _class_name(class_names, background))
    if target == "flat":
        h_target = np.where(h_bkg > 0, 1.0, 0.0)
    else:
        signal = np.max(labels) if signal is None else signal
        h_target = _spectrum(idx, weights, labels == signal, edges, name, _class_name(class_names, signal))
        unmatched = float(h_target[h_bkg <= 0].sum()) / max(float(h_target.sum()), 1e-300)
        if unmatched > 0:
            logger.warning("training.reweight: %.1f%% of the weight of the %s jets lies in %s bins without %s jets; "
                           "it is left out of the target spectrum (fewer, wider bins keep it)", 100 * unmatched,
                           _class_name(class_names, signal), name, _class_name(class_names, background))
        h_target = np.where(h_bkg > 0, h_target, 0.0)
    h_bkg_n = h_bkg / max(h_bkg.sum(), 1e-12)
    h_target_n = h_target / max(h_target.sum(), 1e-12)
    ratio = np.where(h_bkg_n > 0, h_target_n / np.maximum(h_bkg_n, 1e-300), 1.0)
    factors = np.ones(len(values))
    factors[bkg] = ratio[idx[bkg]]
    return factors


def _class_name(class_names: list[str] | None, label: int) -> str:
    return f"{class_names[label]!r}" if class_names is not None else f"label {label}"


def _spectrum(idx: np.ndarray, weights: np.ndarray, chosen: np.ndarray, edges: np.ndarray, name: str,
              what: str) -> np.ndarray:
    """The weighted histogram of one class; a bin whose jets carry weight summing to <= 0 (negative
    NLO weights outweighing the positive ones, or cancelling to rounding) is refused."""
    bins = len(edges) - 1
    h = np.bincount(idx[chosen], weights=weights[chosen], minlength=bins)
    gross = np.bincount(idx[chosen], weights=np.abs(weights[chosen]), minlength=bins)
    bad = np.flatnonzero((gross > 0) & (h <= 1e-9 * gross))
    if bad.size:
        b = int(bad[0])
        n = int(np.count_nonzero(chosen & (idx == b)))
        close = "]" if b == bins - 1 else ")"
        msg = (f"{name} bin [{edges[b]:.6g}, {edges[b + 1]:.6g}{close}: the weights of its {n} {what} jets sum to "
               f"{h[b]:.6g} ({bad.size} such bin(s)), so their spectrum there and the reweighting factor are "
               "undefined; use fewer, wider bins")
        raise ValueError(msg)
    return h


def _one_class_message(data_config: Any, classes: list[str]) -> str:
    """Why a classifier cannot be trained on these data, and what to change."""
    if data_config.label is not None:
        ((name, value),) = data_config.label.classes.items()
        return (f"data.label.classes: one class ({name}: {value}); a tagger needs at least two: add the other "
                f"class(es) with their branch values, e.g. {{other: <value>, {name}: {value}}}")
    labels = sorted({g.label for g in data_config.files if g.label is not None})
    if len(labels) == 1:
        return (f"data.files: every file group has label {labels[0]}, so the jets are of one class "
                f"({classes[0]!r}); a tagger needs at least two: label the background files 0 and the signal files 1")
    return f"the data hold one class ({', '.join(classes) or 'none'}); a tagger needs at least two classes"


class Trainer:
    """Train the model a config describes and write a run directory.

    Parameters
    ----------
    config : Config, path or mapping
    analysis : hepnn.Analysis, optional
        Its ``build_model`` hook may replace the registry builder.
    log : callable
        Where progress lines go (default: ``print``).

    Attributes
    ----------
    model_ : keras.Model
        The trained model (after :meth:`fit`).
    history_ : list of dict
        One row per epoch.

    Examples
    --------
    >>> trainer = Trainer({"model": {"name": "dense"}, "training": {"epochs": 2}})  # doctest: +SKIP
    >>> trainer.fit("runs/example", data=hepnn.io.load(config))  # doctest: +SKIP
    """

    def __init__(self, config: Any, analysis: Any = None, log: Callable[[str], None] = print):
        config = config if isinstance(config, Config) else load_config(config)
        if config.data.directory is None:  # pin relative paths, so the saved config reloads the same data
            import dataclasses

            config = dataclasses.replace(config, data=dataclasses.replace(config.data, directory=str(Path.cwd())))
        self.config = config
        self.analysis = analysis
        self.log = log

    # --- model ----------------------------------------------------------------------

    def build_model(self, input_shapes: Mapping[str, tuple], n_outputs: int, task: str, mask_value: float):
        if self.analysis is not None:
            plugin = f"analysis plugin {type(self.analysis).__name__}: its build_model(config, input_shapes, n_outputs) hook"
            try:
                model = self.analysis.build_model(self.config, input_shapes, n_outputs)
            except HepnnError:
                raise
            except Exception as err:
                raise PluginError(f"{plugin} raised {type(err).__name__}: {err}") from err
            if model is not None:
                if not isinstance(model, require_keras().Model):
                    raise PluginError(f"{plugin} returned {type(model).__name__}, not a keras.Model (or None)")
                return model
        builder = MODELS.get(self.config.model.name)
        return builder(
            dict(input_shapes), n_outputs=n_outputs, task=task, mask_value=mask_value,
            **context_options(builder, self.config, list(input_shapes)), **self.config.model.params
        )

    def compile(self, model, task: str, n_outputs: int) -> None:
        loss = default_loss(task, n_outputs, loss=self.config.training.loss)
        model.compile(
            optimizer=build_optimizer(self.config.training.optimizer),
            loss=loss,
            metrics=default_metrics(task),
            weighted_metrics=[],
        )
        # Keras' TensorFlow trainer would build the optimizer inside the first traced train step;
        # its new variables then make TensorFlow trace that step a second time (ParticleNet: seconds)
        if model.built:
            model.optimizer.build(model.trainable_variables)

    # --- data -----------------------------------------------------------------------

    def _arrays(self, data: Mapping, split: str, names: list[str], task: str, classes: list[str]):
        part = subset(data, split)
        train_classes = self.config.training.train_classes
        if train_classes:
            for i, name in enumerate(train_classes):
                if name not in classes:
                    msg = (f"training.train_classes[{i}]: unknown class {name!r}{suggest(name, classes)}; "
                           f"the classes are {', '.join(classes)}")
                    raise ConfigError(msg)
            keep = np.isin(part["label"], [classes.index(c) for c in train_classes])
            part = subset(part, keep)
        x = {name: np.asarray(part[name], dtype=np.float32) for name in names}
        if task == "autoencoder":
            y = x[names[0]]
        else:
            y = np.asarray(part["label"], dtype=np.int32)
        w = sample_weights(self.config, part, classes, split=split)
        if task == "autoencoder" and y.ndim > 2:
            # the reconstruction loss is per pixel / per slot: weights must broadcast over those axes
            w = w.reshape((-1,) + (1,) * (y.ndim - 2))
        return x, y, w

    # --- training -------------------------------------------------------------------

    def fit(self, out: str | os.PathLike, data: Mapping | None = None,
            epoch_callback: Callable[[int, dict], bool] | None = None, force: bool = False) -> Trainer:
        """Train (or resume) into run directory ``out`` and return ``self``.

        Parameters
        ----------
        out : path
            The run directory; rerunning with the same directory resumes. It is claimed
            for hepnn (see :mod:`hepnn.outdir`) and locked while training runs.
        data : JetData or dict of arrays, optional
            Loaded data (default: ``hepnn.io.load(config)``).
        epoch_callback : callable, optional
            Called after each epoch as ``epoch_callback(epoch, row)`` (1-based epoch, the
            history row); returning True stops training (used for pruning by ``hepnn tune``).
            With ``training.folds`` it is called for every fold's epochs, the fold in
            ``row["fold"]``, and True also skips the later folds (:func:`~hepnn.training.kfold.fit_folds`).
        force : bool
            Write into an existing directory that holds other files (``--force``).

        Raises
        ------
        OutputDirError
            ``out`` holds files hepnn did not write, another command is writing into it, or
            it is a finished run of a different config.
        TrainingError
            The loss became NaN or infinite.
        """
        tensor_allocator()  # TensorFlow's per-step temporaries reuse memory instead of faulting it in
        if is_multi_worker() and not is_chief():  # the chief owns and locks the directory
            return self._fit(out, data, epoch_callback)
        with claim(out, "run", force=force) as path:
            for tmp in path.glob(".*.part*"):  # temporary files of an atomic write that was killed
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
            return self._fit(out, data, epoch_callback)

    def _check_finished(self, run: RunDirectory) -> bool:
        """True when ``run`` is a finished run; an error when it was trained with another config.

        An interrupted run (one with a checkpoint to resume from) is checked too: it resumes only
        with its own config, but for the keys in :data:`RESUMABLE_CHANGES`.
        """
        finished = run.is_trained() or (run.path / "folds.json").is_file()
        # a k-fold run's folds are runs of their own; the top folder is interrupted once any fold began
        interrupted = not finished and ((run.checkpoints / "state.json").is_file() or (run.path / "folds").is_dir())
        if not (finished or interrupted) or not run.config.is_file():
            return finished
        try:
            saved = load_config(run.config)
        except Exception as err:  # noqa: BLE001 - an unreadable saved config is a difference too
            saved, unreadable = None, str(err)
        diffs = config_differences(saved, self.config) if saved is not None else [f"(unreadable: {unreadable})"]
        if interrupted:
            diffs = [d for d in diffs if d.partition(": ")[0] not in RESUMABLE_CHANGES]
        if diffs:
            shown = "; ".join(diffs[:10]) + (f"; and {len(diffs) - 10} more" if len(diffs) > 10 else "")
            if finished:
                msg = (f"{run.path} is a finished run trained with a different config ({run.config}); "
                       f"differences (saved -> new): {shown}. Its config.yaml is kept. To train this config, "
                       "start a new run with another --out")
            else:
                msg = (f"{run.path} is an interrupted run trained with a different config ({run.config}); "
                       f"differences (saved -> new): {shown}. Its config.yaml and checkpoints are kept. To resume "
                       f"it, rerun with the config it was trained with ({', '.join(RESUMABLE_CHANGES)} may change); "
                       "to train this config, start a new run with another --out")
            raise OutputDirError(msg)
        return finished

    def _fit(self, out, data, epoch_callback) -> Trainer:
        """Prepare, build or restore, callbacks, fit, save."""
        source, run = self._directories(out)
        finished = self._check_finished(source)
        if self.config.training.folds:
            return KFoldTrainer(self).fit_into(out, data, epoch_callback)
        data, spec = self._prepare_data(data)
        if finished and source.is_trained():
            self.log(f"{source.model} exists: training already finished, nothing to do")
            self.model_, self.history_ = load_model(source.model), run.read_history()
            return self
        save_config(self.config, run.config)
        prep = self._preprocessing(run, data)
        self._set_seeds_and_precision()
        feed = self._feed(run, data, spec, prep)
        spec = RunSpec.from_config(self.config, data, classes=spec.classes, input_shapes=feed.input_shapes,
                                   preprocessing=run.preprocessing.name if run.preprocessing.is_file() else None)
        spec.save(run.path)
        self.spec_ = spec
        model, state, strategy = self._model_and_state(source, run, feed, spec)
        if state is None:
            state = self._start(run, data, feed, spec, strategy)
        session = RunState(state=state, history=list(state["history"]))
        tracker = start_tracking(self.config, run.path) if run is source else None
        callbacks = self._callbacks(run, model, session, feed, epoch_callback, tracker)
        try:
            self._train(model, feed, strategy, spec, session, callbacks)
        finally:
            for callback in callbacks["list"]:
                if isinstance(callback, cb.TensorBoardLog):
                    callback.close()
        return self._finish(source, run, model, session, feed, tracker)

    def _directories(self, out) -> tuple[RunDirectory, RunDirectory]:
        """The run directory (the chief's, where checkpoints are read from) and the one this process writes."""
        source = RunDirectory(out).create()
        run = source
        if is_multi_worker() and not is_chief():  # other workers write to a scratch folder
            run = RunDirectory(source.path / f".worker-{worker_index()}").create()
        self.run_ = run
        return source, run

    def _prepare_data(self, data):
        """The loaded data (None when streaming) and the run spec without shapes."""
        cfg = self.config
        names = model_inputs(cfg)
        if data is None and not cfg.training.streaming:
            data = load(cfg, analysis=self.analysis)
        if data is not None:
            for name in names:
                if name not in data:
                    msg = f"model.inputs: input {name!r} is not in the loaded data (keys: {', '.join(sorted(data))})"
                    raise ConfigError(msg)
        spec = RunSpec.from_config(cfg, data)
        if spec.task != "autoencoder" and len(spec.classes) < 2:
            raise ConfigError(_one_class_message(cfg.data, list(spec.classes)))
        if data is not None:
            check_training_arrays(data, names, None if spec.task == "autoencoder" else spec.classes,
                                  on_nan=cfg.data.on_nan)
        if spec.task != "autoencoder" and data is not None:
            _check_two_classes(np.unique(np.asarray(subset(data, "train")["label"])), list(spec.classes))
        check_evaluation_classes(cfg, spec.classes)
        self.task_, self.classes_ = spec.task, list(spec.classes)
        return data, spec

    def _preprocessing(self, run: RunDirectory, data):
        """The fitted preprocessing (saved into the run): the data's, or fitted on the stream."""
        if data is None:
            prep = Preprocessor.load(run.preprocessing) if run.preprocessing.is_file() else self._fit_on_stream()
        else:
            prep = getattr(data, "preprocessing", None)
        if prep is not None and hasattr(prep, "save"):
            prep.save(run.preprocessing)
        return prep

    def _fit_on_stream(self) -> Preprocessor:
        """The preprocessing fitted on the streamed training split; the same pass checks what the
        in-memory path checks on its arrays: jets of two classes at least, and each class's
        weights summing above 0 (a class of negative NLO weights would train the network away from it)."""
        classes = list(self.classes_)
        counts, totals = np.zeros(len(classes), np.int64), np.zeros(len(classes))

        def watched():
            nonlocal counts, totals
            for chunk in iterate(self.config, self.analysis, split="train"):
                labels = np.asarray(chunk["label"], dtype=np.int64)
                counts = counts + np.bincount(labels, minlength=len(classes))[:len(classes)]
                totals = totals + np.bincount(labels, weights=np.asarray(chunk["weight"], dtype=np.float64),
                                              minlength=len(classes))[:len(classes)]
                yield chunk

        prep = fit_preprocessing(self.config, self.analysis, chunks=watched())
        if self.task_ != "autoencoder":
            _check_two_classes(np.flatnonzero(counts), classes, " (streamed)")
            _check_class_totals(_weights_source(self.config, "train split, streamed"), counts, totals, classes)
        return prep

    def _set_seeds_and_precision(self) -> None:
        tcfg = self.config.training
        require_keras().utils.set_random_seed(tcfg.seed)
        _set_op_determinism(bool(tcfg.deterministic))
        # set for every run: the policy is global, and a previous run in this process may have changed it
        if set_mixed_precision(tcfg.mixed_precision) != "mixed_float16" and tcfg.mixed_precision:
            self.log("training.mixed_precision: no GPU visible, training in float32")

    def _feed(self, run: RunDirectory, data, spec: RunSpec, prep):
        tcfg = self.config.training
        names, classes = list(spec.names), list(spec.classes)
        if data is None:
            feed = StreamingFeed(self.config, names, classes, spec.task, prep, self.analysis,
                                 cache_dir=run.path / "stream_cache" if tcfg.stream_cache else None)
        else:
            feed = InMemoryFeed(
                *self._arrays(data, "train", names, spec.task, classes),
                *self._arrays(data, "val", names, spec.task, classes),
                batch_size=tcfg.batch_size, seed=tcfg.seed, augment=tcfg.augment,
            )
        if tcfg.decorrelate is not None:  # the decorrelation variable rides along with each batch
            decorrelate.check(self.config, spec.task, feed.streaming)
            decorrelate.attach(feed, self.config, data)
        return feed

    def _model_and_state(self, source: RunDirectory, run: RunDirectory, feed, spec: RunSpec):
        """The model restored from the last checkpoint with its state, or a new one (state None)."""
        strategy = select_strategy(self.config.training.distribute)
        state = self._load_state(source, clean=run is source)
        if state is not None and state.get("step") and not feed.streaming and state["step"] >= feed.steps_per_epoch():
            msg = (f"{source.checkpoints / 'state.json'}: a step checkpoint taken at the last step of epoch "
                   f"{state['epoch'] + 1} by an older hepnn cannot resume exactly (that epoch's history row is "
                   f"missing); remove {source.checkpoints} to restart the run from epoch 1, or train into another --out")
            raise InputDataError(msg)
        model_path = source.checkpoints / state.get("model", "last.keras") if state is not None else None
        with strategy.scope():
            if model_path is not None and model_path.suffix == ".keras":  # written by an earlier hepnn: the whole model
                model = load_model(model_path)
            else:  # a new run, or an array checkpoint: its variables go into the model the config builds
                model = self.build_model(feed.input_shapes, spec.n_outputs, spec.task, spec.mask_value)
                self.compile(model, spec.task, spec.n_outputs)
            if self.config.training.decorrelate is not None:  # train a wrapper; model.keras is the classifier
                model = decorrelate.prepare(model, self.config, feed,
                                            lambda m: self.compile(m, spec.task, spec.n_outputs))
            if model_path is not None:
                if model_path.suffix != ".keras":
                    restore_variables(model_path, model)
                _restore_seed_states(model, state.get("seed_states", {}))
                within = f", step {state['step']}" if state.get("step") else ""
                self.log(f"resuming from epoch {state['epoch']}{within} ({model_path})")
        return model, state, strategy

    def _start(self, run: RunDirectory, data, feed, spec: RunSpec, strategy) -> dict:
        """Provenance of a new run and its initial checkpoint state."""
        cfg, tcfg = self.config, self.config.training
        write_json(run.provenance, provenance(cfg, {"training": tcfg.seed, "split": cfg.data.split.seed},
                                              {"strategy": _strategy_name(strategy), "task": spec.task,
                                               "classes": list(spec.classes), "model_inputs": list(spec.names),
                                               "n_train": feed.n_train, "streaming": feed.streaming,
                                               "dropped_labels": _dropped_labels(data),
                                               "analysis": analysis_record(self.analysis)}))
        return {"epoch": 0, "best": None, "wait": 0, "lr": tcfg.optimizer.learning_rate, "history": []}

    def _callbacks(self, run: RunDirectory, model, session: RunState, feed, epoch_callback, tracker) -> dict:
        """The training policy, one Keras callback per policy, in the order Keras must call them."""
        tcfg = self.config.training
        es, schedule = tcfg.early_stopping, tcfg.schedule
        monitor = es.monitor if es is not None else "val_loss"
        if not feed.has_val:
            monitor = monitor.removeprefix("val_")

        def save(state: dict) -> None:
            self._save_state(run, model, state)

        timing = cb.Timing(session, tcfg.batch_size, _reader_wait if feed.streaming else None,
                           n_train=feed.n_train, steps_per_epoch=feed.steps_per_epoch())
        guard = cb.FiniteLoss(tcfg.optimizer.learning_rate, run.checkpoints)
        steps = cb.StepCheckpoint(session, save, tcfg.checkpoint_every_n_steps, guard, feed.steps_per_epoch())
        # per batch: the finite-loss check comes before the step checkpoint (a NaN model is never saved);
        # per epoch: the history row first, the policies read it, the checkpoint (the commit point) last
        policy = [cb.LearningRate(session, tcfg.optimizer.learning_rate, schedule), timing, guard, steps,
                  *decorrelate.callbacks(model, self.config)]
        if tcfg.verbose:  # one TensorBoard log per run, whatever the number of fit calls
            policy.append(cb.TensorBoardLog(run.tensorboard))
        policy += [cb.EpochHistory(session, timing, tcfg.epochs, self.log, tracker),
                   cb.InputWaitWarning(session, feed.n_train, tcfg.batch_size),
                   cb.BestWeights(session, monitor, es.min_delta if es else 0.0,
                                  run.checkpoints if es and es.restore_best_weights else None,
                                  mode=es.mode if es else "auto")]
        if schedule is not None and schedule.name == "plateau":
            policy.append(cb.PlateauDecay(session, schedule))
        if es is not None:
            policy.append(cb.EarlyStop(session, monitor, es.patience))
        if epoch_callback is not None:
            policy.append(cb.EpochHook(session, epoch_callback))
        policy.append(cb.EpochCheckpoint(session, save, run.write_history, self.log))
        return {"list": policy, "steps": steps, "guard": guard}

    def _train(self, model, feed, strategy, spec: RunSpec, session: RunState, callbacks: dict) -> None:
        """``model.fit`` from the checkpointed epoch to ``training.epochs``.

        In memory on one replica, one ``fit`` covers every epoch (a step checkpoint's partial
        epoch first gets a ``fit`` of its own); streamed and mirrored runs call ``fit`` once per
        epoch (each epoch is a new pass over the files), except that with the stream cache the
        epochs after the first run in one ``fit`` over the cache; multi-worker runs use the
        custom loop.
        """
        tcfg, state = self.config.training, session.state
        first = tcfg.epochs if state.get("stopped_early") else state["epoch"]
        skip = state.pop("step", 0) or 0
        metric_states = state.pop("metric_states", None)
        loop_loss = state.pop("loop_loss", None)  # the custom loop's [loss sum, steps] of the interrupted epoch
        callbacks["steps"].begin(first, skip, metric_states if skip else None)
        callbacks["guard"].begin(first, skip)
        loop = self._custom_loop(model, strategy, spec)
        distributed = {"as_dataset": True} if strategy.num_replicas_in_sync > 1 or loop is not None else {}
        fit = partial(_fit_epochs, model, feed, callbacks["list"], distributed)
        if first >= tcfg.epochs:
            return
        if loop is not None:
            _loop_epochs(loop, model, feed, session, callbacks, first, skip, tcfg.epochs, loop_loss if skip else None)
        elif feed.streaming and getattr(feed, "cached", False) and not distributed:
            # epoch 0 streams the files (and writes the cache); the cached epochs run in one fit
            if first == 0 or skip:  # epoch 0, or the rest of an interrupted epoch
                if fit(first, first + 1, skip) or state.get("stopped_early"):
                    return
                first += 1
            if first < tcfg.epochs:
                fit(first, tcfg.epochs, 0)
        elif feed.streaming or distributed:
            for epoch in range(first, tcfg.epochs):
                if fit(epoch, epoch + 1, skip if epoch == first else 0) or state.get("stopped_early"):
                    break
        elif skip:  # finish the interrupted epoch, then the rest in one fit
            if not fit(first, first + 1, skip) and first + 1 < tcfg.epochs:
                fit(first + 1, tcfg.epochs, 0)
        else:
            fit(first, tcfg.epochs, 0)

    def _custom_loop(self, model, strategy, spec: RunSpec):
        """The custom training loop of multi-worker runs (None otherwise)."""
        import tensorflow as tf

        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return None
        loss_name = default_loss(spec.task, spec.n_outputs, loss=self.config.training.loss)
        # experimental_distribute_dataset splits each batch of training.batch_size among the
        # workers: one step processes training.batch_size jets in all
        return DistributedLoop(model, strategy, loss_name, spec.task, self.config.training.batch_size)

    def _finish(self, source: RunDirectory, run: RunDirectory, model, session: RunState, feed, tracker) -> Trainer:
        """Restore the best weights, save the final model and history, clean up."""
        import shutil

        es = self.config.training.early_stopping
        if es is not None and es.restore_best_weights:
            # the file the last committed checkpoint names; best.weights.npz/.h5: written by an earlier
            # hepnn before this run was resumed (if still the best)
            named = session.state.get("best_weights")
            for best in ([run.checkpoints / named] if named else []) + [run.checkpoints / BEST_WEIGHTS,
                                                                         run.checkpoints / "best.weights.h5"]:
                if best.is_file():
                    if best.suffix == ".h5":
                        model.load_weights(best)
                    else:
                        restore_variables(best, model, optimizer=False)
                    break
        model = decorrelate.classifier_of(model)
        run.save_model(model)
        run.write_history(session.history)
        if tracker is not None:
            tracker.finish()
        if getattr(feed, "cache_dir", None) is not None and feed.cache_dir.is_dir():
            shutil.rmtree(feed.cache_dir, ignore_errors=True)
            self.log(f"removed the stream cache {feed.cache_dir}")
        if run is not source:  # a non-chief worker: its copy is scratch
            shutil.rmtree(run.path, ignore_errors=True)
        self.model_, self.history_ = model, session.history
        self.stopped_early_ = bool(session.state.get("stopped_early"))
        self.log(f"wrote {run.model}")
        return self

    # --- checkpoints ----------------------------------------------------------------

    def _load_state(self, run: RunDirectory, clean: bool = True) -> dict | None:
        """The checkpoint state (``checkpoints/state.json``), or None when there is none.

        ``state.json`` is the commit point of a checkpoint: it names the model file saved
        just before it (``"model": "last-NNNNNN.npz"``), so a kill at any moment leaves a
        consistent pair. Checkpoints from before this format (``last.keras`` beside a
        ``state.json`` without ``"model"``) resume as they did. With ``clean`` (the process
        that writes the run), files of checkpoints that were never committed are removed.
        """
        ckpt = run.checkpoints
        path = ckpt / "state.json"
        if clean and ckpt.is_dir():  # temporary files of a checkpoint write that was killed
            for tmp in ckpt.glob(".*.part*"):
                tmp.unlink(missing_ok=True)
        if not path.is_file():
            return None
        try:
            state = read_json(path)
        except (ValueError, InputDataError) as err:
            msg = (f"{path}: the checkpoint state is unreadable ({err}); remove {ckpt} to restart the run "
                   "from epoch 1, or train into another --out")
            raise InputDataError(msg) from None
        if not isinstance(state, dict) or "epoch" not in state:
            msg = f"{path}: not a hepnn checkpoint state (no 'epoch'); remove {ckpt} to restart the run"
            raise InputDataError(msg)
        name = state.get("model")
        if name is None:  # the format before one atomic checkpoint
            return state if (ckpt / "last.keras").is_file() else None
        if not (ckpt / name).is_file():
            msg = f"{path}: names the checkpoint model {name!r}, which is missing; remove {ckpt} to restart the run"
            raise InputDataError(msg)
        for other in _checkpoint_files(ckpt) if clean else ():  # models of checkpoints never committed
            if other.name != name:
                other.unlink(missing_ok=True)
        if clean:
            _prune_best_weights(ckpt, state)
        return state

    def _save_state(self, run: RunDirectory, model, state: dict) -> None:
        """Save one checkpoint: the model under a new name, then ``state.json`` naming it (the commit)."""
        state["seed_states"] = _seed_states(model)
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        numbers = [int(n) for p in _checkpoint_files(run.checkpoints)
                   if (n := p.name.split(".")[0].partition("-")[2]).isdigit()]
        name = f"last-{max(numbers, default=0) + 1:06d}{CHECKPOINT_SUFFIX}"
        if CHECKPOINT_SUFFIX == ".keras":
            run.save_model(model, run.checkpoints / name)
        else:
            save_variables(run.checkpoints / name, model)
        state["model"] = name
        _fault("checkpoint", {"epoch": state["epoch"], "step": state.get("step", 0)})
        write_json(run.checkpoints / "state.json", state)
        for other in _checkpoint_files(run.checkpoints):
            if other.name != name:
                other.unlink(missing_ok=True)
        _prune_best_weights(run.checkpoints, state)


def _prune_best_weights(folder: Path, state: Mapping) -> None:
    """Remove the best-weights files the committed ``state`` does not name: an earlier best, or that
    of an epoch killed before its checkpoint (its weights must never be restored). The file of an
    earlier hepnn (``best.weights.npz``) goes once the state names a newer one."""
    named = state.get("best_weights")
    for other in folder.glob("best-*.weights.npz"):
        if other.name != named:
            other.unlink(missing_ok=True)
    if named:
        (folder / BEST_WEIGHTS).unlink(missing_ok=True)


def _checkpoint_files(folder: Path) -> list[Path]:
    """The model files of checkpoints in ``folder``: ``last-NNNNNN.npz`` (``.keras`` from an earlier hepnn)."""
    return [p for p in folder.glob("last*") if p.suffix in (SUFFIX, ".keras")]


def _reader_wait() -> float:
    return READER_WAIT["seconds"]


def _strategy_name(strategy) -> str:
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__


def _seed_variables(model) -> dict:
    """The random-seed state variables of dropout-like layers (Keras does not save them)."""
    found = {}
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []) if layer is not model else [])
        seeds = [v for v in getattr(layer, "variables", []) if "seed_generator_state" in v.path]
        for i, var in enumerate(seeds):
            found[f"{layer.name}/{i}"] = var
    return found


def _seed_states(model) -> dict:
    return {k: np.asarray(v.numpy()).tolist() for k, v in _seed_variables(model).items()}


def _restore_seed_states(model, states: Mapping[str, list]) -> None:
    for key, var in _seed_variables(model).items():
        if key in states:
            var.assign(np.asarray(states[key], dtype=var.dtype))


def _fit_epochs(model, feed, callbacks: list, distributed: dict, first: int, last: int, skip: int) -> bool:
    """One ``model.fit`` over epochs ``first`` to ``last - 1`` (``skip`` steps of the first done);
    returns True when a policy stopped training."""
    if feed.streaming and getattr(feed, "cached", False) and first >= 1 and not distributed:
        args = feed.fit_args(first, skip_steps=skip)  # cached epochs: always with steps_per_epoch
    elif skip or feed.streaming or distributed or last - first == 1:
        args = feed.epoch_args(first, skip_steps=skip, **distributed)
    else:
        args = feed.fit_args(first)
    with warnings.catch_warnings():
        # a streamed pass has no known length: Keras warns when it ends, which is expected
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(**args, epochs=last, initial_epoch=first, callbacks=callbacks, verbose=0)
    return bool(model.stop_training)


def _loop_epochs(loop, model, feed, session: RunState, callbacks: dict, first: int, skip: int, epochs: int,
                 loop_loss: list | None = None) -> None:
    """The custom multi-worker loop, calling the same policy callbacks as ``model.fit`` would
    (``loop_loss``: the ``[loss sum, steps]`` of the ``skip`` steps of epoch ``first`` done before)."""
    keras = require_keras()
    hooks = keras.callbacks.CallbackList(callbacks["list"], model=model)
    model.stop_training = False
    for epoch in range(first, epochs):
        hooks.on_epoch_begin(epoch)
        args = feed.epoch_args(epoch, skip_steps=skip if epoch == first else 0, as_dataset=True)
        logs, session.timer = loop.run_epoch(**args, on_step=callbacks["steps"].on_step,
                                             start=loop_loss if epoch == first else None)
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
