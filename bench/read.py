"""Reader benchmarks: hepnn vs plain uproot, streaming memory, tf.data throughput.

    python bench/read.py [--events 40000] [--parts read,rss,fit]

Writes a synthetic per-event file (generator branch names, see notes/CONTRACTS.md) in a
temporary folder and prints one line per figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

TRACKS = ["Track_pt", "Track_eta", "Track_phi", "Track_d0", "Track_z0", "Track_d0sig", "Track_z0sig"]


def write_file(path: Path, n_events: int, seed: int = 0) -> int:
    import awkward as ak
    import uproot

    rng = np.random.default_rng(seed)
    n_jets = rng.integers(1, 6, n_events)
    nj = int(n_jets.sum())
    n_tracks = rng.integers(0, 40, n_events)
    nt = int(n_tracks.sum())
    ev = np.repeat(np.arange(n_events), n_tracks)
    link = (rng.random(nt) * n_jets[ev]).astype(np.int32)
    ju = lambda x: ak.unflatten(x, n_jets)  # noqa: E731
    tu = lambda x: ak.unflatten(x, n_tracks)  # noqa: E731
    data = {
        "event": np.arange(n_events, dtype=np.int64),
        "Jet": ak.zip({"pt": ju(rng.uniform(10, 200, nj).astype(np.float32)), "eta": ju(rng.uniform(-3, 3, nj).astype(np.float32)),
                       "phi": ju(rng.uniform(-3, 3, nj).astype(np.float32)), "hadronFlavour": ju(rng.choice([0, 4, 5], nj).astype(np.int32))}),
        "Track": ak.zip({k.split("_")[1]: tu(rng.normal(0, 1, nt).astype(np.float32)) for k in TRACKS} | {"jetIdx": tu(link)}),
    }
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()},
                 field_name=lambda o, i: f"{o}_{i}")
        f["Events"].extend(data)
    return nj


CONFIG = """
data:
  layout: per_event
  files: [{path: "%s", tree: Events}]
  jets: Jet
  label: {branch: Jet_hadronFlavour, classes: {light: 0, c: 4, b: 5}}
  inputs:
    jet: {kind: flat, variables: [Jet_pt, Jet_eta]}
    tracks: {kind: sequence, collection: Track, link: Track_jetIdx, variables: %s,
             sort_by: {variable: Track_d0sig, descending: true, absolute: true}, max_length: 15}
  step_size: %s
"""


def bench_read(path: Path, n_jets: int) -> dict:
    import uproot

    import hepnn.io

    config = CONFIG % (path, json.dumps(TRACKS), "200000")
    from hepnn.config import load_config
    from hepnn.config.loader import safe_load_yaml

    cfg = load_config(safe_load_yaml("bench", text=config))
    branches = TRACKS + ["Track_jetIdx", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_hadronFlavour"]
    def best(fn, n=3):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_uproot, _ = best(lambda: uproot.open(path)["Events"].arrays(filter_name=branches))
    t_hepnn, data = best(lambda: hepnn.io.load(cfg, standardize=False))
    return {"n_jets": n_jets, "uproot_s": round(t_uproot, 3), "hepnn_s": round(t_hepnn, 3),
            "ratio": round(t_hepnn / t_uproot, 2), "tracks_shape": list(data["tracks"].shape)}


def _rss_child(path: str, step: int) -> None:
    import resource

    import hepnn.io
    from hepnn.config import load_config
    from hepnn.config.loader import safe_load_yaml

    cfg = load_config(safe_load_yaml("bench", text=CONFIG % (path, json.dumps(TRACKS), step)))
    for _ in hepnn.io.iterate(cfg):
        pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def bench_rss(tmp: Path, n_events: int) -> dict:
    small, large = tmp / "one_chunk.root", tmp / "ten_chunks.root"
    write_file(small, n_events // 10, seed=1)
    write_file(large, n_events, seed=2)
    step = n_events // 10
    out = {}
    for name, p in (("one_chunk", small), ("ten_chunks", large)):
        res = subprocess.run([sys.executable, __file__, "--rss-child", str(p), str(step)], capture_output=True, text=True, check=True)
        out[f"{name}_maxrss_mb"] = round(int(res.stdout.split()[-1]) / 1024, 1)
    out["rss_ratio"] = round(out["ten_chunks_maxrss_mb"] / out["one_chunk_maxrss_mb"], 2)
    return out


def bench_fit(path: Path) -> dict:
    import keras

    import hepnn.io
    from hepnn.config import load_config
    from hepnn.config.loader import safe_load_yaml

    cfg = load_config(safe_load_yaml("bench", text=CONFIG % (path, json.dumps(TRACKS), "50000")))
    data = hepnn.io.load(cfg)

    def model():
        jet, tracks = keras.Input((2,), name="jet"), keras.Input((15, 7), name="tracks")
        x = keras.layers.Concatenate()([jet, keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(32, activation="relu")(tracks))])
        m = keras.Model({"jet": jet, "tracks": tracks}, keras.layers.Dense(3, activation="softmax")(x))
        m.compile("adam", "sparse_categorical_crossentropy")
        return m

    train = data.split("train")
    n = train.n_jets
    m = model()
    m.fit({"jet": train["jet"], "tracks": train["tracks"]}, train["label"], batch_size=512, epochs=1, verbose=0)
    t0 = time.perf_counter()
    m.fit({"jet": train["jet"], "tracks": train["tracks"]}, train["label"], batch_size=512, epochs=2, verbose=0)
    mem = 2 * n / (time.perf_counter() - t0)
    ds = hepnn.io.make_dataset(cfg, "train", batch_size=512, preprocessing=data.preprocessing, include_masks=False)
    m = model()
    m.fit(ds, epochs=1, verbose=0)
    t0 = time.perf_counter()
    m.fit(ds, epochs=2, verbose=0)
    stream = 2 * n / (time.perf_counter() - t0)
    return {"in_memory_jets_per_s": round(mem), "streaming_jets_per_s": round(stream), "fit_ratio": round(stream / mem, 2)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--parts", default="read,rss,fit")
    args = parser.parse_args()
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "bench.root"
        n_jets = write_file(path, args.events)
        if "read" in parts:
            print("read:", json.dumps(bench_read(path, n_jets)), flush=True)
        if "rss" in parts:
            print("rss:", json.dumps(bench_rss(tmp, args.events)), flush=True)
        if "fit" in parts:
            print("fit:", json.dumps(bench_fit(path)), flush=True)


if __name__ == "__main__":
    main()
