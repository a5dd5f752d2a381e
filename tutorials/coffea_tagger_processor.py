"""Run a trained hepnn tagger inside a coffea processor.

The processor adds the tagger's score to every jet of NanoAOD-style events as the field
``Jet_hepnnScore`` (``ak.with_field``), aligned with ``Jet_pt``: no jet is dropped,
whatever cuts the training config had. Needs ``pip install hepnn[coffea]``.

Usage::

    hepnn generate ttbar --n-jets 500 --layout per_event --out ttbar.root   # or any NanoAOD-like file
    python tutorials/coffea_tagger_processor.py RUN_DIR ttbar.root --score b

``BaseSchema`` keeps the branch names (``Jet_pt``) as fields, exactly as the tagger's
config names them. With ``NanoAODSchema`` the tagger finds ``events.Jet.pt`` under the
name ``Jet_pt`` as well.
"""

from __future__ import annotations

import argparse

import awkward as ak
import numpy as np
from coffea import processor
from coffea.nanoevents import BaseSchema

import hepnn

__all__ = ["TaggerProcessor", "BaseSchema", "main"]


class TaggerProcessor(processor.ProcessorABC):
    """Scores every jet with the tagger of ``run_dir``; accumulates the scores.

    Parameters
    ----------
    run_dir : path
        A hepnn run directory (``hepnn train ... --out RUN_DIR``).
    score : str, optional
        For multiclass taggers, the class whose probability becomes ``Jet_hepnnScore``.
    jets : str
        Jet collection prefix (``Jet`` for ``Jet_pt``).
    """

    def __init__(self, run_dir, score: str | None = None, jets: str = "Jet"):
        self.run_dir = str(run_dir)
        self.score = score
        self.jets = jets
        self._tagger = None

    def __getstate__(self):  # executors may pickle the processor: send the path, not the model
        state = dict(self.__dict__)
        state["_tagger"] = None
        return state

    @property
    def tagger(self):
        if self._tagger is None:
            self._tagger = hepnn.Tagger.load(self.run_dir)
        return self._tagger

    def process(self, events):
        scores = self.tagger.predict(events)
        if scores.fields:  # multiclass: one field per class
            scores = scores[self.score or scores.fields[-1]]
        events = ak.with_field(events, scores, f"{self.jets}_hepnnScore")
        n_jets = ak.num(events[f"{self.jets}_pt"], axis=1)
        return {
            "n_events": len(events),
            "n_jets": int(ak.sum(n_jets)),
            "n_misaligned_events": int(ak.sum(ak.num(events[f"{self.jets}_hepnnScore"], axis=1) != n_jets)),
            "scores": ak.to_numpy(ak.flatten(events[f"{self.jets}_hepnnScore"])).astype(np.float64).tolist(),
        }

    def postprocess(self, accumulator):
        return accumulator


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--tree", default="Events")
    parser.add_argument("--score", default=None, help="class of a multiclass tagger (default: the last)")
    args = parser.parse_args(argv)
    runner = processor.Runner(executor=processor.IterativeExecutor(), schema=BaseSchema, chunksize=10_000)
    out = runner({"sample": list(args.files)}, TaggerProcessor(args.run_dir, score=args.score), treename=args.tree)
    scores = np.asarray(out["scores"])
    print(f"{out['n_events']} events, {out['n_jets']} jets scored, mean score {scores.mean():.3f}, "
          f"misaligned events: {out['n_misaligned_events']}")
    return out


if __name__ == "__main__":
    main()
