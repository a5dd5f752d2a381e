"""The trainer: builds the model from the config, trains it resumably, writes the run directory.

Each epoch is one ``model.fit`` call on a permutation drawn from ``(seed, epoch)``,
so an interrupted run that resumes from its last checkpoint sees exactly the
batches an uninterrupted one would: with ``training.deterministic: true`` both end
with identical weights. Early stopping and reduce-on-plateau state live in the
checkpoint too.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..config import Config, load_config, save_config
from ..exceptions import ConfigError, InputDataError
from .diagnostics import INPUT_BOUND_SHARE, EpochTimer, make_timing_callback
from .._faults import fault as _fault
from . import decorrelate
from .feeds import InMemoryFeed, StreamingFeed
from .optimizers import build_optimizer, learning_rate_at
from .rundir import RunDirectory, config_differences, provenance, read_json, write_json

__all__ = ["Trainer", "SPLITS", "subset", "infer_task", "model_inputs"]

logger = logging.getLogger("hepnn.training")

SPLITS = {"train": 0, "val": 1, "test": 2}


class InputBoundWarning(RuntimeWarning):
    """Training spends a large share of its time waiting for input batches."""


def subset(data: Mapping[str, np.ndarray], split: str | np.ndarray) -> dict[str, np.ndarray]:
    """Rows of every array in ``data`` for a split name or a boolean mask."""
    if isinstance(split, str):
        if "split" not in data:
            msg = "the data have no 'split' array: load them with hepnn.io.load(config)"
            raise InputDataError(msg)
        mask = np.asarray(data["split"]) == SPLITS[split]
    else:
        mask = np.asarray(split, dtype=bool)
    n = len(mask)
    out = {k: (np.asarray(v)[mask] if np.ndim(v) and len(v) == n else v) for k, v in data.items()}
    like = getattr(data, "_like", None)  # JetData keeps its class and feature names
    return like(out) if like is not None else out


def _dropped_labels(data: Any) -> dict | None:
    """Jets dropped per label value not in data.label.classes (JSON keys), from the read's summary
    (None when not counted: streaming runs log the count of the training split instead)."""
    dropped = (getattr(data, "summary", None) or {}).get("dropped_labels")
    return None if dropped is None else {str(k): int(v) for k, v in dropped.items()}


def model_inputs(config: Config) -> list[str]:
    """Names of the data inputs that feed the model (``model.inputs``, default: all)."""
    names = list(config.model.inputs) if config.model.inputs is not None else list(config.data.inputs)
    if not names:
        msg = "data.inputs: no inputs defined; add e.g. {jet: {kind: flat, variables: [jet_pt, jet_mass]}}"
        raise ConfigError(msg)
    return names


def class_names(config: Config, data: Mapping | None = None) -> list[str]:
    """Class names in index order."""
    names = getattr(data, "class_names", None)
    if names:
        return list(names)
    if config.data.label is not None:
        return list(config.data.label.classes)
    labels = sorted({g.label for g in config.data.files if g.label is not None})
    if data is not None and "label" in data and len(data["label"]):
        labels = sorted(set(labels) | set(np.unique(data["label"]).tolist()))
    n = max(labels) + 1 if labels else 2
    if n == 2:
        return ["background", "signal"]
    return [f"class_{i}" for i in range(n)]


def infer_task(config: Config, n_classes: int) -> str:
    """``autoencoder`` for autoencoders, ``binary`` for two classes, else ``multiclass``."""
    if config.model.name == "autoencoder":
        return "autoencoder"
    return "binary" if n_classes <= 2 else "multiclass"


def _mask_value(config: Config, names: list[str]) -> float:
    values = {
        config.data.inputs[n].pad_value for n in names if getattr(config.data.inputs[n], "kind", "") == "sequence"
    }
    if len(values) > 1:
        msg = f"data.inputs: sequence inputs of one model must share pad_value, received {sorted(values)}"
        raise ConfigError(msg)
    return values.pop() if values else 0.0


def sample_weights(config: Config, data: Mapping[str, np.ndarray], classes: list[str]) -> np.ndarray:
    """Per-jet weights: input weights x class weights x kinematic reweighting."""
    labels = np.asarray(data["label"])
    weights = np.asarray(data.get("weight", np.ones(len(labels))), dtype=np.float64).copy()
    cw = config.training.class_weight
    if cw == "balanced":
        totals = np.array([weights[labels == i].sum() for i in range(len(classes))])
        scale = np.where(totals > 0, weights.sum() / (len(classes) * np.maximum(totals, 1e-12)), 0.0)
        weights *= scale[labels]
    elif isinstance(cw, dict):
        for name, value in cw.items():
            if name not in classes:
                from ..exceptions import suggest

                msg = f"training.class_weight.{name}: unknown class{suggest(name, classes)}; classes are {', '.join(classes)}"
                raise ConfigError(msg)
            weights[labels == classes.index(name)] *= value
    rw = config.training.reweight
    if rw is not None:
        key = f"spec_{rw.variable}"
        if key not in data:
            msg = f"training.reweight.variable: {rw.variable!r} must be listed in data.spectators to reweight on it"
            raise ConfigError(msg)
        weights *= reweight_factors(np.asarray(data[key]), labels, weights, rw.bins, rw.target)
    return weights.astype(np.float32)


def reweight_factors(values, labels, weights, bins: int, target: str = "signal") -> np.ndarray:
    """Factors that make the background (label 0) spectrum of ``values`` match the signal's (or flat).

    Signal jets keep factor 1. Returns ones where a bin has no background.

    Examples
    --------
    >>> v = np.array([1.0, 1.0, 2.0, 1.0, 2.0, 2.0]); y = np.array([0, 0, 0, 1, 1, 1])
    >>> reweight_factors(v, y, np.ones(6), bins=2).round(2).tolist()  # background 2:1, signal 1:2
    [0.5, 0.5, 2.0, 1.0, 1.0, 1.0]
    """
    edges = np.histogram_bin_edges(values, bins=bins)
    idx = np.clip(np.digitize(values, edges[1:-1]), 0, bins - 1)
    bkg = labels == 0
    h_bkg = np.bincount(idx[bkg], weights=weights[bkg], minlength=bins)
    if target == "flat":
        h_target = np.where(h_bkg > 0, 1.0, 0.0)
    else:
        sig = labels == np.max(labels)
        h_target = np.bincount(idx[sig], weights=weights[sig], minlength=bins)
    h_bkg_n = h_bkg / max(h_bkg.sum(), 1e-12)
    h_target_n = h_target / max(h_target.sum(), 1e-12)
    ratio = np.where(h_bkg_n > 0, h_target_n / np.maximum(h_bkg_n, 1e-300), 1.0)
    factors = np.ones(len(values))
    factors[bkg] = ratio[idx[bkg]]
    return factors


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
        from ..models import MODELS
        from ..models.registry import context_options

        if self.analysis is not None:
            model = self.analysis.build_model(self.config, input_shapes, n_outputs)
            if model is not None:
                return model
        builder = MODELS.get(self.config.model.name)
        return builder(
            dict(input_shapes), n_outputs=n_outputs, task=task, mask_value=mask_value,
            **context_options(builder, self.config, list(input_shapes)), **self.config.model.params
        )

    def compile(self, model, task: str, n_outputs: int) -> None:
        from ..models.heads import default_loss, default_metrics

        loss = default_loss(task, n_outputs, loss=self.config.training.loss)
        model.compile(
            optimizer=build_optimizer(self.config.training.optimizer),
            loss=loss,
            metrics=default_metrics(task),
            weighted_metrics=[],
        )

    # --- data -----------------------------------------------------------------------

    def _arrays(self, data: Mapping, split: str, names: list[str], task: str, classes: list[str]):
        part = subset(data, split)
        train_classes = self.config.training.train_classes
        if train_classes:
            for i, name in enumerate(train_classes):
                if name not in classes:
                    from ..exceptions import suggest

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
        w = sample_weights(self.config, part, classes)
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
        from .distribute import is_chief, is_multi_worker

        if is_multi_worker() and not is_chief():  # the chief owns and locks the directory
            return self._fit(out, data, epoch_callback)
        from ..outdir import claim

        with claim(out, "run", force=force) as path:
            for tmp in path.glob(".*.part*"):  # temporary files of an atomic write that was killed
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
            return self._fit(out, data, epoch_callback)

    def _check_finished(self, run: RunDirectory) -> bool:
        """True when ``run`` is a finished run; an error when it was trained with another config."""
        finished = run.is_trained() or (run.path / "folds.json").is_file()
        if not finished or not run.config.is_file():
            return finished
        from ..exceptions import OutputDirError

        try:
            saved = load_config(run.config)
        except Exception as err:  # noqa: BLE001 - an unreadable saved config is a difference too
            saved, unreadable = None, str(err)
        diffs = config_differences(saved, self.config) if saved is not None else [f"(unreadable: {unreadable})"]
        if diffs:
            shown = "; ".join(diffs[:10]) + (f"; and {len(diffs) - 10} more" if len(diffs) > 10 else "")
            msg = (f"{run.path} is a finished run trained with a different config ({run.config}); "
                   f"differences (saved -> new): {shown}. Its config.yaml is kept. To train this config, "
                   "start a new run with another --out")
            raise OutputDirError(msg)
        return True

    def _fit(self, out, data, epoch_callback) -> Trainer:
        from .._optional import require_keras

        keras = require_keras()
        cfg = self.config
        tcfg = cfg.training
        from .distribute import is_chief, is_multi_worker, worker_index

        source = RunDirectory(out).create()  # where checkpoints are read from (the chief's)
        run = source
        if is_multi_worker() and not is_chief():  # other workers write to a scratch folder
            run = RunDirectory(source.path / f".worker-{worker_index()}").create()
        self.run_ = run
        finished = self._check_finished(source)
        if tcfg.folds:
            if data is None:
                from ..io import load

                data = load(cfg, analysis=self.analysis)
            from .kfold import fit_folds

            self.folds_ = fit_folds(self, out, data)
            self.model_ = self.folds_[0].model_
            self.history_ = self.folds_[0].history_
            return self
        names = model_inputs(cfg)
        streaming = tcfg.streaming and data is None
        if data is None and not streaming:
            from ..io import load

            data = load(cfg, analysis=self.analysis)
        if data is not None:
            for name in names:
                if name not in data:
                    msg = f"model.inputs: input {name!r} is not in the loaded data (keys: {', '.join(sorted(data))})"
                    raise ConfigError(msg)
        classes = class_names(cfg, data)
        task = infer_task(cfg, len(classes))
        n_outputs = 1 if task in ("binary", "autoencoder") else len(classes)
        self.task_, self.classes_ = task, classes

        if finished and source.is_trained():
            self.log(f"{source.model} exists: training already finished, nothing to do")
            from ..models import load_model

            self.model_ = load_model(source.model)
            self.history_ = run.read_history()
            return self
        save_config(cfg, run.config)

        if streaming:
            from ..io import fit_preprocessing
            from ..preprocessing import Preprocessor

            prep = Preprocessor.load(run.preprocessing) if run.preprocessing.is_file() else fit_preprocessing(
                cfg, self.analysis
            )
        else:
            prep = getattr(data, "preprocessing", None)
        if prep is not None and hasattr(prep, "save"):
            prep.save(run.preprocessing)

        keras.utils.set_random_seed(tcfg.seed)
        if tcfg.deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        from .distribute import set_mixed_precision

        # set for every run: the policy is global, and a previous run in this process may have changed it
        if set_mixed_precision(tcfg.mixed_precision) != "mixed_float16" and tcfg.mixed_precision:
            self.log("training.mixed_precision: no GPU visible, training in float32")

        if streaming:
            feed = StreamingFeed(cfg, names, classes, task, prep, self.analysis,
                                 cache_dir=run.path / "stream_cache" if tcfg.stream_cache else None)
        else:
            feed = InMemoryFeed(
                *self._arrays(data, "train", names, task, classes),
                *self._arrays(data, "val", names, task, classes),
                batch_size=tcfg.batch_size, seed=tcfg.seed, augment=tcfg.augment,
            )
        if tcfg.decorrelate is not None:  # the decorrelation variable rides along with each batch
            decorrelate.check(cfg, task, feed.streaming)
            decorrelate.attach(feed, cfg, data)
        has_val = feed.has_val
        input_shapes = feed.input_shapes
        n_train = feed.n_train

        from .distribute import select_strategy

        strategy = select_strategy(tcfg.distribute)
        state = self._load_state(source, clean=run is source)
        if state is not None and state.get("step") and not feed.streaming and state["step"] >= feed.steps_per_epoch():
            msg = (f"{source.checkpoints / 'state.json'}: a step checkpoint taken at the last step of epoch "
                   f"{state['epoch'] + 1} by an older hepnn cannot resume exactly (that epoch's history row is "
                   f"missing); remove {source.checkpoints} to restart the run from epoch 1, or train into another --out")
            raise InputDataError(msg)
        with strategy.scope():
            if state is not None:
                from ..models import load_model

                model_path = source.checkpoints / state.get("model", "last.keras")
                model = load_model(model_path)
                _restore_seed_states(model, state.get("seed_states", {}))
                within = f", step {state['step']}" if state.get("step") else ""
                self.log(f"resuming from epoch {state['epoch']}{within} ({model_path})")
            else:
                model = self.build_model(input_shapes, n_outputs, task, _mask_value(cfg, names))
                self.compile(model, task, n_outputs)
            if tcfg.decorrelate is not None:  # train a wrapper (penalty or adversary); model.keras is the classifier
                model = decorrelate.prepare(model, cfg, feed, lambda m: self.compile(m, task, n_outputs))
        if state is None:
            write_json(run.provenance, provenance(cfg, {"training": tcfg.seed, "split": cfg.data.split.seed},
                                                  {"strategy": _strategy_name(strategy), "task": task,
                                                   "classes": classes, "model_inputs": names,
                                                   "n_train": n_train, "streaming": feed.streaming,
                                                   "dropped_labels": _dropped_labels(data)}))
            state = {"epoch": 0, "best": None, "wait": 0, "lr": tcfg.optimizer.learning_rate, "history": []}

        distributed = {"as_dataset": True} if strategy.num_replicas_in_sync > 1 and not feed.streaming else {}
        loop = None
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            from ..models.heads import default_loss
            from .distributed_loop import DistributedLoop

            loss_name = default_loss(task, n_outputs, loss=tcfg.loss)
            # experimental_distribute_dataset splits each batch of training.batch_size among the
            # workers: one step processes training.batch_size jets in all
            loop = DistributedLoop(model, strategy, loss_name, task, tcfg.batch_size)
            distributed = {"as_dataset": True}
        holder: dict = {}
        step_saver = _StepCheckpoint(self, run, model, state, tcfg.checkpoint_every_n_steps,
                                     steps_per_epoch=feed.steps_per_epoch())
        nan_guard = _FiniteLoss(tcfg.optimizer.learning_rate)
        step_saver.guard = nan_guard
        # the finite-loss check comes before the step checkpoint: a NaN model is never saved
        callbacks = [make_timing_callback(holder, tcfg.batch_size), nan_guard.callback(), step_saver.callback()]
        callbacks += decorrelate.callbacks(model, cfg)
        if tcfg.verbose:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.tensorboard), write_graph=False))
        es = tcfg.early_stopping
        monitor = es.monitor if es is not None else "val_loss"
        if not has_val:
            monitor = monitor.removeprefix("val_")
        history = list(state["history"])
        stopped = False
        first_epoch = tcfg.epochs if state.get("stopped_early") else state["epoch"]
        from .tracking import start_tracking  # training.tracking (MLflow); None when not configured

        tracker = start_tracking(cfg, run.path) if run is source else None
        for epoch in range(first_epoch, tcfg.epochs):
            lr = state["lr"] if tcfg.schedule is not None and tcfg.schedule.name == "plateau" else learning_rate_at(
                epoch, tcfg.optimizer.learning_rate, tcfg.schedule
            )
            model.optimizer.learning_rate.assign(lr)
            skip = state.pop("step", 0) if state.get("step") else 0
            metric_states = state.pop("metric_states", None)
            step_saver.begin_epoch(epoch, skip, metric_states if skip else None)
            nan_guard.begin_epoch(epoch, skip, run)
            reader_wait_start = _reader_wait() if feed.streaming else None
            if loop is not None:
                logs, holder["timer"] = loop.run_epoch(
                    **feed.epoch_args(epoch, skip_steps=skip, **distributed), on_step=step_saver.on_step
                )
                fit_logs = {k: [v] for k, v in logs.items()}
            else:
                with warnings.catch_warnings():
                    # a streamed pass has no known length: Keras warns when it ends, which is expected
                    warnings.filterwarnings("ignore", message="Your input ran out of data")
                    fit_logs = model.fit(
                        **feed.epoch_args(epoch, skip_steps=skip, **distributed),
                        epochs=epoch + 1,
                        initial_epoch=epoch,
                        callbacks=callbacks,
                        verbose=0,
                    ).history
            nan_guard.check_logs({k: v[-1] for k, v in fit_logs.items()}, step=None)
            nan_guard.check_weights(model, step=None)
            timer: EpochTimer = holder.get("timer", EpochTimer())
            row = {"epoch": epoch + 1, "learning_rate": float(lr)}
            row.update({k: float(v[-1]) for k, v in fit_logs.items()})
            row.update(timer.summary())
            if reader_wait_start is not None:  # streaming: time the input pipeline waited for the file reader
                row["reader_wait_s"] = round(_reader_wait() - reader_wait_start, 3)
                if row["epoch_time_s"] > 0:
                    row["input_wait_share"] = round(max(row["input_wait_share"], row["reader_wait_s"] / row["epoch_time_s"]), 4)
            history.append(row)
            if tracker is not None:
                tracker.log_epoch(row)
            self.log(_format_row(row, tcfg.epochs))
            if row["input_wait_share"] > INPUT_BOUND_SHARE and (n_train or 0) >= 20 * tcfg.batch_size:
                warnings.warn(
                    f"epoch {epoch + 1}: {row['input_wait_share']:.0%} of the time was spent waiting for input: "
                    "training is input-bound (raise data.step_size or batch size; when streaming, set "
                    "training.stream_cache: true; or use `hepnn convert`)",
                    InputBoundWarning, stacklevel=2,
                )
            current = row.get(monitor)
            improved = current is not None and (
                state["best"] is None or current < state["best"] - (es.min_delta if es else 0.0)
            )
            if improved:
                state["best"], state["wait"] = current, 0
                if es is not None and es.restore_best_weights:
                    run.checkpoints.mkdir(parents=True, exist_ok=True)
                    _save_weights(model, run.checkpoints / "best.weights.h5")
            else:
                state["wait"] += 1
            if tcfg.schedule is not None and tcfg.schedule.name == "plateau" and state["wait"] and (
                state["wait"] % tcfg.schedule.patience == 0
            ):
                state["lr"] = max(state["lr"] * tcfg.schedule.decay_rate, tcfg.schedule.min_learning_rate)
            state["epoch"] = epoch + 1
            state["history"] = history
            if es is not None and state["wait"] >= es.patience:
                stopped = True
                state["stopped_early"] = True
            if epoch_callback is not None and epoch_callback(epoch + 1, dict(row)):
                stopped = True
                state["stopped_early"] = True
            self._save_state(run, model, state)
            run.write_history(history)
            _fault("epoch", {"epoch": epoch + 1})
            if stopped:
                reason = (f"{monitor} did not improve for {es.patience} epochs"
                          if es is not None and state["wait"] >= es.patience else "stopped by the epoch callback")
                self.log(f"stopping after epoch {epoch + 1}: {reason}")
                break
        if state.get("stopped_early"):
            stopped = True
        best = run.checkpoints / "best.weights.h5"
        if es is not None and es.restore_best_weights and best.is_file():
            model.load_weights(best)
        model = decorrelate.classifier_of(model)
        run.save_model(model)
        run.write_history(history)
        if tracker is not None:
            tracker.finish()
        if getattr(feed, "cache_dir", None) is not None and feed.cache_dir.is_dir():
            import shutil

            shutil.rmtree(feed.cache_dir, ignore_errors=True)
            self.log(f"removed the stream cache {feed.cache_dir}")
        if run is not source:  # a non-chief worker: its copy is scratch
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)
        self.model_ = model
        self.history_ = history
        self.stopped_early_ = stopped
        self.log(f"wrote {run.model}")
        return self

    # --- checkpoints ----------------------------------------------------------------

    def _load_state(self, run: RunDirectory, clean: bool = True) -> dict | None:
        """The checkpoint state (``checkpoints/state.json``), or None when there is none.

        ``state.json`` is the commit point of a checkpoint: it names the model file saved
        just before it (``"model": "last-NNNNNN.keras"``), so a kill at any moment leaves a
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
        except ValueError as err:
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
        for other in ckpt.glob("last*.keras") if clean else ():  # models of checkpoints never committed
            if other.name != name:
                other.unlink(missing_ok=True)
        return state

    def _save_state(self, run: RunDirectory, model, state: dict) -> None:
        """Save one checkpoint: the model under a new name, then ``state.json`` naming it (the commit)."""
        state["seed_states"] = _seed_states(model)
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem.split("-")[1]) for p in run.checkpoints.glob("last-*.keras")
                   if p.stem.split("-")[1].isdigit()]
        name = f"last-{max(numbers, default=0) + 1:06d}.keras"
        run.save_model(model, run.checkpoints / name)
        state["model"] = name
        _fault("checkpoint", {"epoch": state["epoch"], "step": state.get("step", 0)})
        write_json(run.checkpoints / "state.json", state)
        for other in run.checkpoints.glob("last*.keras"):
            if other.name != name:
                other.unlink(missing_ok=True)


class _FiniteLoss:
    """Stop training with a clear error as soon as the loss is NaN or infinite."""

    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate
        self.epoch, self.offset, self.run = 0, 0, None

    def begin_epoch(self, epoch: int, skip: int, run) -> None:
        self.epoch, self.offset, self.run = epoch, skip, run

    def check_logs(self, logs, step: int | None) -> None:
        from ..exceptions import TrainingError

        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not np.isfinite(value):
                raise TrainingError(self._message(f"the training {key.replace('_', ' ')} became {value}", step))

    def check_weights(self, model, step: int | None) -> None:
        """The weights can turn NaN while the (clipped) loss stays finite: check them too."""
        from ..exceptions import TrainingError

        for var in model.trainable_variables:
            if not np.all(np.isfinite(var.numpy())):
                raise TrainingError(self._message(f"the model weights ({var.path}) became NaN or infinite", step))

    def _message(self, what: str, step: int | None) -> str:
        where = f"epoch {self.epoch + 1}" + (f", step {step}" if step is not None else "")
        ckpt = f" (the last checkpoint in {self.run.checkpoints} is from before)" if self.run else ""
        return (f"{what} at {where}: training stopped and no model was saved as finished{ckpt}. Lower "
                f"training.optimizer.learning_rate (now {self.learning_rate:g}) or check the inputs for NaN "
                "or infinite values")

    def callback(self):
        from .._optional import require_keras

        keras = require_keras()
        guard = self

        class _Check(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                guard.check_logs({"loss": (logs or {}).get("loss")}, step=guard.offset + batch + 1)

        return _Check()


class _StepCheckpoint:
    """Checkpoints every N steps inside an epoch (``training.checkpoint_every_n_steps``).

    The saved state records the epoch in progress and the steps done; a resumed run
    skips those steps of the same epoch permutation. A checkpoint due after step k is
    written when step k + 1 begins, so none is taken after the last step of an epoch:
    the end-of-epoch checkpoint (with that epoch's history row) covers it.
    """

    def __init__(self, trainer, run, model, state, every, steps_per_epoch=None):
        self.trainer, self.run, self.model, self.state, self.every = trainer, run, model, state, every
        self.steps_per_epoch = steps_per_epoch
        self.epoch, self.offset, self.pending, self.restore = 0, 0, None, None
        self.guard = None

    def begin_epoch(self, epoch: int, skip: int, metric_states: list | None = None) -> None:
        """Start an epoch (``skip`` steps already done); ``metric_states``: the running metrics
        saved with a step checkpoint, added back after the first step so the epoch's history
        row covers all its steps."""
        self.epoch, self.offset, self.pending, self.restore = epoch, skip, None, metric_states

    def restore_metrics(self) -> None:
        """Add the saved metric accumulators to the current ones (the metrics accumulate sums,
        and a + b == b + a exactly, so the epoch ends with the uninterrupted run's values)."""
        saved, self.restore = self.restore, None
        variables = _metric_variables(self.model)
        if saved is None or len(saved) != len(variables):
            return
        for var, value in zip(variables, saved):
            var.assign(var.numpy() + np.asarray(value, dtype=var.dtype))

    def callback(self):
        from .._optional import require_keras

        keras = require_keras()
        saver = self

        class _Save(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                saver.flush()

            def on_train_batch_end(self, batch, logs=None):
                if saver.restore is not None:
                    saver.restore_metrics()
                step = saver.offset + batch + 1
                if saver.every and step % saver.every == 0:
                    saver.pending = step
                _fault("step", {"epoch": saver.epoch, "step": step})

        return _Save()

    def flush(self) -> None:
        """Write the checkpoint due after the previous step (called when the next step begins)."""
        if self.pending is not None:
            step, self.pending = self.pending, None
            self._save(step)

    def on_step(self, steps_done: int) -> None:
        """Called after each step by loops without a begin hook (1-based count since the epoch (re)started)."""
        step = self.offset + steps_done
        if self.every and step % self.every == 0 and step != self.steps_per_epoch:
            self._save(step)

    def _save(self, step: int) -> None:
        if self.guard is not None:  # never checkpoint a model whose weights are no longer finite
            self.guard.check_weights(self.model, step)
        partial = dict(self.state)
        partial["epoch"] = self.epoch
        partial["step"] = step
        partial["metric_states"] = [np.asarray(v.numpy()).tolist() for v in _metric_variables(self.model)]
        self.trainer._save_state(self.run, self.model, partial)


def _metric_variables(model) -> list:
    return list(getattr(model, "metrics_variables", []))


def _reader_wait() -> float:
    from ..io.stream import READER_WAIT

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


def _save_weights(model, path: Path) -> None:
    from .._fileio import atomic_path

    with atomic_path(path, suffix=".part.weights.h5") as tmp:
        model.save_weights(tmp)


def _format_row(row: Mapping[str, float], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("loss", "val_loss", "auc", "val_auc", "accuracy", "val_accuracy"):
        if key in row:
            parts.append(f"{key} {row[key]:.4g}")
    parts.append(f"{row['samples_per_s']:.0f} jets/s")
    parts.append(f"input wait {row['input_wait_share']:.0%}")
    return ", ".join(parts)
