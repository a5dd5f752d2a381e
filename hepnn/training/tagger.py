"""``hepnn.Tagger``: a trained run directory as something a physicist can call on events.

A :class:`Tagger` bundles the run's resolved config, its model (loaded in Keras safe
mode: a file that would execute code, such as one with a ``Lambda`` layer, is refused)
and its preprocessing (JSON). :meth:`Tagger.predict` takes the arrays ``uproot`` reads,
builds the model inputs with the reader's own code (:func:`hepnn.io.represent`), applies
the saved preprocessing and returns one score per jet, aligned with the input: a flat
numpy array for per-jet input, an awkward jagged array (one list per event) for
per-event input. There is no selection: the config's cuts are not applied, so every jet
gets a score, and no label branch is needed.

``predict`` also takes a jet collection (``events.Jet`` of coffea NanoEvents, or any
awkward ``var * record`` array whose fields are the jet variables without the
``Jet_`` prefix; linked collections such as tracks are found through the NanoEvents
parent) and dask-awkward arrays (coffea NanoEvents in dask mode, ``uproot.dask``,
``dask_awkward.from_awkward``): then it returns a lazy ``dask_awkward.Array`` built with
``dask_awkward.map_partitions`` and computes nothing itself; only the branches the
tagger needs are read when it is computed.

Examples
--------
>>> import hepnn, uproot
>>> tagger = hepnn.Tagger.load("runs/top_dense")                       # doctest: +SKIP
>>> events = uproot.open("ttbar.root")["Events"].arrays(filter_name=tagger.required_branches)  # doctest: +SKIP
>>> scores = tagger.predict(events)     # var * float32, one score per Jet   # doctest: +SKIP
>>> ak.num(scores).tolist() == events.nJet.tolist()                     # doctest: +SKIP
True

In a coffea 2025 (dask) processor the same call is lazy:

>>> events = NanoEventsFactory.from_root({"nano.root": "Events"}, mode="dask").events()  # doctest: +SKIP
>>> jets = ak.with_field(events.Jet, tagger.predict(events.Jet), "hepnn")                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .._optional import require
from ..config import load_config
from ..config.schema import step_size_problem
from ..exceptions import ConfigError, HepnnError, InputDataError
from ..io.represent import Columns, jets_per_entry, plan_for, represent, required_branches, selection_free
from ..io.representations import input_kind
from ..io.sources import SourceFile, iterate_tree, open_tree, tree_keys
from ..io.stream import read_ahead
from ..models import load_model
from ..models.autoencoder import anomaly_score
from ..models.inference import check_batch_size, predict
from ..outdir import runs_instead
from ..preprocessing import Preprocessor
from ..runs.spec import RunSpec, load_spec
from .rundir import RunDirectory, missing_preprocessing

__all__ = ["Tagger"]


def _is_dask(events: Any) -> bool:
    """A dask-awkward array (checked without importing dask)."""
    return type(events).__module__.split(".")[0] == "dask_awkward"


def _is_collection(events: Any) -> bool:
    """An awkward ``n_events * var * record`` array: one collection (``events.Jet``), not events."""
    import awkward as ak

    return isinstance(events, ak.Array) and bool(events.fields) and events.ndim == 2


def _collection_name(events: Any) -> str | None:
    """The NanoEvents ``collection_name`` of a ``var * record`` array (None for plain awkward)."""
    content = getattr(events.layout, "content", None)
    return content.parameter("collection_name") if content is not None else None


def _slice(events: Any, start: int, stop: int) -> Any:
    """Entries ``start:stop`` of an awkward array or of every array of a dict (views)."""
    if isinstance(events, Mapping):
        return {k: v[start:stop] for k, v in events.items()}
    return events[start:stop]


def _ramp(total: int, first: int, block: int) -> list[int]:
    """Block edges ``[0, ..., total]``: sizes ``first``, doubling up to ``block``; a last block
    smaller than ``first`` joins the one before.

    Examples
    --------
    >>> _ramp(100, 8, 32)
    [0, 8, 24, 56, 88, 100]
    >>> _ramp(60, 8, 32)
    [0, 8, 24, 60]
    """
    edges, size = [0], first
    while edges[-1] + size < total:
        edges.append(edges[-1] + size)
        size = min(2 * size, block)
    if len(edges) > 1 and total - edges[-1] < first:
        edges.pop()
    edges.append(total)
    return edges


#: a preprocessing entry's fields as :class:`~hepnn.preprocessing.Preprocessor` reads them (default when absent)
_SPEC_DEFAULTS = {"kind": "flat", "variables": [], "standardize": False, "pad_value": 0.0, "transforms": {}}
_TRANSFORM_DEFAULTS = {"abs": False, "log": False, "log1p": False, "clip": None, "standardize": False}


def _spec_values(spec: Mapping) -> dict:
    """The fields of one preprocessing entry that decide its numbers, defaults filled in, JSON-normalised."""
    values = {k: spec.get(k, d) for k, d in _SPEC_DEFAULTS.items()}
    values["standardize"] = bool(values["standardize"])
    transforms = values["transforms"] or {}
    values["transforms"] = {var: {k: (t or {}).get(k, d) for k, d in _TRANSFORM_DEFAULTS.items()}
                            for var, t in transforms.items()
                            if any((t or {}).get(k, d) not in (d, False, None) for k, d in _TRANSFORM_DEFAULTS.items())}
    return json.loads(json.dumps(values, default=list))


def _check_preprocessing(preprocessing: Any, data: Any, path: Path | None) -> None:
    """``preprocessing`` must describe the run's inputs as its config does, and be fitted for them.

    A ``preprocessing.json`` without an input the model takes, with other variables, transforms,
    ``standardize`` or ``pad_value`` than ``config.yaml``, or without the fitted means of an input
    it standardises would make :meth:`Tagger.predict` feed the model tensors other than those it was
    trained on, with no error: the scores would be silently wrong.

    Raises
    ------
    InputDataError
        Naming the file, the input, the field and both values.
    """
    if not isinstance(preprocessing, Preprocessor):
        return  # another object with a transform(): its own business
    where = f"{path / 'preprocessing.json'}" if path is not None else "the preprocessing"
    fix = ("config.yaml and preprocessing.json of a run are written together by `hepnn train`: restore the "
           "run's original files, or train the run again")
    expected = Preprocessor.from_config(data).inputs
    saved = getattr(preprocessing, "inputs", {}) or {}
    for name, spec in expected.items():
        kind = spec.get("kind")
        if kind not in ("flat", "sequence") and not (kind == "image" and spec.get("standardize")):
            continue  # nothing of it is preprocessed
        if name not in saved:
            msg = (f"{where}: no entry for input {name!r} (it has {sorted(saved)}), but the model takes it and "
                   f"config.yaml preprocesses it; its values would reach the model unstandardised. {fix}")
            raise InputDataError(msg)
        mine, theirs = _spec_values(spec), _spec_values(saved[name])
        differ = [k for k in mine if mine[k] != theirs[k]]
        if differ:
            detail = "; ".join(f"{k}: {theirs[k]!r} there, {mine[k]!r} in config.yaml" for k in differ)
            msg = f"{where}: input {name!r} is described differently from config.yaml ({detail}). {fix}"
            raise InputDataError(msg)
        standardised = kind == "image" or spec.get("standardize") or any(
            t.get("standardize") for t in (spec.get("transforms") or {}).values())
        fitted = getattr(preprocessing, "mean_", None)
        if standardised and (fitted is None or name not in fitted or name not in getattr(preprocessing, "scale_", {})):
            msg = (f"{where}: no fitted mean and scale for input {name!r} (mean_ has "
                   f"{sorted(fitted) if fitted is not None else 'nothing'}), but config.yaml standardises it; "
                   f"scores would use mean 0 and scale 1. {fix}")
            raise InputDataError(msg)


#: the files :meth:`Tagger.load` reads from a run directory (a k-fold run: ``folds.json`` and ``folds/<k>/`` too)
RUN_FILES = ("config.yaml", "model.keras", "spec.json", "preprocessing.json")


def _check_preprocessing_file(run: RunDirectory, config: Any) -> RunSpec:
    """The run's spec, after checking that a run trained with ``preprocessing.json`` still has it.

    Raises
    ------
    InputDataError
        Naming the missing files (``preprocessing.json``, ``spec.json``) and saying to copy them.
    """
    spec = load_spec(run.path, config)
    problem = missing_preprocessing(run, spec.preprocessing, config)
    if problem:
        raise InputDataError(problem)
    return spec


class _WholeBatches:
    """Scores blocks of jets (dicts of input arrays) in whole batches, in order.

    The model runs on batches of ``batch_size`` jets, the last one of a call padded to
    full size; blocks cut at event boundaries rarely hold a whole number of batches, so
    the jets short of a full batch at the end of a block wait for the next block, and
    only the last jets of all are scored in a padded batch.
    """

    def __init__(self, score: Any, batch_size: int):
        self.score, self.batch_size = score, batch_size
        self.waiting: list[dict] = []
        self.n_waiting = 0
        self.parts: list[np.ndarray] = []
        self.empty: dict | None = None

    @staticmethod
    def _rows(x: Mapping[str, np.ndarray], start: int, stop: int) -> dict:
        return {k: v[start:stop] for k, v in x.items()}

    def add(self, x: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(x.values()))) if x else 0
        if self.empty is None:
            self.empty = self._rows(x, 0, 0)
        start = 0
        if self.n_waiting:
            start = min(self.batch_size - self.n_waiting, n)
            self.waiting.append(self._rows(x, 0, start))
            self.n_waiting += start
            if self.n_waiting < self.batch_size:
                return
            self._score_waiting()
        whole = start + (n - start) // self.batch_size * self.batch_size
        if whole > start:
            self.parts.append(self.score(self._rows(x, start, whole)))
        if whole < n:
            self.waiting, self.n_waiting = [self._rows(x, whole, n)], n - whole

    def _score_waiting(self) -> None:
        waiting = self.waiting[0] if len(self.waiting) == 1 else {
            k: np.concatenate([w[k] for w in self.waiting]) for k in self.waiting[0]}
        self.parts.append(self.score(waiting))
        self.waiting, self.n_waiting = [], 0

    def scores(self) -> np.ndarray:
        """Every jet's score, in the order added."""
        if self.n_waiting:
            self._score_waiting()
        if not self.parts:
            return self.score(self.empty or {})
        return self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)


class Tagger:
    """A trained tagger: config, model and preprocessing of one run directory.

    Build it with :meth:`load`. The constructor takes the pieces directly (used for
    tests and for future k-fold taggers, which override :meth:`_score`).

    Parameters
    ----------
    config : hepnn.Config
        The run's resolved config.
    model : keras.Model
    preprocessing : hepnn.preprocessing.Preprocessor or None
        The standardisation fitted at training time (``None``: inputs are fed raw).
    classes : list of str, optional
        Class names in output order (default: from the config).
    path : path, optional
        Where the tagger was loaded from (for messages).

    Attributes
    ----------
    config, model, preprocessing, classes
    task : str
        ``binary``, ``multiclass`` or ``autoencoder``.
    inputs : list of str
        The model's input names (``data.inputs`` entries).
    required_branches : list of str
        Branches the input must have (in per-event layout the jet axis and element
        momenta are given with their conventional names ``<collection>_pt/_eta/_phi``).
        For a k-fold tagger with ``data.event_key`` the event-number branch too: without
        it every jet gets the mean of the fold models, including those trained on its event.
    layout : str
        ``per_jet`` or ``per_event``.
    block_entries : int
        :meth:`predict` on more than ``block_entries // 4`` jets works block by block,
        building the next block's inputs while the model scores the current one: the
        blocks grow from ``block_entries // 8`` jets, doubling, to ``block_entries`` (whole
        events for per-event input), so that the model starts early and waits for no
        more than the first small block's inputs.
    keyed_by_position : bool
        Whether a jet's score depends on where it sits in its file (a k-fold tagger whose
        folds are keyed by file name and entry): chunks read elsewhere then go through
        :meth:`predict_chunk`. False here.
    """

    block_entries = 8192
    keyed_by_position = False

    def __init__(self, config: Any, model: Any, preprocessing: Any = None, classes: Sequence[str] | None = None,
                 path: str | os.PathLike | None = None, spec: RunSpec | None = None):
        self.config = config
        self.model = model
        self.preprocessing = preprocessing
        self.spec = spec if spec is not None else RunSpec.from_config(config, classes=list(classes) if classes else None)
        self.classes = list(self.spec.classes)
        self.task = self.spec.task
        self.inputs = list(self.spec.names)
        self.path = Path(path) if path is not None else None
        data = selection_free(config.data)
        # only the inputs the model takes are built (and only their branches are required)
        self._data = dataclasses.replace(data, inputs={n: data.inputs[n] for n in self.inputs if n in data.inputs})
        self.layout = self._data.layout
        self._required_branches = required_branches(self._data)
        if preprocessing is not None:
            _check_preprocessing(preprocessing, self._data, self.path)
        self._plans: dict = {}
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock", None)  # not picklable; a new one on unpickling
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _serial(self) -> Any:
        """The lock around one call's plan and scoring, for taggers whose :meth:`_score` keeps
        per-call state on the instance (a k-fold tagger sets which model and which keys to use in
        :meth:`_plan` and :meth:`_score`): two threads, or a call made between two chunks of
        :meth:`iter_file`, would otherwise score with each other's state. A plain tagger keeps no
        such state: no lock, calls from several threads run at once."""
        if type(self)._score is Tagger._score and type(self)._plan is Tagger._plan:
            return contextlib.nullcontext()
        return self._lock

    @property
    def required_branches(self) -> list[str]:
        """The branches to read (see the class docstring): the inputs', plus the event-number
        branch of a k-fold tagger keyed by ``data.event_key`` (it picks each jet's fold model)."""
        # a property: KFoldTagger sets ``event_key`` after this class's __init__
        names = list(self._required_branches)
        key = getattr(self, "event_key", None)
        if key and key not in names:
            names.append(key)
        return names

    # --- construction -------------------------------------------------------------

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "Tagger":
        """Load ``RUN_DIR/config.yaml``, ``model.keras`` (safe mode) and ``preprocessing.json``.

        Raises
        ------
        HepnnError
            When the run directory has no trained model or config (the message lists the files a
            run directory holds).
        InputDataError
            When the run was trained with a ``preprocessing.json`` that is missing (a run folder
            copied without it): scoring without it would give wrong scores silently. The run
            records it in ``spec.json``; when ``spec.json`` is missing too, ``provenance.json``
            (data read by hepnn's reader, which always saves the preprocessing) and a
            ``config.yaml`` that transforms or standardises an input tell. The message names the
            missing files: copy them from the original run folder. A run trained on hand-built
            arrays has no ``preprocessing.json`` and loads (its inputs are fed raw).
        ValueError
            From Keras safe mode, when the model file would execute code (``Lambda`` layers).

        Examples
        --------
        >>> tagger = Tagger.load("runs/top_dense")   # doctest: +SKIP
        >>> tagger.task, tagger.inputs               # doctest: +SKIP
        ('binary', ['jet'])
        """
        # lazy: import cycle with hepnn.training.kfold
        from .kfold import KFoldTagger, is_kfold_run  # kfold builds on this module: imported on use

        run = RunDirectory(run_dir)
        if is_kfold_run(run_dir):
            return KFoldTagger.load(run_dir)  # checks preprocessing.json as below
        if not run.path.is_dir():
            what = "is a file (a config? load the run directory it was trained into)" if run.path.is_file() else (
                "does not exist")
            msg = f"{run.path}: {what}; Tagger.load takes a run directory written by `hepnn train CONFIG --out RUN_DIR`"
            raise HepnnError(msg)
        if not run.config.is_file() or not run.is_trained():
            hint = runs_instead(run.path)
            if hint:
                msg = f"{run.path}: {hint}; Tagger.load takes one of those"
                raise HepnnError(msg)
            have = sorted(p.name for p in run.path.iterdir()) if run.path.is_dir() else []
            missing = [name for name in ("config.yaml", "model.keras") if not (run.path / name).exists()]
            msg = (
                f"{run.path}: not a trained run directory ({' and '.join(missing)} missing; found: "
                f"{', '.join(have) or 'nothing'}). A run directory holds {', '.join(RUN_FILES)} as `hepnn train` "
                f"writes them (preprocessing.json unless trained on hand-built arrays): copy the whole folder, "
                f"or train it with `hepnn train CONFIG --out {run.path}`"
            )
            raise HepnnError(msg)
        config = load_config(run.config)
        spec = _check_preprocessing_file(run, config)
        model = load_model(run.model)
        preprocessing = Preprocessor.load(run.preprocessing) if run.preprocessing.is_file() else None
        return cls(config, model, preprocessing, path=run.path, spec=spec)

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"Tagger({self.task}, inputs={self.inputs}, layout={self.layout}{where})"

    # --- prediction -----------------------------------------------------------------

    def predict(self, events: Any, *, batch_size: int | None = None) -> Any:
        """One score per jet of ``events``, aligned with the input's jets.

        Parameters
        ----------
        events : awkward record array, dict of arrays, jet collection or dask-awkward array
            As ``uproot`` ``tree.arrays()`` returns (fields named as the config's branches),
            one entry per jet (``per_jet``) or per event (``per_event``). A coffea
            NanoEvents array works too (``events.Jet.pt`` stands for ``Jet_pt``).
            In per-event layout a jet collection works as well: ``events.Jet`` of
            NanoEvents, or a plain ``var * record`` awkward array whose fields are the
            jet variables without the collection prefix (``pt`` for ``Jet_pt``); inputs
            from linked collections (``Track_*``) are taken from the NanoEvents parent
            of an unselected collection (eager or dask), and so is the event number of a
            k-fold tagger keyed by it (``data.event_key``; without it, the mean of the
            folds). A ``dask_awkward.Array`` of any of these gives a lazy result (see Returns).
            No cuts are applied and no label branch is needed.
        batch_size : int, optional
            Prediction batch size (default ``evaluation.batch_size`` of the config).

        Returns
        -------
        numpy.ndarray or awkward.Array
            Per-jet input: ``(n_jets,)`` scores (binary; anomaly score for autoencoders)
            or ``(n_jets, n_classes)`` probabilities (multiclass). Per-event input: an
            awkward array ``n_events * var * float32`` with ``ak.num(scores) ==`` the
            jets per event; multiclass gives records with one field per class.
            For a dask-awkward input, a ``dask_awkward.Array`` with one partition per
            input partition and nothing computed (per-jet multiclass: records with one
            field per class); ``.compute()`` gives what the eager call gives.

        Raises
        ------
        InputDataError
            When a needed branch is missing (naming it, what the tagger needs and the
            nearest available names), or for NaN values and bad links. For a lazy
            input, missing branches are reported when the graph is built.

        Examples
        --------
        >>> scores = tagger.predict(events)          # whole events       # doctest: +SKIP
        >>> scores = tagger.predict(events.Jet)      # NanoEvents jets    # doctest: +SKIP
        >>> lazy = tagger.predict(dask_events.Jet)   # dask: nothing computed yet  # doctest: +SKIP
        >>> lazy.compute()                                                 # doctest: +SKIP
        """
        if _is_dask(events):
            return self._predict_lazy(events, batch_size)
        with self._serial():
            events = self._as_events(events)
            columns = Columns(events)
            return self._predict_columns(events, columns, self._plan(columns.keys(), "events"), "events", batch_size)

    def predict_chunk(self, events: Any, path: str | os.PathLike, entry_start: int = 0, *,
                      batch_size: int | None = None) -> Any:
        """:meth:`predict` on entries ``entry_start, entry_start + 1, ...`` of the file ``path``.

        For a chunk a caller read itself (a Dask partition, an ``uproot.iterate`` step):
        the scores are those of :meth:`predict`, except that a k-fold tagger whose folds
        are keyed by file position (no ``data.event_key``) can then score each jet with
        the model of its own fold, as :meth:`predict_file` does, instead of the average of
        all folds. Only the file's name (not its folder) enters the fold key.

        Examples
        --------
        >>> for chunk, report in uproot.iterate("ttbar.root:Events", report=True):  # doctest: +SKIP
        ...     scores = tagger.predict_chunk(chunk, "ttbar.root", report.start)
        """
        with self._serial():
            events = self._as_events(events)
            columns = Columns(events)
            path = os.fspath(path)
            return self._predict_columns(events, columns, self._plan(columns.keys(), path), path, batch_size,
                                         int(entry_start))

    def _predict_columns(self, events: Any, columns: Any, plan: Any, path: str, batch_size: int | None,
                         entry_start: int = 0) -> Any:
        """:meth:`predict` on ``events`` (as ``columns``) with a resolved reading ``plan``; ``entry_start``:
        the file entry of ``events``' first entry (a chunk of a file)."""
        # Large inputs go block by block: the next block's inputs are built in a background
        # thread while the model scores this one (numpy and TensorFlow release the GIL), and
        # every block's temporary arrays stay small (the time per jet does not grow with the input).
        blocks = self._blocks(plan, columns)

        def prepared() -> Iterator[tuple[dict, Any]]:
            for start, stop in blocks:
                part = columns if len(blocks) == 1 else Columns(_slice(events, start, stop))
                counts = jets_per_entry(plan, part) if self.layout == "per_event" else None
                # entries counted from the file's: the k-fold key of a hash-keyed run is the reader's
                raw = represent(self._data, part, path, plan=plan, entry_start=entry_start + start)
                x = self._tensors(raw)  # the saved preprocessing too, in the read-ahead thread
                if "fold_key" in raw:
                    x["fold_key"] = raw["fold_key"]
                yield x, counts

        batch_size = self.config.evaluation.batch_size if batch_size is None else check_batch_size(batch_size)
        scorer = _WholeBatches(lambda x: self._score(x, batch_size=batch_size, preprocessed=True), batch_size)
        counts = []
        for x, block_counts in read_ahead(prepared(), 1 if len(blocks) > 1 else 0, count_wait=False):
            scorer.add(x)
            counts.append(block_counts)
        scores = scorer.scores()
        if self.layout == "per_event":
            return self._jagged(scores, counts[0] if len(counts) == 1 else np.concatenate(counts))
        return scores

    def _blocks(self, plan: Any, columns: Any) -> list[tuple[int, int]]:
        """Entry ranges of growing size (see ``block_entries``); one range for a few jets."""
        n = len(columns)
        block = max(self.block_entries, 1)
        first = max(block // 8, 1)
        if self.layout != "per_event":
            if n <= 2 * first:
                return [(0, n)]
            edges = _ramp(n, first, block)
            return list(zip(edges[:-1], edges[1:]))
        jets = np.cumsum(jets_per_entry(plan, columns)) if n else np.zeros(0, np.int64)
        if not n or jets[-1] <= 2 * first:
            return [(0, n)]
        # the first entry after each block's jet count starts the next block (whole events)
        starts = np.unique(np.searchsorted(jets, _ramp(int(jets[-1]), first, block)[1:-1], side="left") + 1)
        edges = [0, *[int(e) for e in starts if 0 < e < n], n]
        return list(zip(edges[:-1], edges[1:]))

    def _as_events(self, events: Any) -> Any:
        """Events (or a dict of branches) for :meth:`predict`; a jet collection is mapped to branches.

        ``events.Jet`` becomes ``{"Jet_pt": events.Jet.pt, ...}`` (no copy). When the
        tagger also needs linked collections, or is a k-fold tagger keyed by the event number
        (``data.event_key``), a NanoEvents collection that holds every jet of its events is
        replaced by its parent events (same jets, same order).
        """
        import awkward as ak

        if not _is_collection(events):
            return events
        name = _collection_name(events) or self._data.jets
        if self.layout != "per_event":
            msg = (
                f"received a jet collection ({name}: {events.type}) but this tagger was trained on "
                "per-jet trees (one entry per jet, data.layout: per_jet); pass those arrays, e.g. "
                "tagger.predict(ak.flatten(jets)) with fields named as the config's branches"
            )
            raise InputDataError(msg)
        prefix = self._data.jets
        branches = {f"{prefix}_{field}": events[field] for field in events.fields
                    if not ak.fields(events[field])}  # nested records (cross-references) are skipped
        try:
            self._plan(list(branches), f"<collection {name}>")
        except InputDataError as err:
            parent = self._parent_events(events, name)
            if parent is None:
                msg = (
                    f"{err}\nA jet collection carries only its own fields ({prefix}_*); the tagger also reads "
                    f"linked collections: pass the whole events array (tagger.predict(events)) or, with coffea "
                    f"NanoEvents, the collection before any jet selection (tagger.predict(events.{name}))"
                )
                raise InputDataError(msg) from None
            return parent
        key = getattr(self, "event_key", None)  # a k-fold tagger keyed by the event number
        if key and key not in branches:
            parent = self._parent_events(events, name)
            if parent is not None and key in parent.fields:
                return parent  # its event numbers pick each jet's fold model (else: the mean of the folds)
        return branches

    @staticmethod
    def _parent_events(jets: Any, name: str) -> Any:
        """The NanoEvents events ``jets`` came from, when ``jets`` is all of ``events.<name>``; else None."""
        import awkward as ak

        if ak.backend(jets) == "typetracer":
            return None
        try:
            parent = jets._events()
            full = parent[name]
        except Exception:  # noqa: BLE001 - plain awkward arrays have no parent
            return None
        if len(full) != len(jets) or not ak.all(ak.num(full, axis=1) == ak.num(jets, axis=1)):
            return None
        return parent

    def _predict_lazy(self, events: Any, batch_size: int | None) -> Any:
        """``dask_awkward.map_partitions`` of :meth:`predict`: a lazy array, nothing computed."""
        dak = require("dask_awkward", extra="dask")
        events = self._lazy_events(events)
        scorer = _PartitionScorer(self, batch_size)
        meta = scorer(events._meta)  # typetracer pass: checks the branches, gives the output type
        return dak.map_partitions(scorer, events, meta=meta, label="hepnn-tagger")

    def _lazy_events(self, events: Any) -> Any:
        """A dask NanoEvents jet collection whose inputs include linked collections -> its dask events.

        As for eager arrays, the parent events stand in for ``events.<name>`` only when the
        collection is all of it: lazily, when its graph key is that of ``events.<name>``
        (no selection applied). Otherwise the typetracer pass raises the error saying what to pass.
        """
        meta = events._meta
        if self.layout != "per_event" or not _is_collection(meta):
            return events
        try:
            self._as_events(meta)
            if not getattr(self, "event_key", None):
                return events  # the collection's own fields are all the tagger reads
            # a k-fold tagger keyed by the event number: the parent events carry it
        except InputDataError:
            pass
        parent = (getattr(events, "attrs", None) or {}).get("@original_array")
        name = _collection_name(meta) or self._data.jets
        if _is_dask(parent) and name in parent.fields and parent[name].name == events.name:
            return parent
        return events

    def _empty_scores(self) -> Any:
        """Scores of no jets, with the output type of :meth:`predict` as an awkward array."""
        width = len(self.classes) if self.task == "multiclass" else 0
        empty = np.zeros((0, width) if width else (0,), dtype=np.float32)
        if self.layout == "per_event":
            return self._jagged(empty, np.zeros(0, dtype=np.int64))
        return self._awkward(empty)

    def _awkward(self, scores: np.ndarray) -> Any:
        """Per-jet scores as an awkward array (multiclass: one field per class)."""
        import awkward as ak

        if scores.ndim == 2:
            names = self.classes if len(self.classes) == scores.shape[1] else [f"class_{i}" for i in range(scores.shape[1])]
            return ak.zip({name: scores[:, i] for i, name in enumerate(names)})
        return ak.Array(scores)

    def predict_numpy(self, arrays: Mapping[str, np.ndarray], *, preprocessed: bool = False,
                      batch_size: int | None = None) -> np.ndarray:
        """Scores for ready model tensors keyed by input name (``<input>_mask`` optional).

        Parameters
        ----------
        arrays : dict of numpy arrays
            As :func:`hepnn.io.load` returns them with ``standardize=False`` (or the
            standardised tensors with ``preprocessed=True``).
        preprocessed : bool
            The arrays are already standardised: skip the preprocessing.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` or ``(n, n_classes)``.

        Raises
        ------
        hepnn.exceptions.InputDataError
            For a missing input, an array whose per-jet shape is not the one its
            ``data.inputs`` entry defines (variables, ``max_length``, image size), arrays
            with different numbers of jets, or NaN/infinite values where the run's
            ``data.on_nan`` is ``error`` (with ``replace`` they become ``data.nan_value``,
            as the reader does).
        """
        missing = [n for n in self.inputs if n not in arrays]
        if missing:
            msg = (
                f"predict_numpy: missing input array(s) {missing}; the model takes {self.inputs} "
                f"(received keys: {sorted(arrays)})"
            )
            raise InputDataError(msg)
        with self._serial():
            return self._score(self._checked_arrays(arrays), batch_size=batch_size, preprocessed=preprocessed)

    def _checked_arrays(self, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``predict_numpy``'s arrays as float32 (masks bool), checked against the run's inputs.

        Each input must have the per-jet shape its ``data.inputs`` entry gives (variables,
        ``max_length``, image size), every array the same number of jets, and its values the
        run's NaN policy (``data.on_nan``): an error, or ``data.nan_value`` in their place.
        """
        data, out, n_jets = self.config.data, dict(arrays), {}  # other arrays (fold_key) pass through
        for name in self.inputs:
            inp = data.inputs.get(name)
            expected = input_kind(inp).tensors(name, inp) if inp is not None else {name: (None, "float32")}
            for key, (shape, dtype) in expected.items():
                if key not in arrays:
                    continue  # a mask may be absent: rebuilt from the pad value
                try:
                    x = np.asarray(arrays[key], dtype=dtype)
                except (TypeError, ValueError) as err:
                    msg = (f"predict_numpy: array {key!r} is not a regular {dtype} array ({err}); "
                           "give one numpy array per input, padded to the same shape for every jet")
                    raise InputDataError(msg) from None
                if shape is not None and x.shape[1:] != tuple(shape):
                    msg = (
                        f"predict_numpy: array {key!r} has shape {x.shape}, expected (n_jets, "
                        f"{', '.join(map(str, shape))}) as data.inputs.{name} defines it"
                        + (f" (variables {input_kind(inp).feature_names(inp)})" if inp is not None else "")
                        + ("; one jet needs the jet axis too: x[None]" if x.shape == tuple(shape) else
                           "; build it with hepnn.io.load(..., standardize=False) or Tagger.tensors")
                    )
                    raise InputDataError(msg)
                if dtype == "float32":
                    x = self._finite_values(x, key, inp)
                out[key], n_jets[key] = x, len(x) if x.ndim else 0
        if len(set(n_jets.values())) > 1:
            msg = f"predict_numpy: the arrays hold different numbers of jets: {n_jets}"
            raise InputDataError(msg)
        return out

    def _finite_values(self, x: np.ndarray, key: str, inp: Any) -> np.ndarray:
        """``x`` after the run's NaN policy: NaN or infinite values are an error or replaced."""
        finite = np.isfinite(x)
        if finite.all():
            return x
        data = self.config.data
        if data.on_nan == "replace":
            return np.where(finite, x, np.float32(data.nan_value))
        bad = ~finite
        names = input_kind(inp).feature_names(inp) if inp is not None else []
        columns = np.flatnonzero(bad.reshape(-1, x.shape[-1]).any(axis=0)) if x.ndim > 1 else []
        which = [names[c] if c < len(names) else str(c) for c in columns]
        msg = (
            f"predict_numpy: array {key!r} has {int(bad.sum())} NaN or infinite values"
            + (f" (in {', '.join(which)})" if which else "")
            + "; fix the input, or train with data.on_nan: replace (and data.nan_value)"
        )
        raise InputDataError(msg)

    def tensors(self, events: Any) -> dict[str, np.ndarray]:
        """The model's input tensors for every jet of ``events``: what :meth:`predict` feeds the model.

        The reader's representation (:meth:`represent`) and the saved preprocessing, as
        float32 numpy arrays keyed by the model's input names, one row per jet (per-event
        input: the jets of all events, event after event). ``self.model`` or
        :func:`hepnn.models.inference.predict` on them gives the scores :meth:`predict`
        returns (flat); use it to time or check the forward pass apart from input building.

        Parameters
        ----------
        events : awkward record array, dict of arrays or jet collection
            As for :meth:`predict` (eager arrays only).

        Returns
        -------
        dict of numpy.ndarray

        Examples
        --------
        >>> x = tagger.tensors(events)                               # doctest: +SKIP
        >>> scores = tagger.model.predict(x, batch_size=1024)        # doctest: +SKIP
        """
        if _is_dask(events):
            msg = "Tagger.tensors: received a dask-awkward array; compute it first or use predict (lazy)"
            raise InputDataError(msg)
        with self._serial():  # _plan sets a k-fold tagger's per-call state
            columns = Columns(self._as_events(events))
            plan = self._plan(columns.keys(), "events")
        return self._tensors(represent(self._data, columns, "events", plan=plan))

    # --- file-level reading: hepnn.scale.files (kept here so old calls work) --------------

    def predict_file(self, paths: str | os.PathLike | Sequence[str | os.PathLike], tree: str | None = None,
                     step_size: Any = "100 MB", *, batch_size: int | None = None) -> Any:
        """Scores for every jet of one or more ROOT files, read chunk by chunk.

        As :func:`hepnn.scale.files.predict_file` (only the branches the tagger needs are read,
        ``step_size`` at a time; for a list of paths, a list of results), each chunk scored
        by :meth:`predict` block by block, so the time per jet stays the same from small
        files to large ones.
        """
        single = isinstance(paths, (str, os.PathLike))
        results = []
        for path in [paths] if single else list(paths):
            parts = [scores for _, scores in self.iter_file(path, tree, step_size, batch_size=batch_size)]
            results.append(self._concatenate(parts))
        return results[0] if single else results

    def iter_file(self, path: str | os.PathLike, tree: str | None = None, step_size: Any = "100 MB", *,
                  batch_size: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(first entry, scores)`` per chunk of one file (see :meth:`predict_file`)."""
        # lazy: import cycle with hepnn.scale
        from ..scale import files

        problem = step_size_problem(step_size)
        if problem:
            raise ConfigError(f"step_size: {problem}")
        path = os.fspath(path)
        source = SourceFile(path, files.tree_name(self, path, tree), 0, 0, 1.0)
        handle = open_tree(source)
        keys = tree_keys(handle)
        with self._serial():
            read = self._plan(keys, path, source.tree).read_list()
        for arrays, entry_start in iterate_tree(source, handle, read, step_size, align_clusters=True):
            with self._serial():
                # the plan again per chunk (cached): a k-fold tagger's per-call state, which a call
                # made between two chunks (or from another thread) may have changed, is this file's
                plan = self._plan(keys, path, source.tree)
                scores = self._predict_columns(arrays, Columns(arrays), plan, path, batch_size, entry_start)
            yield entry_start, scores

    def predict_dask(self, files: str | os.PathLike | Sequence[str | os.PathLike], *, tree: str | None = None,
                     step_size: Any = "100 MB", batch_size: int | None = None) -> Any:
        """Lazy scores for many files, a ``dask_awkward.Array``: :func:`hepnn.scale.files.predict_dask`.

        Examples
        --------
        >>> lazy = tagger.predict_dask(["a.root", "b.root"])    # doctest: +SKIP
        >>> scores = lazy.compute()                             # doctest: +SKIP
        """
        # lazy: import cycle with hepnn.scale
        from ..scale.files import predict_dask

        return predict_dask(self, files, tree=tree, step_size=step_size, batch_size=batch_size)

    # --- arrays in, arrays out: the pieces the file drivers use --------------------------

    def plan(self, keys: list[str], path: str, tree: str = "<memory>") -> Any:
        """The reading plan of this tagger's inputs against the branch names ``keys`` (cached).

        Raises
        ------
        InputDataError
            Naming the missing branches, what the tagger needs and the run directory.
        """
        return self._plan(keys, path, tree)

    def represent(self, columns: Any, path: str = "<memory>", *, plan: Any = None,
                  entry_start: int = 0) -> dict[str, np.ndarray]:
        """The model's input arrays (before preprocessing) for every jet of ``columns``
        (``entry_start``: the file entry of its first entry, see :func:`hepnn.io.represent.represent`)."""
        return represent(self._data, columns, path, plan=plan, entry_start=entry_start)

    def jagged(self, scores: np.ndarray, counts: np.ndarray) -> Any:
        """Per-jet ``scores`` as an awkward array with ``counts`` jets per event."""
        return self._jagged(scores, counts)

    def concatenate(self, parts: list) -> Any:
        """Scores of consecutive chunks as one result (an empty one of the right type for no chunk)."""
        return self._concatenate(parts)

    # --- pieces (override points) -----------------------------------------------------

    def _plan(self, keys: list[str], path: str, tree: str = "<memory>"):
        key = (tuple(keys), path)
        plan = self._plans.get(key)
        if plan is None:
            try:
                plan = plan_for(self._data, keys, path, tree)
            except InputDataError as err:
                where = f" (run {self.path})" if self.path else ""
                raise InputDataError(f"{err}{where}") from err
            if len(self._plans) > 16:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _tensors(self, tensors: Mapping[str, np.ndarray], preprocessed: bool = False) -> dict[str, np.ndarray]:
        """Model inputs after the saved preprocessing (masks rebuilt from pad values if absent)."""
        x = {}
        transform = not preprocessed and self.preprocessing is not None
        for name in self.inputs:
            x[name] = np.asarray(tensors[name], dtype=np.float32)
            inp = self.config.data.inputs.get(name)
            if transform and inp is not None and input_kind(inp).masked:  # the masks serve the preprocessing
                mask = tensors.get(f"{name}_mask")
                if mask is None:
                    mask = np.any(x[name] != np.float32(input_kind(inp).pad_value(inp)), axis=-1)
                x[f"{name}_mask"] = np.asarray(mask, dtype=bool)
        if transform:
            x = self.preprocessing.transform(x)
        return {name: np.asarray(x[name], dtype=np.float32) for name in self.inputs}

    def _score(self, tensors: Mapping[str, np.ndarray], *, batch_size: int | None = None,
               preprocessed: bool = False) -> np.ndarray:
        """Scores from the representation's arrays: preprocessing, then the model.

        A k-fold tagger overrides this (e.g. to pick the fold model per jet).
        """
        x = self._tensors(tensors, preprocessed)
        n = len(next(iter(x.values()))) if x else 0
        batch_size = self.config.evaluation.batch_size if batch_size is None else check_batch_size(batch_size)
        if n == 0:
            width = len(self.classes) if self.task == "multiclass" else 0
            return np.zeros((0, width) if width else (0,), dtype=np.float32)
        if self.task == "autoencoder":
            return np.asarray(anomaly_score(self.model, x, batch_size=batch_size), dtype=np.float32)
        out = np.asarray(self._forward(x, batch_size), dtype=np.float32)
        if self.task == "binary":
            return out.reshape(n)
        return out

    def _forward(self, x: Mapping[str, np.ndarray], batch_size: int) -> np.ndarray:
        return predict(self.model, x, batch_size=batch_size)

    def _jagged(self, scores: np.ndarray, counts: np.ndarray) -> Any:
        import awkward as ak

        return ak.unflatten(self._awkward(scores) if scores.ndim == 2 else scores, counts)

    def _concatenate(self, parts: list) -> Any:
        if self.layout == "per_event":
            import awkward as ak

            if parts:
                return ak.concatenate(parts)
            return ak.unflatten(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        if not parts:
            width = len(self.classes) if self.task == "multiclass" else 0
            return np.zeros((0, width) if width else (0,), dtype=np.float32)
        return np.concatenate(parts)



_TAGGERS: dict = {}


class _PartitionScorer:
    """Scores one partition of a dask-awkward array with :meth:`Tagger.predict` (picklable).

    On a typetracer partition (graph building, column projection) it touches exactly the
    branches the tagger reads and returns the output type; on real data it scores. Pickled
    (distributed workers), it carries the run directory and the fingerprint of its files, and
    loads the tagger once per process and version of the run: a run trained again in the same
    directory is loaded again, not scored with the model a worker kept from before.
    """

    def __init__(self, tagger: Tagger, batch_size: int | None):
        self.tagger = tagger
        self.batch_size = batch_size
        self.fingerprint = None
        if tagger.path is not None:
            # lazy: import cycle with hepnn.scale
            from ..scale.files import run_fingerprint

            self.fingerprint = run_fingerprint(tagger.path)

    def __getstate__(self) -> dict:
        if self.tagger.path is None:
            return dict(self.__dict__)
        return {"path": os.path.abspath(self.tagger.path), "fingerprint": self.fingerprint,
                "batch_size": self.batch_size}

    def __setstate__(self, state: dict) -> None:
        if "path" in state:
            key = (state["path"], state.get("fingerprint"))
            if key not in _TAGGERS:
                for old in [k for k in _TAGGERS if k[0] == key[0]]:
                    del _TAGGERS[old]  # an older version of the run: free its model
                _TAGGERS[key] = Tagger.load(key[0])
            state = {"tagger": _TAGGERS[key], "fingerprint": key[1], "batch_size": state["batch_size"]}
        self.__dict__.update(state)

    def __call__(self, events: Any) -> Any:
        import awkward as ak

        tagger = self.tagger
        if ak.backend(events) == "typetracer":
            with tagger._serial():  # _plan sets a k-fold tagger's per-call state
                columns = Columns(tagger._as_events(events))
                plan = tagger._plan(columns.keys(), "<dask-awkward>")
            for name in plan.read_list():
                ak.typetracer.touch_data(columns[name])
            return ak.Array(tagger._empty_scores().layout.to_typetracer(forget_length=True))
        scores = tagger.predict(events, batch_size=self.batch_size)
        return scores if tagger.layout == "per_event" else tagger._awkward(np.asarray(scores, dtype=np.float32))
