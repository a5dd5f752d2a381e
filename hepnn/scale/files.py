"""File drivers of a :class:`hepnn.Tagger`: scores for whole ROOT files, eagerly or lazily.

The tagger itself takes arrays and returns arrays (:meth:`hepnn.Tagger.predict`); these
functions read files for it, as uproot keeps in-memory ``arrays`` apart from the
file-level ``iterate`` and ``dask``:

- :func:`tree_name`: the tree to read in a file (the config's, or the only one);
- :func:`iter_file`: ``(first entry, scores)`` per chunk, memory bounded by the chunk;
- :func:`predict_file`: the scores of whole files;
- :func:`predict_dask`: lazy scores of many files as a ``dask_awkward.Array``;
- :func:`cached_tagger`: the tagger of a run directory, loaded once per (worker) process.

``Tagger.predict_dask`` delegates here; :func:`iter_file` and :func:`predict_file` give
what the tagger's own ``iter_file`` and ``predict_file`` give.
This module imports nothing from :mod:`hepnn.training`: the tagger is passed in.

Examples
--------
>>> from hepnn.scale.files import predict_file
>>> scores = predict_file(tagger, "ttbar.root")                  # doctest: +SKIP
>>> for entry_start, part in iter_file(tagger, "ttbar.root"):    # doctest: +SKIP
...     pass
"""

from __future__ import annotations

import bisect
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .._optional import require
from ..exceptions import HepnnError

__all__ = ["tree_name", "iter_file", "predict_file", "predict_dask", "cached_tagger", "run_fingerprint", "LOAD_COUNTS"]

#: per worker process: (run_dir, fingerprint) -> Tagger
_TAGGERS: dict[tuple[str, str], Any] = {}
#: per worker process: run_dir -> number of Tagger.load calls (for tests and diagnostics)
LOAD_COUNTS: dict[str, int] = {}


def run_fingerprint(run_dir: str | os.PathLike) -> str:
    """``sha256:<hex>`` over the run's config, model and preprocessing files (k-fold runs: every fold's model)."""
    run = Path(run_dir)
    digest = hashlib.sha256()
    folds = sorted((p.relative_to(run).as_posix() for p in run.glob("folds/*/model.keras")),
                   key=lambda name: int(name.split("/")[1]) if name.split("/")[1].isdigit() else -1)
    for name in ("config.yaml", "model.keras", "preprocessing.json", "folds.json", *folds):
        path = run / name
        if not path.is_file():
            continue
        digest.update(name.encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def cached_tagger(run_dir: str, fingerprint: str | None, load: Callable[[str], Any],
                  before_load: Callable[[], None] | None = None) -> Any:
    """The tagger of ``run_dir`` from ``load(run_dir)``, loaded once per process (one run at a time)."""
    key = (os.path.abspath(run_dir), fingerprint or "")
    tagger = _TAGGERS.get(key)
    if tagger is None:
        if before_load is not None:
            before_load()
        tagger = load(run_dir)
        _TAGGERS.clear()  # one run at a time per worker: free the previous model
        _TAGGERS[key] = tagger
        LOAD_COUNTS[key[0]] = LOAD_COUNTS.get(key[0], 0) + 1
    return tagger


def tree_name(tagger: Any, path: str | os.PathLike, tree: str | None = None) -> str:
    """The tree to read in ``path``: ``tree`` if given, else the tree of the config's file groups
    found in the file, else the file's only tree, else the config's first (or the layout's default)."""
    if tree is not None:
        return tree
    import uproot

    wanted = [g.tree for g in tagger.config.data.files]
    try:
        with uproot.open(os.fspath(path)) as file:
            classes = file.classnames(cycle=False)
    except Exception:  # noqa: BLE001 - open_tree reports unreadable files properly
        return wanted[0] if wanted else "Events"
    trees = [k for k, c in classes.items() if "TTree" in c or "RNTuple" in c]
    for name in wanted:
        if name in trees:
            return name
    if len(trees) == 1:
        return trees[0]
    return wanted[0] if wanted else ("Events" if tagger.layout == "per_event" else "jets")


def iter_file(tagger: Any, path: str | os.PathLike, tree: str | None = None, step_size: Any = "100 MB", *,
              batch_size: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(first entry, scores)`` per chunk of one file (see :func:`predict_file`).

    The tagger's own reading, :meth:`hepnn.Tagger.iter_file`: entries are counted from the
    file's first, so a k-fold tagger scores each jet with the model of its fold.
    """
    yield from tagger.iter_file(path, tree, step_size, batch_size=batch_size)


def predict_file(tagger: Any, paths: str | os.PathLike | Sequence[str | os.PathLike], tree: str | None = None,
                 step_size: Any = "100 MB", *, batch_size: int | None = None) -> Any:
    """Scores for every jet of one or more ROOT files, read chunk by chunk.

    Only the branches the tagger needs are read, ``step_size`` at a time
    (``uproot.iterate`` semantics), so memory stays bounded by the chunk size plus
    the scores.

    Parameters
    ----------
    tagger : hepnn.Tagger
    paths : path or list of paths
    tree : str, optional
        Tree name (default: :func:`tree_name`).
    step_size : int or str
        Entries or bytes per chunk.

    Returns
    -------
    numpy.ndarray or awkward.Array, or a list of them
        For one path, what :meth:`hepnn.Tagger.predict` returns for the whole file; for a
        list of paths, a list with one result per path as listed (a file listed twice is scored
        twice), as :func:`predict_dask` concatenates them.
    """
    single = isinstance(paths, (str, os.PathLike))
    results = []
    for path in [paths] if single else list(paths):
        parts = [scores for _, scores in iter_file(tagger, path, tree, step_size, batch_size=batch_size)]
        results.append(tagger.concatenate(parts))
    return results[0] if single else results


class _PartitionScorer:
    """Picklable callable: scores one partition with the tagger cached in the worker.

    ``load`` is the tagger class's ``load`` (pickled by reference), so this module never
    imports the training layer.
    """

    def __init__(self, run_dir: str, fingerprint: str, layout: str, classes: list[str], multiclass: bool,
                 batch_size: int | None, load: Callable[[str], Any]):
        self.run_dir = run_dir
        self.fingerprint = fingerprint
        self.layout = layout
        self.classes = classes
        self.multiclass = multiclass
        self.batch_size = batch_size
        self.load = load

    def empty(self) -> Any:
        import awkward as ak
        import numpy as np

        flat = np.zeros(0, np.float32)
        if self.multiclass:
            flat = ak.zip({c: flat for c in self.classes})
        if self.layout == "per_event":
            return ak.unflatten(flat, np.zeros(0, np.int64))
        return ak.Array(flat)

    def meta(self) -> Any:
        import awkward as ak

        return ak.Array(self.empty().layout.to_typetracer(forget_length=True))

    def __call__(self, events: Any, position: Any = None) -> Any:
        import awkward as ak
        import numpy as np

        if ak.backend(events) == "typetracer":  # graph building / column projection
            for field in events.fields:
                ak.typetracer.touch_data(events[field])
            if position is not None:
                ak.typetracer.touch_data(position)
            return self.meta()
        tagger = cached_tagger(self.run_dir, self.fingerprint, self.load)
        if position is None or not hasattr(tagger, "predict_chunk"):
            scores = tagger.predict(events, batch_size=self.batch_size)
        else:  # the partition's file and first entry: a k-fold tagger picks each jet's fold model
            scores = tagger.predict_chunk(events, str(position["path"][0]), int(position["start"][0]),
                                          batch_size=self.batch_size)
        if self.layout == "per_event":
            return scores
        scores = np.asarray(scores, dtype=np.float32)
        if self.multiclass:
            return ak.zip({c: scores[:, i] for i, c in enumerate(self.classes)})
        return ak.Array(scores)


def _loader(tagger: Any) -> Callable[[str], Any]:
    """``load`` of the nearest module-level class of ``tagger`` (picklable by reference;
    ``Tagger.load`` itself recognises k-fold runs)."""
    for cls in type(tagger).__mro__:
        if "<locals>" not in cls.__qualname__ and callable(getattr(cls, "load", None)):
            return cls.load
    msg = f"predict_dask: {type(tagger).__name__} has no load(run_dir) to rebuild it on workers"
    raise HepnnError(msg)


def predict_dask(tagger: Any, files: str | os.PathLike | Sequence[str | os.PathLike], *, tree: str | None = None,
                 step_size: Any = "100 MB", batch_size: int | None = None) -> Any:
    """Lazy scores of every jet in ``files``: a ``dask_awkward.Array`` (needs ``pip install hepnn[dask]``).

    The files are read with ``uproot.dask`` (only the tagger's ``required_branches``, one
    partition per chunk) and each partition is scored by a function that loads the run's
    tagger once per Dask worker process. ``.compute()`` gives what
    :meth:`hepnn.Tagger.predict_file` gives for the files concatenated in order (per-jet
    multiclass: records with one field per class): one row per entry of every file in the
    list as given, so a file listed twice is scored twice and every row lines up with the
    concatenated input (``predict_file`` returns one result per listed file, also twice). A k-fold tagger keyed by file position
    (``keyed_by_position``) scores each partition knowing its file and first entry
    (:meth:`hepnn.Tagger.predict_chunk`), so every jet gets its own fold's model. To write one friend file per input
    instead, use :func:`hepnn.scale.predict_files` or ``hepnn predict``.

    Examples
    --------
    >>> lazy = predict_dask(tagger, ["a.root", "b.root"])    # doctest: +SKIP
    >>> scores = lazy.compute()                              # doctest: +SKIP
    """
    require("dask", extra="dask")
    dak = require("dask_awkward", extra="dask")
    import uproot

    if tagger.path is None:
        msg = "predict_dask needs a tagger loaded from a run directory (hepnn.Tagger.load(RUN_DIR)), so workers can load it"
        raise HepnnError(msg)
    paths = [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else [os.fspath(f) for f in files]
    paths = [p if "://" in p else os.path.abspath(p) for p in paths]  # workers may run in another directory
    if not paths:
        msg = "predict_dask: no input files given"
        raise ValueError(msg)
    trees = {p: tree_name(tagger, p, tree) for p in dict.fromkeys(paths)}
    sources = [(p, trees[p]) for p in paths]  # a file given twice is read (and scored) twice, as predict_file does
    events = uproot.dask([{p: t} for p, t in sources], filter_name=list(tagger.required_branches),
                         step_size=step_size)
    run_dir = os.path.abspath(tagger.path)
    scorer = _PartitionScorer(run_dir, run_fingerprint(run_dir), tagger.layout, list(tagger.classes),
                              tagger.task == "multiclass", batch_size, _loader(tagger))
    # the partitions' files and first entries, for a tagger whose scores depend on them (k-fold keyed
    # by file position); found by opening every file once more, so only then
    starts = _partition_starts(sources, events.divisions) if getattr(tagger, "keyed_by_position", False) else None
    if starts is None or len(starts) != events.npartitions:
        return dak.map_partitions(scorer, events, meta=scorer.meta(), label="hepnn-scores")
    positions = dak.from_map(_Position(), starts, label="hepnn-positions", meta=_Position.meta())
    return dak.map_partitions(scorer, events, positions, meta=scorer.meta(), label="hepnn-scores")


def _partition_starts(sources: list[tuple[str, str]], divisions: tuple | None) -> list[tuple[str, int]] | None:
    """``(file, first entry in that file)`` of each partition ``uproot.dask`` made of ``sources``
    (``(path, tree)`` in order, a file given twice listed twice).

    ``divisions`` count entries over all files in order (a partition never spans two
    files); None when they are unknown.
    """
    import uproot

    if not divisions or any(d is None for d in divisions):
        return None
    firsts, total, entries = [], 0, {}
    for source in sources:
        firsts.append(total)
        if source not in entries:
            with uproot.open(source[0]) as handle:
                entries[source] = int(handle[source[1]].num_entries)
        total += entries[source]
    paths = [path for path, _ in sources]
    out = []
    for start in divisions[:-1]:
        k = bisect.bisect_right(firsts, int(start)) - 1  # files without entries have no partition
        out.append((paths[k], int(start) - firsts[k]))
    return out


class _Position:
    """Picklable: one partition's ``{"path", "start"}`` as a one-entry awkward array."""

    def __call__(self, position: tuple[str, int]) -> Any:
        import awkward as ak

        return ak.Array([{"path": position[0], "start": position[1]}])

    @staticmethod
    def meta() -> Any:
        import awkward as ak

        return ak.Array(ak.Array([{"path": "", "start": 0}]).layout.to_typetracer(forget_length=True))
