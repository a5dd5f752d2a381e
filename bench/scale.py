"""Scale-out benchmark: scoring N files with 1 vs 2 Dask workers, and the per-file overhead.

    python bench/scale.py [--files 8] [--n-jets 2000] [--repeat 2]

Generates one per-event ttbar file (``hepnn.datasets.generate``), copies it ``--files``
times, trains a small Deep Sets b-tagger (jets + tracks) for one epoch, then times:

* ``single``: ``Tagger.predict_file`` on every file in this process (model loaded once);
* ``in_process``: ``hepnn.scale.predict_files`` without Dask (same scoring, plus the
  friend-tree write, the sidecar and the resume check): the per-file overhead is
  ``(in_process - single) / files``;
* ``dask_1`` / ``dask_2``: ``predict_files`` on a warm ``LocalCluster`` of 1 and 2 worker
  processes (1 thread and 1 TensorFlow thread each; warmed up first so TensorFlow import
  and model load are excluded), ``resume=False``. Speed-up = ``dask_1 / dask_2``.

Best of ``--repeat`` runs each; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def best_of(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--n-jets", type=int, default=2000, help="jets per file")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import distributed

    import hepnn
    import hepnn.io
    from hepnn.config import load_config
    from hepnn.datasets import generate
    from hepnn.scale import predict_files
    from hepnn.training.trainer import Trainer

    work = Path(tempfile.mkdtemp(prefix="hepnn_bench_scale_"))
    try:
        source = generate("ttbar", args.n_jets, seed=1, out=work / "ttbar.root", layout="per_event", progress=False)
        files = [str(shutil.copy(source, work / f"f{i}.root")) for i in range(args.files)]
        config = load_config({
            "data": {
                "layout": "per_event", "files": [{"path": str(source), "tree": "Events"}], "jets": "Jet",
                "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
                "inputs": {
                    "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_tau32"]},
                    "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx", "max_length": 15,
                               "variables": ["Track_d0sig", "Track_z0sig", "Track_pt", "Track_eta", "Track_phi"],
                               "sort_by": {"variable": "Track_pt"}},
                },
            },
            "model": {"name": "deepsets", "phi_units": [64, 64], "dense_units": [64], "branch_units": 16},
            "training": {"epochs": 1, "batch_size": 256, "verbose": 0, "early_stopping": None},
        })
        run = work / "run"
        Trainer(config, log=lambda _: None).fit(run, data=hepnn.io.load(config))
        tagger = hepnn.Tagger.load(run)
        tagger.predict_file(files[0])  # warm-up

        single = best_of(lambda: [tagger.predict_file(f) for f in files], args.repeat)
        in_process = best_of(lambda: predict_files(run, files, work / "out_local", resume=False), args.repeat)

        timings = {}
        for n_workers in (1, 2):
            with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                          silence_logs=logging.ERROR, dashboard_address=":0") as cluster, \
                    distributed.Client(cluster) as client:
                out = work / f"out_dask{n_workers}"
                # warm-up: every worker imports TensorFlow and loads the model once
                predict_files(run, files[: 2 * n_workers], out, client=client, tf_threads=1, resume=False)
                timings[n_workers] = best_of(
                    lambda: predict_files(run, files, out, client=client, tf_threads=1, resume=False), args.repeat)
        import uproot

        n_events = uproot.open(source)["Events"].num_entries
        print(json.dumps({
            "files": args.files, "jets_per_file": args.n_jets, "events_per_file": n_events, "cpu_count": os.cpu_count(),
            "single_s": round(single, 3), "in_process_s": round(in_process, 3),
            "overhead_per_file_ms": round(1000 * (in_process - single) / args.files, 1),
            "overhead_share": round((in_process - single) / single, 3),
            "dask_1_s": round(timings[1], 3), "dask_2_s": round(timings[2], 3),
            "speedup_2_vs_1": round(timings[1] / timings[2], 2),
            "dask_1_vs_single": round(timings[1] / single, 2),
        }))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
