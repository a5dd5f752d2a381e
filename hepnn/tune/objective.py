"""The objective of ``hepnn tune``: one trial = one training run directory.

A trial is the base config plus the sampled values (applied as ``--set`` overrides),
trained with :class:`hepnn.training.Trainer` into ``OUT/trials/<number>``. The value is

``val_loss``
    the lowest validation loss over the epochs (minimised; epochs with a NaN loss are skipped);
``auc``
    the ROC AUC on the **validation** split (maximised), so the test split stays unbiased;
``rejection@<eff>``
    the background rejection at signal efficiency ``eff`` on the validation split (maximised);
    when no background jet passes the cut, the number of background validation jets (the
    rejection one passing jet would give, a lower bound), not an infinite value.

Bad trials are pruned from per-epoch reports (``val_loss``, or ``val_auc`` for the
physics metrics) through the trainer's ``epoch_callback`` hook, reported as Optuna steps
numbered like the epochs, from 1. The default pruner (:func:`hepnn.tune.study.make_pruner`)
stops a trial worse than the median of the completed trials at the same epoch, once 3 trials
have completed, and never on its first epoch: the earliest is after epoch 2. A k-fold trial
(``training.folds``) reports the epochs of its first fold, so trials are compared on the
same fold; a trial pruned there does not train its other folds.

Each trial's ``tune.json`` (in its run directory) records its state as ``trials.csv`` does:
``complete`` with the value, ``pruned`` with the epoch, or ``fail`` with the error (an exception
in training or evaluation, or a NaN value); a failed trial is never the best one.

A trial whose worker died is re-queued by :mod:`hepnn.tune.study` as a new trial with the same
values (``retry_of``). That trial takes over the killed trial's folder: moved to
``OUT/trials/<new number>`` and resumed from its last checkpoint when it has one, removed when it
has none, so no folder of a killed trial is left behind and no finished epoch is trained twice.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..config import load_config
from ..exceptions import ConfigError, HepnnError, OutputDirError, suggest
from ..io import load
from ..outdir import lock_directory
from ..runs import RunSpec
from ..training.evaluate import compute_metrics, evaluation_weights, predict_split
from ..training.kfold import fold_parts, fold_runs, is_kfold_run
from ..training.rundir import RunDirectory, write_json

__all__ = ["OBJECTIVES", "parse_objective", "TrainingObjective"]

#: the objectives offered on the command line (any ``rejection@<eff>`` works)
OBJECTIVES = ("val_loss", "auc", "rejection@0.5")


def parse_objective(name: str) -> tuple[str, str, float | None]:
    """``(metric, direction, working_point)`` of an objective name.

    Examples
    --------
    >>> parse_objective("rejection@0.5")
    ('rejection', 'maximize', 0.5)
    >>> parse_objective("val_loss")
    ('val_loss', 'minimize', None)
    """
    if name == "val_loss":
        return "val_loss", "minimize", None
    if name == "auc":
        return "auc", "maximize", None
    if name.startswith("rejection@"):
        text = name.partition("@")[2]
        try:
            wp = float(text)
        except ValueError:
            wp = -1.0
        if 0.0 < wp <= 1.0:
            return "rejection", "maximize", wp
        msg = f"--objective {name}: expected rejection@<signal efficiency in (0, 1]>, e.g. rejection@0.5"
        raise ConfigError(msg)

    msg = f"--objective {name!r}: unknown objective{suggest(name, OBJECTIVES)}; valid: {', '.join(OBJECTIVES)}"
    raise ConfigError(msg)


class TrainingObjective:
    """Callable ``objective(trial) -> float`` that trains one run directory per trial.

    Parameters
    ----------
    config : path, mapping or Config
        The base configuration.
    space : SearchSpace
        The searched keys.
    out : path
        The study folder; trial ``n`` trains into ``out/trials/<n>``.
    objective : str
        ``val_loss``, ``auc`` or ``rejection@<eff>``.
    overrides : iterable of str
        ``--set`` overrides applied to the base config before the sampled values.
    data : JetData or dict, optional
        Loaded data shared by all trials (default: ``hepnn.io.load`` once, on first use;
        reloaded per trial when the space changes ``data.*`` keys).
    prune : bool
        Report per-epoch values to the pruner and stop trials it prunes.
    log : callable
        Where progress lines go.

    Examples
    --------
    >>> objective = TrainingObjective("config.yaml", space, "tune/")  # doctest: +SKIP
    >>> study.optimize(objective, n_trials=3)  # doctest: +SKIP
    """

    def __init__(self, config: Any, space, out: str | os.PathLike, objective: str = "val_loss",
                 overrides: Iterable[str] = (), data: Mapping | None = None, prune: bool = True,
                 log: Callable[[str], None] = print):
        self.metric, self.direction, self.working_point = parse_objective(objective)
        self.objective = objective
        self.space = space
        self.out = Path(out)
        overrides = list(overrides)
        space.validate(config, overrides)  # a bad space or --set fails here, not in the first trial
        self.base = load_config(config, overrides)
        self.data = data
        self.prune = prune
        self.log = log

    @property
    def report_key(self) -> str:
        """The history column reported to the pruner each epoch."""
        return "val_loss" if self.metric == "val_loss" else "val_auc"

    def trial_config(self, values: Mapping[str, Any]):
        """The base config with the sampled config values applied."""
        return load_config(self.base, self.space.overrides(values))

    def run_dir(self, number: int) -> Path:
        return self.out / "trials" / str(number)

    def _data(self, config):
        if self.space.touches_data():
            return load(config)
        if self.data is None:
            self.data = load(self.base)
        return self.data

    def __call__(self, trial) -> float:
        import optuna

        # lazy: keeps importing this module free of keras
        from ..training.trainer import Trainer

        values = self.space.suggest(trial)
        config = self.trial_config(values)
        run_dir = self.run_dir(trial.number)
        self._take_over_killed_run(trial, run_dir)
        trial.set_user_attr("run_dir", str(run_dir))
        data = self._data(config)
        self._check_task(config, data)
        pruned: dict[str, int] = {}

        def epoch_callback(epoch: int, row: Mapping[str, float]) -> bool:
            if row.get("fold", 0):  # k-fold: the first fold's curve decides (one value per step)
                return False
            value = row.get(self.report_key)
            if value is None or not math.isfinite(value):
                return False
            trial.report(float(value), epoch)
            if self.prune and trial.should_prune():
                pruned["epoch"] = epoch
                return True
            return False

        self.log(f"trial {trial.number}: {', '.join(f'{k}={v!r}' for k, v in values.items())} -> {run_dir}")
        trainer = Trainer(config, log=lambda line: self.log(f"trial {trial.number}: {line}"))
        record = {"trial": trial.number, "objective": self.objective, "values": values}
        try:
            trainer.fit(run_dir, data=data, epoch_callback=epoch_callback)
            value = None if pruned else self._checked_value(run_dir, trainer.history_, data)
        except Exception as err:  # noqa: BLE001 - recorded in the run, then raised: the worker fails the trial
            if run_dir.is_dir():
                write_json(run_dir / "tune.json", {**record, "state": "fail", "error": f"{type(err).__name__}: {err}"})
            raise
        if pruned:
            write_json(run_dir / "tune.json", {**record, "state": "pruned", "epoch": pruned["epoch"]})
            raise optuna.TrialPruned(f"pruned after epoch {pruned['epoch']}")
        write_json(run_dir / "tune.json", {**record, "state": "complete", "value": value})
        return value

    def _check_task(self, config, data) -> None:
        """``auc`` and ``rejection@x`` need a binary tagger or an autoencoder: a multiclass config is refused
        before the trial trains (its first trial used to train in full, then fail)."""
        if self.metric == "val_loss":
            return
        spec = RunSpec.from_config(config, data)
        if spec.task not in ("binary", "autoencoder"):
            msg = (f"--objective {self.objective}: needs a binary tagger or an autoencoder, and this config trains a "
                   f"{spec.task} model ({len(spec.classes)} classes: {', '.join(spec.classes)}); use --objective val_loss")
            raise ConfigError(msg)

    def _checked_value(self, run_dir: Path, history: list[Mapping[str, float]], data: Mapping) -> float:
        """:meth:`evaluate`, with a NaN value an error (the study fails such a trial; never its best)."""
        value = self.evaluate(run_dir, history, data)
        if math.isnan(value):
            msg = (f"{run_dir}: --objective {self.objective} is NaN (a NaN validation loss or score); the trial "
                   "failed: lower training.optimizer.learning_rate or check the inputs for NaN")
            raise HepnnError(msg)
        return value

    def _take_over_killed_run(self, trial, run_dir: Path) -> None:
        """A retried trial (``retry_of``: the trial whose worker died, re-queued with its values) takes
        over the killed trial's run folder: moved to ``run_dir`` when it has a checkpoint (or a finished
        model), so the trainer resumes it instead of training again from scratch; removed when it has
        none (nothing to resume). A folder another process still writes into (its lock is held) is left
        alone and the trial trains anew."""
        previous = trial.user_attrs.get("retry_of")
        if previous is None or run_dir.exists():
            return
        old = self.run_dir(int(previous))
        if not old.is_dir():
            return
        try:
            with lock_directory(old):
                if _resumable(old):
                    run_dir.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(old, run_dir)  # the lock file moves with it; the flock is on the open file
                    self.log(f"trial {trial.number}: resuming the run of killed trial {previous} ({old} -> {run_dir})")
                    return
                shutil.rmtree(old)
                self.log(f"trial {trial.number}: removed {old} of killed trial {previous} (no checkpoint to resume)")
        except OutputDirError as err:
            self.log(f"trial {trial.number}: {old} of killed trial {previous} left as it is ({err}); training anew")

    def evaluate(self, run_dir: Path, history: list[Mapping[str, float]], data: Mapping) -> float:
        """The objective value of a trained run directory."""
        if self.metric == "val_loss":
            if is_kfold_run(run_dir):  # the mean of every fold model's best validation loss (history is fold 0's)
                return float(np.mean([_best_val_loss(RunDirectory(path).read_history()) for path in fold_runs(run_dir)]))
            return _best_val_loss(history)
        if is_kfold_run(run_dir):  # no model of its own: the mean over the fold models, each on its validation jets
            return float(np.mean([self._split_value(path, part) for path, part in fold_parts(run_dir, data)]))
        return self._split_value(run_dir, data)

    def _split_value(self, run_dir: Path, data: Mapping) -> float:
        """The auc or rejection objective of one model on the validation jets of ``data``."""
        pred = predict_split(run_dir, "val", data=data)
        if len(pred["label"]) == 0:
            msg = f"--objective {self.objective}: the validation split is empty; set data.split.val > 0"
            raise ConfigError(msg)
        config = pred["config"]
        wps = [self.working_point] if self.working_point is not None else [0.5]
        metrics = compute_metrics(  # weighted as `hepnn evaluate` weighs them (evaluation.weighted)
            pred["outputs"], pred["label"], pred["task"], pred["classes"], wps, weights=evaluation_weights(config, pred),
            background=config.evaluation.background, signal=config.evaluation.signal,
        )
        if "auc" not in metrics:
            msg = (
                f"--objective {self.objective}: needs a binary tagger or an autoencoder, received task "
                f"{pred['task']!r}; use --objective val_loss"
            )
            raise ConfigError(msg)
        if self.metric == "auc":
            return float(metrics["auc"])
        rejection = metrics["rejection"][f"{self.working_point:g}"]
        if rejection is None:
            # no background jet passes the cut: the rejection is at least what one passing jet gives, the
            # number of background jets; that bound ranks the trial first without an infinite value
            # that would win every comparison and break trials.csv and tune.json
            return float(metrics["n_background"])
        return float(rejection)


def _resumable(run_dir: Path) -> bool:
    """``run_dir`` has something to resume from: a checkpoint or a finished model (a k-fold run: in a fold)."""
    patterns = ("checkpoints/state.json", "model.keras", "folds/*/checkpoints/state.json", "folds/*/model.keras")
    return any(next(iter(run_dir.glob(pattern)), None) is not None for pattern in patterns)


def _best_val_loss(history: Iterable[Mapping[str, Any]]) -> float:
    """The lowest ``val_loss`` of a training history (one row per epoch); NaN epochs are skipped (NaN when
    every epoch is NaN). Python's ``min`` is not: ``min([nan, 0.5])`` is NaN, ``min([0.5, nan])`` 0.5."""
    losses = [float(row["val_loss"]) for row in history if isinstance(row.get("val_loss"), (int, float))]
    if not losses:
        msg = "--objective val_loss: the runs have no validation split; set data.split.val > 0"
        raise ConfigError(msg)
    numbers = [loss for loss in losses if not math.isnan(loss)]
    return min(numbers) if numbers else math.nan
