"""Benchmark of the sample generator (``hepnn.datasets.generate``).

For each sample, with ``--jobs 1``: jets/s per core, and the share of wall time spent
outside Pythia's own event generation (``Pythia.nextBatch``): clustering, truth
matching, substructure, tracks, writing, start-up. Then the ``--jobs J`` speed-up.

Usage::

    python bench/generate.py --n-jets 2000 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def bench_one(sample: str, n_jets: int, jobs: int, seed: int = 1) -> dict:
    from hepnn.datasets import generate

    stats: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{sample}.root")
        start = time.perf_counter()
        generate(sample, n_jets=n_jets, seed=seed, jobs=jobs, out=out, progress=False, stats=stats)
        wall = time.perf_counter() - start
        size = os.path.getsize(out)
    cpu = stats["pythia_s"] + stats["other_s"]
    return {
        "sample": sample, "n_jets": n_jets, "jobs": jobs, "wall_s": round(wall, 2),
        "jets_per_s": round(n_jets / wall, 1),
        "jets_per_s_per_core": round(n_jets / wall / jobs, 1),
        "events": stats["events"],
        "pythia_s": round(stats["pythia_s"], 2),
        # everything but Pythia's event generation, over the wall time of one worker
        "overhead_share": round(1 - stats["pythia_s"] / (wall * jobs), 3),
        "in_loop_overhead_share": round(stats["other_s"] / cpu, 3),
        "file_MB": round(size / 1e6, 2),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jets", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2, help="jobs for the speed-up measurement")
    parser.add_argument("--samples", default="top,qcd,w,ttbar")
    parser.add_argument("--speedup-sample", default="top")
    args = parser.parse_args(argv)
    results = []
    for sample in args.samples.split(","):
        r = bench_one(sample, args.n_jets, 1)
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.jobs > 1:
        one = next((r for r in results if r["sample"] == args.speedup_sample), None) or bench_one(
            args.speedup_sample, args.n_jets, 1)
        many = bench_one(args.speedup_sample, args.n_jets, args.jobs)
        print(json.dumps(many), flush=True)
        print(json.dumps({"speedup": round(one["wall_s"] / many["wall_s"], 2), "sample": args.speedup_sample,
                          "jobs": args.jobs, "n_jets": args.n_jets, "cpu_count": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
