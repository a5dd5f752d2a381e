"""k-fold training and application: every jet is scored by a model that never trained on it.

``training.folds: K`` trains K models. Each jet belongs to fold ``key mod K``, with the
key a hash of the event number (``data.event_key``: all jets of an event share a fold)
or, without one, of (file name, entry, jet index). Model ``k`` trains on the jets of
the other folds (those in the validation split drive early stopping) and scores the
jets of fold ``k``.

Layout::

    RUN_DIR/
      config.yaml, preprocessing.json, folds.json, metrics.json
      folds/0/ ... folds/K-1/     ordinary run directories, one per model

``metrics.json`` holds the metrics of the out-of-fold scores of all jets plus, under
``"folds"``, the mean and standard deviation over the per-fold metrics.
Standardisation parameters are fitted once on the training split and shared by the
folds (a negligible, documented leak of first and second moments, never of labels).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from ..config import load_config, save_config
from ..exceptions import ConfigError, HepnnError, InputDataError, OutputDirError
from ..io import load
from ..io.split import assign_fold
from ..models import load_model
from ..preprocessing import Preprocessor
from ..runs.spec import load_spec
from .rundir import RunDirectory, config_differences, missing_preprocessing, read_json, write_json
from .tagger import Tagger

__all__ = ["KFoldTrainer", "KFoldTagger", "fold_dirs", "fold_runs", "fold_parts", "is_kfold_run", "fold_position",
           "fit_folds", "fold_data", "folds_of", "load_kfold_tagger", "summarise"]


def fold_dirs(run_dir, n_folds: int) -> list[Path]:
    return [Path(run_dir) / "folds" / str(k) for k in range(n_folds)]


def is_kfold_run(run_dir) -> bool:
    return (Path(run_dir) / "folds.json").is_file()


def fold_runs(run_dir) -> list[Path]:
    """The fold runs of the k-fold run ``run_dir``, as many as its ``folds.json`` says."""
    return fold_dirs(run_dir, int(read_json(Path(run_dir) / "folds.json")["n_folds"]))


def fold_parts(run_dir, data: Mapping[str, np.ndarray]) -> Iterator[tuple[Path, Mapping[str, np.ndarray]]]:
    """``(fold k's run, the data as model k sees them)`` for every fold of a k-fold run (:func:`fold_data`)."""
    paths = fold_runs(run_dir)
    fold = folds_of(data, len(paths))
    for k, path in enumerate(paths):
        yield path, fold_data(data, fold, k)


def fold_position(run_dir) -> tuple[Path, int, int] | None:
    """``(k-fold run, k, n_folds)`` when ``run_dir`` is fold ``k``'s run (``RUN/folds/<k>``), else None.

    A fold run's own data are those of :func:`fold_data`: its test split is its fold, the
    jets no other split of it trained on.
    """
    path = Path(run_dir)
    parent = path.parent.parent
    if path.parent.name != "folds" or not path.name.isdigit() or not is_kfold_run(parent):
        return None
    n_folds = int(read_json(parent / "folds.json")["n_folds"])
    k = int(path.name)
    return (parent, k, n_folds) if k < n_folds else None


def fold_data(data: Mapping[str, np.ndarray], fold: np.ndarray, k: int):
    """The data as model ``k`` sees them: fold ``k`` is its test split, the rest train/val."""
    split = np.asarray(data["split"]).copy()
    mine = fold == k
    split[mine] = 2
    split[~mine & (split == 2)] = 0  # the other folds' test jets are training jets here
    arrays = dict(data)
    arrays["split"] = split.astype(np.int8)
    like = getattr(data, "_like", None)
    return like(arrays) if like is not None else arrays


def folds_of(data: Mapping[str, np.ndarray], n_folds: int) -> np.ndarray:
    if "fold_key" not in data:
        msg = "k-fold training needs the reader's 'fold_key' array: load the data with hepnn.io.load(config)"
        raise ConfigError(msg)
    return assign_fold(data["fold_key"], n_folds)


class KFoldTrainer:
    """Train the K fold models of a trainer's config (``training.folds: K``), one ordinary
    run directory per fold under ``OUT/folds/<k>``, each by a trainer of the same class.

    Examples
    --------
    >>> KFoldTrainer(Trainer(config)).fit_into("runs/kfold", data)  # doctest: +SKIP
    """

    def __init__(self, trainer):
        self.trainer = trainer

    def fit_into(self, out, data: Mapping[str, np.ndarray] | None = None, epoch_callback=None):
        """Train every fold into ``out`` and return the trainer with ``folds_``, ``model_`` and
        ``history_`` (those of fold 0) set; ``epoch_callback`` as in :func:`fit_folds`."""
        trainer = self.trainer
        if data is None:
            data = load(trainer.config, analysis=trainer.analysis)
        trainer.folds_ = fit_folds(trainer, out, data, epoch_callback)
        trainer.model_ = trainer.folds_[0].model_
        trainer.history_ = trainer.folds_[0].history_
        return trainer


def fit_folds(trainer, out, data: Mapping[str, np.ndarray], epoch_callback=None) -> list:
    """Train the K fold models of ``trainer.config`` into ``out/folds/<k>``; returns the trainers.

    ``epoch_callback(epoch, row)`` is called after every epoch of every fold, with the fold
    (0-based) in ``row["fold"]``. When it returns True (``hepnn tune`` pruning a trial), that
    fold stops and the later folds are not trained: ``folds.json`` is not written (the run is
    not a complete k-fold run; training the same directory again trains the missing folds).
    Stopping the last fold ends it early like a single run (the k-fold run is complete).
    """
    cfg = trainer.config
    n_folds = cfg.training.folds
    if n_folds < 2:
        msg = f"training.folds: expected at least 2 folds, received {n_folds}"
        raise ConfigError(msg)
    if cfg.training.streaming:
        msg = "training.folds: k-fold training runs in memory; set training.streaming: false"
        raise ConfigError(msg)
    run = RunDirectory(out).create()
    single = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, folds=None))
    _check_finished_folds(run, single, n_folds)
    save_config(cfg, run.config)
    fold = folds_of(data, n_folds)
    prep = getattr(data, "preprocessing", None)
    if prep is not None and hasattr(prep, "save"):
        prep.save(run.preprocessing)
    trainers, stopped = [], []
    for k, path in enumerate(fold_dirs(out, n_folds)):
        trainer.log(f"fold {k + 1}/{n_folds}: training on {int((fold != k).sum())} jets, scoring {int((fold == k).sum())}")
        fold_trainer = type(trainer)(single, analysis=trainer.analysis, log=trainer.log)
        hook = None
        if epoch_callback is not None:
            def hook(epoch, row, k=k):
                if epoch_callback(epoch, {**row, "fold": k}):
                    stopped.append(k)
                    return True
                return False
        trainers.append(fold_trainer.fit(path, data=fold_data(data, fold, k), epoch_callback=hook))
        if stopped and k + 1 < n_folds:
            trainer.log(f"fold {k + 1}/{n_folds} stopped by the epoch callback: folds {k + 2}-{n_folds} not trained")
            return trainers
    spec = getattr(trainers[0], "spec_", None)  # the folds share one spec (None: fold 0 had finished before)
    (spec if spec is not None else load_spec(fold_dirs(out, n_folds)[0])).save(run.path)
    write_json(run.path / "folds.json", {
        "n_folds": n_folds,
        "key": f"event number ({cfg.data.event_key})" if cfg.data.event_key else "hash of (file name, entry, jet index)",
        "jets_per_fold": np.bincount(fold, minlength=n_folds).tolist(),
        "runs": [str(p.relative_to(run.path)) for p in fold_dirs(out, n_folds)],
    })
    return trainers


def _check_finished_folds(run: RunDirectory, single, n_folds: int) -> None:
    """Refuse, before anything is written, to go on with a k-fold run one of whose folds finished
    with another config (``single``: the config each fold trains with).

    The folds of one run share a config, so an interrupted k-fold run resumes with its own config
    only, also ``training.epochs`` (which an interrupted single run may change: a finished fold
    cannot). Before, the new config was written to the run's ``config.yaml`` and the error came
    from the first finished fold, named as a run of its own.
    """
    for k, path in enumerate(fold_dirs(run.path, n_folds)):
        fold = RunDirectory(path)
        if not (fold.is_trained() and fold.config.is_file()):
            continue
        try:
            diffs = config_differences(load_config(fold.config), single)
        except Exception as err:  # noqa: BLE001 - an unreadable saved config is a difference too
            diffs = [f"(unreadable: {err})"]
        if diffs:
            shown = "; ".join(diffs[:10]) + (f"; and {len(diffs) - 10} more" if len(diffs) > 10 else "")
            msg = (f"{run.path} is an interrupted k-fold run whose fold {k} ({path}) finished with a different "
                   f"config; differences (saved -> new): {shown}. The folds of one run share a config, so it "
                   f"resumes only with the config it was started with ({run.config} is kept); to train this "
                   "config, start a new run with another --out")
            raise OutputDirError(msg)


def summarise(per_fold: list[dict]) -> dict:
    """Mean and standard deviation of every number the fold metrics share.

    A value that is ``None`` in some folds (``metrics.json``'s null: an infinite rejection where
    no background jet of the fold passes the cut, an undefined metric) makes the mean and the
    standard deviation ``None`` too, never a mean over the other folds alone; the summary then
    says how many folds (``n_infinite`` under ``rejection``, else ``n_undefined``) and gives
    ``mean_of_finite_folds``.

    Examples
    --------
    >>> summarise([{"rejection": {"0.5": 10.0}}, {"rejection": {"0.5": None}}])
    {'rejection': {'0.5': {'mean': None, 'std': None, 'n_infinite': 1, 'mean_of_finite_folds': 10.0}}}
    """

    def number(i) -> bool:
        return isinstance(i, (int, float)) and not isinstance(i, bool)

    def walk(items: list, path: tuple):
        first = items[0]
        if isinstance(first, dict):
            keys = [k for k in first if all(isinstance(i, dict) and k in i for i in items)]
            out = {k: walk([i[k] for i in items], (*path, k)) for k in keys}
            return {k: v for k, v in out.items() if v is not None}
        if not all(number(i) or i is None for i in items):
            return None
        values = np.asarray([np.nan if i is None else i for i in items], dtype=float)
        finite = values[np.isfinite(values)]
        if len(finite) == len(values):
            return {"mean": round(float(values.mean()), 6),
                    "std": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 6)}
        count = "n_infinite" if "rejection" in path else "n_undefined"
        return {"mean": None, "std": None, count: int(len(values) - len(finite)),
                "mean_of_finite_folds": round(float(finite.mean()), 6) if len(finite) else None}

    return walk(per_fold, ()) or {}


class KFoldTagger(Tagger):
    """A :class:`~hepnn.training.tagger.Tagger` that applies the fold models of a k-fold run.

    Each jet is scored by the model of its own fold when its key can be computed from
    the input (the event-number branch for ``data.event_key`` runs; the file name and
    entry for hash-keyed runs read with ``predict_file``, ``iter_file``, ``predict_dask``
    or given to ``predict_chunk``), and by the average of all fold models otherwise.
    """

    def __init__(self, config, models: list, preprocessing=None, path=None, spec=None):
        super().__init__(config, models[0], preprocessing, path=path, spec=spec)
        self.models = list(models)
        self.n_folds = len(self.models)
        self.event_key = config.data.event_key
        self.key_valid_ = False

    @classmethod
    def load(cls, run_dir) -> KFoldTagger:
        """The tagger of the k-fold run in ``run_dir`` (``folds.json`` and ``folds/<k>/model.keras``)."""
        run = RunDirectory(run_dir)
        config = load_config(run.config)
        # before any model loads, also where Dask workers rebuild the tagger with this method
        problem = missing_preprocessing(run, load_spec(run.path, config).preprocessing, config)
        if problem:
            raise InputDataError(problem)
        folds = read_json(run.path / "folds.json")
        models = []
        for path in fold_dirs(run_dir, folds["n_folds"]):
            if not (path / "model.keras").is_file():
                msg = f"{path}: fold model missing (model.keras); finish the run with `hepnn train` on {run.path}"
                raise HepnnError(msg)
            models.append(load_model(path / "model.keras"))
        prep = Preprocessor.load(run.preprocessing) if run.preprocessing.is_file() else None
        spec = load_spec(fold_dirs(run_dir, folds["n_folds"])[0], config)
        return cls(config, models, prep, path=run.path, spec=spec)

    def _plan(self, keys, path, tree="<memory>"):
        plan = super()._plan(keys, path, tree)
        if self.event_key:
            self.key_valid_ = self.event_key in set(keys)
            if self.key_valid_:
                plan = dataclasses.replace(plan, event_branch=self.event_key)
        else:
            self.key_valid_ = path not in ("events", "<memory>")
        return plan

    @property
    def keyed_by_position(self) -> bool:
        """True when a jet's fold comes from its file name and entry (no ``data.event_key``):
        scores of a chunk then need its position (:meth:`predict_chunk`, :meth:`predict_file`)."""
        return not self.event_key

    def predict_numpy(self, arrays, *, preprocessed: bool = False, batch_size=None):
        with self._serial():  # key_valid_ is this call's state: not another thread's (re-entrant lock)
            self.key_valid_ = False
            return super().predict_numpy(arrays, preprocessed=preprocessed, batch_size=batch_size)

    def _score(self, tensors, *, batch_size=None, preprocessed: bool = False):
        keys = tensors.get("fold_key") if self.key_valid_ else None
        outputs = []
        for model in self.models:
            self.model = model
            outputs.append(super()._score(tensors, batch_size=batch_size, preprocessed=preprocessed))
        self.model = self.models[0]
        stacked = np.stack(outputs)
        if keys is None:
            return stacked.mean(axis=0)
        fold = assign_fold(keys, self.n_folds)
        return stacked[fold, np.arange(len(fold))]


def load_kfold_tagger(run_dir) -> KFoldTagger:
    """``KFoldTagger.load(run_dir)`` (kept for older callers)."""
    return KFoldTagger.load(run_dir)
