"""Reader benchmarks: hepnn vs plain uproot, streaming memory, tf.data throughput.

    python bench/read.py [--events 40000] [--parts read,rss,fit] [--rss-step 20000] [--models rnn,dense_tiny] [--epochs 1]

Writes a synthetic per-event file (generator branch names, see notes/CONTRACTS.md) in a
temporary folder and prints one line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
        # one basket per 5000 events, like a real file (one basket for the whole file would make
        # every chunk decompress all of it)
        for start in range(0, n_events, 5000):
            f["Events"].extend({k: v[start:start + 5000] for k, v in data.items()})
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


def bench_read(path: Path, n_jets: int, repeats: int = 7) -> dict:
    """Best-of-``repeats`` seconds of ``hepnn.io.load`` (read + link + sort + pad + preprocessing fit)
    vs ``uproot`` ``arrays`` of exactly the branches hepnn reads, alternating the two."""
    import uproot

    import hepnn.io
    from hepnn.config import load_config
    from hepnn.config.loader import safe_load_yaml
    from hepnn.io.chunks import make_plan
    from hepnn.io.sources import resolve_files

    cfg = load_config(safe_load_yaml("bench", text=CONFIG % (path, json.dumps(TRACKS), "200000")))
    tree = uproot.open(path)["Events"]
    branches = make_plan(cfg.data, list(tree.keys()), resolve_files(cfg.data)[0]).read_list()
    times: dict = {"uproot": [], "hepnn": []}
    for _ in range(repeats):
        for name, fn in (("uproot", lambda: uproot.open(path)["Events"].arrays(filter_name=branches)),
                         ("hepnn", lambda: hepnn.io.load(cfg, standardize=False))):
            t0 = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            if name == "hepnn":
                shape = list(out["tracks"].shape)
            del out
    t_uproot, t_hepnn = min(times["uproot"]), min(times["hepnn"])
    return {"n_jets": n_jets, "branches": len(branches), "uproot_s": round(t_uproot, 3), "hepnn_s": round(t_hepnn, 3),
            "ratio": round(t_hepnn / t_uproot, 2), "tracks_shape": shape}


def _vm(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_child(path: str, step: int, mode: str) -> None:
    """Peak RSS growth above the RSS after imports and config (the peak is reset there)."""
    import awkward  # noqa: F401 - imported by the reader on first use; not part of the growth
    import uproot

    import hepnn.io
    from hepnn.config import load_config
    from hepnn.config.loader import safe_load_yaml

    cfg = load_config(safe_load_yaml("bench", text=CONFIG % (path, json.dumps(TRACKS), step)))
    uproot.open(path)["Events"].keys()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    base = _vm("VmRSS")
    n = 0
    if mode == "load":
        n = hepnn.io.load(cfg, standardize=False).n_jets
    else:
        for chunk in hepnn.io.iterate(cfg):
            n += len(chunk["label"])
    print(json.dumps({"base_mb": round(base, 1), "growth_mb": round(_vm("VmHWM") - base, 1), "n_jets": n}))


def bench_rss(tmp: Path, step: int) -> dict:
    """Peak RSS growth: streaming a 1-chunk and a 10-chunk file, and ``load`` of the 10-chunk file."""
    small, large = tmp / "one_chunk.root", tmp / "ten_chunks.root"
    write_file(small, step, seed=1)
    write_file(large, 10 * step, seed=2)
    out = {"step_size_entries": step}
    # glibc raises its mmap threshold after large frees, so freed chunk memory can stay in the heap;
    # hepnn fixes the threshold when streaming starts (hepnn.io.memory); the second run turns that off
    # (HEPNN_KEEP_MALLOC=1) to show the allocator's retention
    for tag, env in (("", {}), ("keep_malloc_", {"HEPNN_KEEP_MALLOC": "1"})):
        for name, p, mode in (("stream_one_chunk", small, "iterate"), ("stream_ten_chunks", large, "iterate"),
                              ("load_ten_chunks", large, "load")):
            if tag and mode == "load":
                continue
            res = subprocess.run([sys.executable, __file__, "--rss-child", str(p), str(step), mode],
                                 capture_output=True, text=True, check=True, env={**os.environ, **env})
            out[tag + name] = json.loads(res.stdout.strip().splitlines()[-1])
        out[tag + "rss_ratio"] = round(out[tag + "stream_ten_chunks"]["growth_mb"] / out[tag + "stream_one_chunk"]["growth_mb"], 2)
    return out


def _fit_seconds(model, x, epochs: int = 1) -> float:
    """Seconds of ``model.fit`` over ``epochs`` full epochs, after a short warm-up (tracing)."""
    if isinstance(x, tuple):
        inputs, label = x
        model.fit({k: v[:2048] for k, v in inputs.items()}, label[:2048], batch_size=512, epochs=1, verbose=0)
        t0 = time.perf_counter()
        model.fit(inputs, label, batch_size=512, epochs=epochs, verbose=0)
    else:
        model.fit(x.take(4), epochs=1, verbose=0)
        t0 = time.perf_counter()
        model.fit(x, epochs=epochs, verbose=0)
    return time.perf_counter() - t0


def bench_fit(path: Path, models: list[str], epochs: int = 1) -> dict:
    """``model.fit`` jets/s: streaming ``make_dataset`` (4 chunks per pass, read ahead) vs in-memory numpy."""
    import keras

    import hepnn.io
    from hepnn.config import load_config
    from hepnn.config.loader import safe_load_yaml
    from hepnn.models import MODELS

    cfg = load_config(safe_load_yaml("bench", text=CONFIG % (path, json.dumps(TRACKS), "10000")))
    data = hepnn.io.load(cfg)
    train = data.split("train")
    n = train.n_jets
    shapes = {"jet": (2,), "tracks": (15, 7)}

    def model(name):
        keras.utils.set_random_seed(0)
        if name == "dense_tiny":  # 2 jet features + mean of a 32-unit per-track layer: faster than any reader
            jet, tracks = keras.Input((2,), name="jet"), keras.Input((15, 7), name="tracks")
            x = keras.layers.Concatenate()([jet, keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(32, activation="relu")(tracks))])
            m = keras.Model({"jet": jet, "tracks": tracks}, keras.layers.Dense(3, activation="softmax")(x))
        else:
            m = MODELS.get(name)(shapes, n_outputs=3, task="multiclass")
        m.compile("adam", "sparse_categorical_crossentropy")
        return m

    out = {"n_train": int(n)}
    for name in models:
        mem = epochs * n / _fit_seconds(model(name), ({"jet": train["jet"], "tracks": train["tracks"]}, train["label"]), epochs)
        ds = hepnn.io.make_dataset(cfg, "train", batch_size=512, preprocessing=data.preprocessing, include_masks=False)
        stream = epochs * n / _fit_seconds(model(name), ds, epochs)
        out[name] = {"in_memory_jets_per_s": round(mem), "streaming_jets_per_s": round(stream), "fit_ratio": round(stream / mem, 2)}
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--parts", default="read,rss,fit")
    parser.add_argument("--rss-step", type=int, default=20000, help="rss part: entries per chunk (files of 1 and 10 chunks)")
    parser.add_argument("--models", default="rnn,dense_tiny", help="fit part: hepnn model names or dense_tiny")
    parser.add_argument("--epochs", type=int, default=1, help="fit part: timed epochs per model and feed")
    args = parser.parse_args()
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "bench.root"
        n_jets = write_file(path, args.events)
        if "read" in parts:
            print("read:", json.dumps(bench_read(path, n_jets)), flush=True)
        if "rss" in parts:
            print("rss:", json.dumps(bench_rss(tmp, args.rss_step)), flush=True)
        if "fit" in parts:
            print("fit:", json.dumps(bench_fit(path, args.models.split(","), args.epochs)), flush=True)


if __name__ == "__main__":
    main()
