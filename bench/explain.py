"""Explainer benchmark: seconds per 1000 jets for each explainer on each model family.

    python bench/explain.py [--n-jets 1000] [--models dense,cnn,deepsets,rnn] [--methods shap,...]

Untrained models with the builders' default sizes on random inputs (attribution cost does
not depend on the weights); one ``predict`` pass over the same jets is printed beside.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SHAPES = {"dense": {"jet": (12,)}, "cnn": {"image": (25, 25, 1)}, "deepsets": {"tracks": (30, 5)},
          "rnn": {"tracks": (30, 5)}}


def inputs_for(shapes, n, rng):
    out = {}
    for name, shape in shapes.items():
        x = rng.normal(size=(n, *shape)).astype("float32")
        if len(shape) == 2:  # pad a random tail of every sequence
            lengths = rng.integers(3, shape[0] + 1, n)
            x[np.arange(shape[0])[None, :] >= lengths[:, None]] = 0.0
        if len(shape) == 3:
            x = np.abs(x) * (rng.random((n, *shape)) < 0.1)
        out[name] = x
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-jets", type=int, default=1000)
    parser.add_argument("--models", default=",".join(SHAPES))
    parser.add_argument("--methods", default=None)
    args = parser.parse_args()
    from hepnn.explain import EXPLAINERS, explain
    from hepnn.explain.registry import applies
    from hepnn.explain.target import Target
    from hepnn.models import MODELS

    rng = np.random.default_rng(0)
    methods = args.methods.split(",") if args.methods else EXPLAINERS.names()
    print(f"{'model':9s} {'explainer':24s} {'s/1000 jets':>11s}  note")
    for family in args.models.split(","):
        model = MODELS.get(family)(SHAPES[family])
        x = inputs_for(SHAPES[family], args.n_jets, rng)
        target = Target(model)
        target.predict(x)  # trace
        start = time.perf_counter()
        target.predict(x)
        print(f"{family:9s} {'(predict)':24s} {(time.perf_counter() - start) * 1000 / args.n_jets:11.3f}")
        for method in methods:
            if applies(method, target):
                continue
            start = time.perf_counter()
            e = explain(target, x, method)
            seconds = (time.perf_counter() - start) * 1000 / args.n_jets
            note = e.extra.get("algorithm", "")
            print(f"{family:9s} {method:24s} {seconds:11.2f}  {note}", flush=True)


if __name__ == "__main__":
    main()
