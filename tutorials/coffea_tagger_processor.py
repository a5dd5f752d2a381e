"""Run a trained hepnn tagger inside a coffea 2025 (dask) processor.

The processor adds the tagger's score to every jet as a new field of the jet collection
(``events.Jet.hepnnScore``), aligned with the jets: no jet is dropped, whatever cuts the
training config had. It then fills a ``hist`` of the score per jet flavour. Everything is
lazy: ``process`` builds a dask graph (``tagger.predict(events.Jet)`` returns a
``dask_awkward.Array``) and ``dask.compute`` runs it, reading only the branches the
tagger and the histogram need. Needs ``pip install hepnn[coffea]``.

Usage::

    hepnn train tests/data/nanoaod_btag.yaml --out runs/btag       # any per-event tagger
    python tutorials/coffea_tagger_processor.py runs/btag tests/data/nanoAOD_2015_CMS_Open_Data_ttbar.root

Inside your own processor the tagger needs one line::

    jets = ak.with_field(events.Jet, tagger.predict(events.Jet), "hepnnScore")

``tagger.predict`` also takes the whole ``events`` (and, eagerly, the NanoEvents of
``mode="eager"`` or ``"virtual"``); inputs from linked collections (tracks, PF candidates)
are then found through the config.
"""

from __future__ import annotations

import argparse

import awkward as ak
import dask
import hist.dask
import numpy as np
from coffea import processor
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

import hepnn

__all__ = ["TaggerProcessor", "NanoAODSchema", "open_events", "run", "main"]

#: hadron flavour codes of NanoAOD's ``Jet.hadronFlavour``
FLAVOURS = {"light": 0, "c": 4, "b": 5}


class TaggerProcessor(processor.ProcessorABC):
    """Scores every jet with the tagger of ``run_dir`` and histograms the score per flavour.

    Parameters
    ----------
    run_dir : path
        A hepnn run directory (``hepnn train ... --out RUN_DIR``), per-event layout.
    score : str, optional
        For multiclass taggers, the class whose probability becomes ``hepnnScore``
        (default: the last class).
    jets : str
        Name of the jet collection in the events (``Jet``).
    flavour : str
        Jet field with the truth flavour (``hadronFlavour``: 0 light, 4 c, 5 b).
    bins : int
        Bins of the score histogram on [0, 1].
    """

    def __init__(self, run_dir, score: str | None = None, jets: str = "Jet", flavour: str = "hadronFlavour",
                 bins: int = 20):
        self.run_dir = str(run_dir)
        self.score = score
        self.jets = jets
        self.flavour = flavour
        self.bins = bins
        self._tagger = None

    def __getstate__(self):  # dask may pickle the processor: send the path, not the model
        state = dict(self.__dict__)
        state["_tagger"] = None
        return state

    @property
    def tagger(self):
        if self._tagger is None:
            self._tagger = hepnn.Tagger.load(self.run_dir)
        return self._tagger

    def process(self, events):
        jets = events[self.jets]
        scores = self.tagger.predict(jets)  # lazy for dask events: nothing is computed here
        if scores.fields:  # multiclass: one field per class
            scores = scores[self.score or scores.fields[-1]]
        jets = ak.with_field(jets, scores, "hepnnScore")
        histogram = (
            hist.dask.Hist.new.StrCat(list(FLAVOURS), name="flavour", label="Jet flavour")
            .Reg(self.bins, 0.0, 1.0, name="score", label="hepnn score")
            .Double()
        )
        for name, code in FLAVOURS.items():
            histogram.fill(flavour=name, score=ak.flatten(jets.hepnnScore[jets[self.flavour] == code]))
        return {
            "n_events": ak.num(events, axis=0),
            "n_jets": ak.sum(ak.num(jets, axis=1)),
            # jets whose score is not a probability (NaN or outside [0, 1]): 0 for a healthy tagger
            "n_unscored": ak.sum(~((jets.hepnnScore >= 0) & (jets.hepnnScore <= 1))),
            "score": histogram,
        }

    def postprocess(self, accumulator):
        return accumulator


def open_events(files, tree: str = "Events", schema=NanoAODSchema):
    """Lazy NanoEvents (``mode="dask"``) of one or more files."""
    files = [files] if isinstance(files, str) else list(files)
    return NanoEventsFactory.from_root({f: tree for f in files}, mode="dask", schemaclass=schema).events()


def run(run_dir, files, tree: str = "Events", score: str | None = None, schema=NanoAODSchema,
        scheduler: str = "threads") -> dict:
    """Build the graph with :class:`TaggerProcessor` on lazy events, then compute it."""
    events = open_events(files, tree, schema)
    out = TaggerProcessor(run_dir, score=score).process(events)
    (result,) = dask.compute(out, scheduler=scheduler)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--tree", default="Events")
    parser.add_argument("--score", default=None, help="class of a multiclass tagger (default: the last)")
    args = parser.parse_args(argv)
    out = run(args.run_dir, args.files, args.tree, args.score)
    h = out["score"]
    print(f"{out['n_events']} events, {out['n_jets']} jets scored ({out['n_unscored']} without a score)")
    for name in FLAVOURS:
        counts = h[{"flavour": name}].values()
        centres = h.axes["score"].centers
        mean = float(np.sum(counts * centres) / counts.sum()) if counts.sum() else float("nan")
        print(f"  {name:>5}: {int(counts.sum()):5d} jets, mean score {mean:.3f}")
    return out


if __name__ == "__main__":
    main()
