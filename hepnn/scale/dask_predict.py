"""``Tagger.predict_dask``: lazy scores for many files as a ``dask_awkward.Array``.

The events are read lazily with ``uproot.dask`` (only the branches the tagger needs, one
partition per file chunk) and scored by ``dask_awkward.map_partitions``; the function
applied to each partition loads the tagger once per worker process (the cache of
:mod:`hepnn.scale.predict`), so shipping a task never ships the model.

Examples
--------
>>> scores = tagger.predict_dask(["a.root", "b.root"])   # doctest: +SKIP
>>> scores.npartitions                                    # doctest: +SKIP
2
>>> scores.compute()   # per-event: n_events * var * float32, files concatenated in order   # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Sequence

__all__ = ["predict_dask"]


class _PartitionScorer:
    """Picklable callable: scores one partition with the tagger cached in the worker."""

    def __init__(self, run_dir: str, fingerprint: str, layout: str, classes: list[str], multiclass: bool,
                 batch_size: int | None):
        self.run_dir = run_dir
        self.fingerprint = fingerprint
        self.layout = layout
        self.classes = classes
        self.multiclass = multiclass
        self.batch_size = batch_size

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

    def __call__(self, events: Any) -> Any:
        import awkward as ak
        import numpy as np

        if ak.backend(events) == "typetracer":  # graph building / column projection
            for field in events.fields:
                ak.typetracer.touch_data(events[field])
            return self.meta()
        from .predict import get_tagger

        tagger = get_tagger(self.run_dir, self.fingerprint)
        scores = tagger.predict(events, batch_size=self.batch_size)
        if self.layout == "per_event":
            return scores
        scores = np.asarray(scores, dtype=np.float32)
        if self.multiclass:
            return ak.zip({c: scores[:, i] for i, c in enumerate(self.classes)})
        return ak.Array(scores)


def predict_dask(tagger: Any, files: str | os.PathLike | Sequence[str | os.PathLike], *, tree: str | None = None,
                 step_size: Any = "100 MB", batch_size: int | None = None) -> Any:
    """Lazy scores of every jet in ``files``: a ``dask_awkward.Array`` (see :meth:`hepnn.Tagger.predict_dask`)."""
    from .._optional import require
    from ..exceptions import HepnnError
    from .predict import run_fingerprint

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
    sources = {p: tagger._tree_name(p, tree) for p in paths}
    events = uproot.dask(sources, filter_name=list(tagger.required_branches), step_size=step_size)
    run_dir = os.path.abspath(tagger.path)
    scorer = _PartitionScorer(run_dir, run_fingerprint(run_dir), tagger.layout, list(tagger.classes),
                              tagger.task == "multiclass", batch_size)
    return dak.map_partitions(scorer, events, meta=scorer.meta(), label="hepnn-scores")
