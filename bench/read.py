"""Reader benchmarks on generated samples: ``hepnn.io.load`` and ``iterate`` against plain uproot.

    python bench/read.py [--cache DIR] [--parts ratio,breakdown,scale,rss] [--formats ttree,rntuple]
                         [--event-jets 50000] [--jet-jets 75000] [--repeats 5] [--scale-jets 10000,100000,1000000]

Samples come from the project's generator (``hepnn.datasets.generate``, Pythia 8 + FastJet, realistic
multiplicities) and are cached in ``--cache`` (generated once; a few minutes):

* ``ttbar``, per-event (NanoAOD-like ``Events``): jets with tracks linked by ``Track_jetIdx``;
* ``top`` and ``qcd``, per-jet (``jets``): constituents stored in pT order;

and each is copied into an RNTuple file (uproot's ``mkrntuple``, 5000 entries per cluster) in the
same folder, as neither the generator nor ``hepnn convert`` writes RNTuples.

Cases (``--parts ratio``), each for the TTree and the RNTuple files:

* ``a``: per-event ttbar, 7 track features sorted by |d0 significance|, max length 15, jet cuts,
  3 hadron-flavour classes, no standardisation (as the issue's profile);
* ``b``: per-jet top vs QCD, the seven derived constituent variables of the top-tagging analysis
  sorted by log pT, max length 100, default standardisation;
* ``c``: the same files, the top-tagging jet image (25 x 25, pt, center/rotate/flip/normalize).

Every ratio is measured in one process, alternating the contenders, best of ``--repeats``, in wall
seconds and in CPU seconds of the process (all threads; on a shared machine the CPU figure is the
stable one); then plain uproot and ``load`` each run after themselves (``*_after_itself``: the
memory each touches was freed by its own previous run a moment before, see ``bench/README.md``):
``load`` = ``hepnn.io.load(config)`` (read, cuts, link, sort, pad, labels, split, preprocessing fit
and transform) against ``uproot.open(path)[tree].arrays(filter_name=<the branches hepnn reads>)``
for every file (both open the file cold; plain uproot inflates ZLIB with Python's ``zlib``, hepnn
with libdeflate, see ``hepnn.io.decompression``; ``uproot_libdeflate`` is plain uproot with
libdeflate too, so ``load_over_uproot_libdeflate`` is hepnn's own work); ``iterate`` = a full pass
of ``hepnn.io.iterate(config)``.
``--parts breakdown`` times the stages of one ``load`` in CPU seconds with one thread (functions
wrapped with timers, each stage's own time: uproot read and decompression, linking, derived variables,
sorting, padding, images, the rest of the chunk work, writing the chunks into one array, fit, transform). ``--parts scale`` gives the time per jet of ``load`` and
``iterate`` for files of 10k to 1M jets made by replicating the ttbar file's entries (case a,
TTree); ``--parts rss`` the peak memory growth of streaming the two largest of them. ``--parts unpadded``
(not in the default) times the stages of ``load`` after the chunks are built, padded first against
standardised before padding, from the same chunks (one thread).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TRACKS = ["Track_pt", "Track_eta", "Track_phi", "Track_d0", "Track_z0", "Track_d0sig", "Track_z0sig"]
#: data.inputs.particles of analyses/top_tagging/config.yaml
DERIVED_VARIABLES = ["rel_eta", "rel_phi", "log_pt", "log_e", "log_pt_frac", "log_e_frac", "delta_r"]
BASKET = 5000  # entries per basket (TTree) or cluster (RNTuple) of the files written here


# --- samples -----------------------------------------------------------------------------------


def generated(cache: Path, sample: str, n_jets: int, layout: str, seed: int = 1) -> Path:
    """A generated sample in ``cache`` (generated on first use)."""
    from hepnn.datasets import generate

    path = cache / f"{sample}_{layout}_n{n_jets}_seed{seed}.root"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate(sample, n_jets, seed=seed, out=path, jobs=2, layout=layout, progress=False)
    return path


def _write(path: Path, tree: str, arrays, rntuple: bool) -> None:
    """Write ``arrays`` (awkward record array, one field per branch) in baskets/clusters of BASKET entries."""
    import uproot

    part = path.with_name(path.name + ".part")
    fields = list(arrays.fields)
    with uproot.recreate(part) as f:
        for start in range(0, len(arrays), BASKET):
            chunk = {k: arrays[k][start:start + BASKET] for k in fields}
            if start == 0:
                if rntuple:
                    f.mkrntuple(tree, chunk)
                    continue
                f.mktree(tree, {k: v.type.content for k, v in chunk.items()})
            f[tree].extend(chunk)
    os.replace(part, path)


def _branches(path: Path, tree: str) -> list[str]:
    import uproot

    keys = uproot.open(path)[tree].keys()
    # counters (nJet, npart...) come back with their collections
    return [k for k in keys if not (k.startswith("n") and any(o.startswith(k[1:] + "_") or o.startswith(k[1:].lower() + "_")
                                                                 for o in keys))]


def rntuple_copy(path: Path, tree: str) -> Path:
    """The RNTuple copy of a TTree file (made on first use)."""
    import uproot

    out = path.with_name(path.stem + "_rntuple.root")
    if not out.exists():
        print(f"writing {out} ...", flush=True)
        _write(out, tree, uproot.open(path)[tree].arrays(_branches(path, tree)), rntuple=True)
    return out


def replicated(path: Path, tree: str, n_jets: int, cache: Path) -> tuple[Path, int]:
    """A per-event file of about ``n_jets`` jets: the first events of ``path``, or its events repeated."""
    import awkward as ak
    import uproot

    out = cache / f"{path.stem}_replicated_{n_jets}.root"
    arrays = None
    if not out.exists():
        arrays = uproot.open(path)[tree].arrays(_branches(path, tree))
        per_event = ak.to_numpy(ak.num(arrays["Jet_pt"]))
        total = int(per_event.sum())
        copies = -(-n_jets // total)
        whole = arrays if copies == 1 else ak.concatenate([arrays] * copies)
        cumulative = np.cumsum(np.tile(per_event, copies))
        n_events = int(np.searchsorted(cumulative, n_jets)) + 1
        print(f"writing {out} ({n_events} events) ...", flush=True)
        _write(out, tree, whole[:n_events], rntuple=False)
    return out, int(ak.sum(ak.num(uproot.open(out)[tree]["Jet_pt"].array())))


# --- configs --------------------------------------------------------------------------------------


def config_a(path: Path) -> dict:
    return {"data": {
        "layout": "per_event", "files": [{"path": str(path), "tree": "Events"}], "jets": "Jet",
        "cuts": [{"variable": "Jet_pt", "min": 20}, {"variable": "Jet_eta", "abs_max": 2.5}],
        "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
        "inputs": {
            "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta"], "standardize": False},
            "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx", "variables": TRACKS,
                       "standardize": False, "max_length": 15,
                       "sort_by": {"variable": "Track_d0sig", "absolute": True, "descending": True}},
        }}}


def _per_jet(top: Path, qcd: Path, inputs: dict) -> dict:
    return {"data": {
        "layout": "per_jet",
        "files": [{"path": str(top), "tree": "jets", "label": 1}, {"path": str(qcd), "tree": "jets", "label": 0}],
        "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
        "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
        "inputs": inputs}}


def config_b(top: Path, qcd: Path) -> dict:
    return _per_jet(top, qcd, {"particles": {"kind": "sequence", "variables": DERIVED_VARIABLES, "max_length": 100,
                                             "sort_by": {"variable": "log_pt", "descending": True}}})


def config_c(top: Path, qcd: Path) -> dict:
    return _per_jet(top, qcd, {"image": {"kind": "image", "pixels": 25, "extent": 1.2, "channels": ["pt"],
                                         "preprocess": ["center", "rotate", "flip", "normalize"]}})


def cases(cache: Path, formats: list[str], which: list[str], event_jets: int, jet_jets: int) -> dict:
    """Case name (``a_ttree``...) -> config mapping, for the cases in ``which``."""
    out = {}
    for fmt in formats:
        copy = (lambda p, t: rntuple_copy(p, t)) if fmt == "rntuple" else (lambda p, t: p)
        if "a" in which:
            out[f"a_{fmt}"] = config_a(copy(generated(cache, "ttbar", event_jets, "per_event"), "Events"))
        if "b" in which or "c" in which:
            top = copy(generated(cache, "top", jet_jets // 2, "per_jet"), "jets")
            qcd = copy(generated(cache, "qcd", jet_jets - jet_jets // 2, "per_jet"), "jets")
            if "b" in which:
                out[f"b_{fmt}"] = config_b(top, qcd)
            if "c" in which:
                out[f"c_{fmt}"] = config_c(top, qcd)
    return dict(sorted(out.items()))


# --- measurements -------------------------------------------------------------------------------


def _resolved(config: dict):
    from hepnn.config import load_config
    from hepnn.io.chunks import make_plan
    from hepnn.io.sources import open_tree, resolve_files, tree_keys

    cfg = load_config(config)
    reads = []
    for source in resolve_files(cfg.data):
        tree = open_tree(source)
        reads.append((source.path, source.tree, make_plan(cfg.data, tree_keys(tree), source).read_list()))
    return cfg, reads


def _uproot(reads: list, threads: int = 1, libdeflate: bool = False) -> int:
    """Plain uproot: ``arrays`` of the branches hepnn reads, each file opened cold (``threads`` > 1:
    with a decompression thread pool, as hepnn opens files), inflating ZLIB with uproot's own
    ``zlib`` (``libdeflate``: with libdeflate, as hepnn's reader does, see
    :mod:`hepnn.io.decompression`). hepnn's default decompression is restored afterwards."""
    import uproot

    try:
        from hepnn.io.decompression import use_libdeflate
    except ImportError:  # hepnn before it used libdeflate (PYTHONPATH of an older checkout)
        use_libdeflate = None
    if use_libdeflate is not None:
        use_libdeflate(libdeflate)
    try:
        n = 0
        for path, tree, branches in reads:
            options = {"decompression_executor": uproot.source.futures.ThreadPoolExecutor(threads)} if threads > 1 else {}
            n += len(uproot.open(path, **options)[tree].arrays(filter_name=branches))
        return n
    finally:
        if use_libdeflate is not None:
            use_libdeflate(None)


def bench_ratio(name: str, config: dict, repeats: int) -> dict:
    """Best-of-``repeats`` seconds of uproot, ``load`` and ``iterate``, alternated in one process."""
    import hepnn.io

    cfg, reads = _resolved(config)
    try:
        from hepnn.io.threads import reader_threads
    except ImportError:  # hepnn before the reader used threads (PYTHONPATH of an older checkout)
        reader_threads = lambda: 1  # noqa: E731

    threads = reader_threads()
    contenders = {
        "uproot": lambda: _uproot(reads),
        "uproot_threads": lambda: _uproot(reads, threads),
        "uproot_libdeflate": lambda: _uproot(reads, libdeflate=True),
        "load": lambda: hepnn.io.load(cfg).n_jets,
        "iterate": lambda: sum(len(c["label"]) for c in hepnn.io.iterate(cfg)),
    }
    times: dict = {k: [] for k in contenders}
    cpu: dict = {k: [] for k in contenders}
    n_jets = {}
    for k, fn in contenders.items():  # warm-up: imports, first-use costs
        n_jets[k] = fn()
    for _ in range(repeats):
        for k, fn in contenders.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    best = {k: min(v) for k, v in times.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    # each contender again, run after itself: the memory it touches was freed by its own previous
    # run a moment before (on a VM that gives memory freed for ~2 s back to the host, the order
    # above hands plain uproot the pages load and iterate just freed, and load cold ones)
    b2b = {}
    for k in ("uproot", "load"):
        fn = contenders[k]
        fn()
        b2b[k] = min(_timed(fn) for _ in range(repeats))
    return {
        # CPU seconds of this process (all its threads): unlike wall time, hardly changed by other jobs
        "cpu_uproot_s": round(best_cpu["uproot"], 3), "cpu_load_s": round(best_cpu["load"], 3),
        "cpu_iterate_s": round(best_cpu["iterate"], 3),
        "cpu_load_over_uproot": round(best_cpu["load"] / best_cpu["uproot"], 2),
        "cpu_iterate_over_load": round(best_cpu["iterate"] / best_cpu["load"], 2),
        "case": name, "n_jets": n_jets["load"], "entries": n_jets["uproot"], "branches": len(reads[0][2]),
        "uproot_s": round(best["uproot"], 3), "load_s": round(best["load"], 3), "iterate_s": round(best["iterate"], 3),
        "uproot_threads_s": round(best["uproot_threads"], 3), "threads": threads,
        "load_over_uproot": round(best["load"] / best["uproot"], 2),
        "load_over_uproot_threads": round(best["load"] / best["uproot_threads"], 2),
        # the same decompression library as hepnn's reader: what remains is hepnn's own work
        "uproot_libdeflate_s": round(best["uproot_libdeflate"], 3),
        "load_over_uproot_libdeflate": round(best["load"] / best["uproot_libdeflate"], 2),
        "iterate_over_load": round(best["iterate"] / best["load"], 2),
        "load_us_per_jet": round(1e6 * best["load"] / n_jets["load"], 2),
        "load_seconds_all": [round(t, 3) for t in times["load"]], "uproot_seconds_all": [round(t, 3) for t in times["uproot"]],
        "uproot_after_itself_s": round(b2b["uproot"], 3), "load_after_itself_s": round(b2b["load"], 3),
        "load_over_uproot_after_itself": round(b2b["load"] / b2b["uproot"], 2),
    }


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@contextlib.contextmanager
def _timers(totals: dict):
    """Wrap the reader's stages with timers adding into ``totals`` (seconds per stage, each stage's own:
    the time of the timed stages it calls is counted in theirs, so the stages add up)."""
    import hepnn.io.chunks as chunks
    load_mod = importlib.import_module("hepnn.io.load")  # hepnn.io.load is also the function
    import hepnn.io.representations as reps
    from hepnn.io.derived import DERIVED
    from hepnn.preprocessing import Preprocessor

    patched = []
    inner = [0.0]  # seconds of timed stages called by the running stage

    @contextlib.contextmanager
    def stage_clock(stage):
        outer, inner[0] = inner[0], 0.0
        t0 = _clock()
        try:
            yield
        finally:
            elapsed = _clock() - t0
            totals[stage] = totals.get(stage, 0.0) + elapsed - inner[0]
            inner[0] = outer + elapsed

    def timed(owner, attr, stage):
        original = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            with stage_clock(stage):
                return original(*args, **kwargs)

        patched.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    def timed_iterator(owner, attr, stage):
        original = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            iterator = original(*args, **kwargs)
            while True:
                with stage_clock(stage):
                    try:
                        item = next(iterator)
                    except StopIteration:
                        return
                yield item

        patched.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    timed_iterator(chunks, "iterate_tree", "uproot read + decompression")
    timed(chunks, "open_tree", "open files")
    timed(chunks, "make_plan", "plan")
    timed(chunks, "_jets_and_groups", "linking (flatten, link, group by jet)")
    timed(chunks, "process_chunk", "_process_chunk")
    for kind in ("FlatKind", "SequenceKind", "ImageKind"):
        timed(getattr(reps, kind), "build", f"_build {kind}")
    if hasattr(reps, "DeferredRows"):  # load builds the images into one array, after the chunks are read
        timed(reps.DeferredRows, "fill", "_build deferred")
    timed(reps, "order_within_jets", "sorting")
    timed(reps, "pad_sequences", "padding")
    timed(reps, "jet_images", "images")
    timed(load_mod, "_assembled", "one array per input (chunks written into it, concatenation)")
    timed(Preprocessor, "partial_fit", "preprocessing fit")
    timed(Preprocessor, "fit_parts", "preprocessing fit")
    timed(Preprocessor, "transform", "preprocessing transform")
    if hasattr(Preprocessor, "transform_elements"):  # load standardises sequence elements before padding
        timed(Preprocessor, "transform_elements", "preprocessing transform")
        timed(reps.ElementRows, "pad", "_padding in load")
    if hasattr(reps, "DeferredElements"):  # load pads in-order elements as their features are computed
        timed(reps.DeferredElements, "fill", "_padding in load")  # with the features' NaN checks
        timed(load_mod, "standardise_padded", "preprocessing transform")
    items = DERIVED._items  # the registry's functions, wrapped in place for the run
    saved = dict(items)

    def timed_derived(fn):
        def derived(m):
            with stage_clock("derived variables"):
                return fn(m)

        return derived

    for key, fn in saved.items():
        items[key] = timed_derived(fn)
    try:
        yield
    finally:
        items.clear()
        items.update(saved)
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def bench_breakdown(name: str, config: dict, repeats: int = 3) -> dict:
    """Seconds per stage of ``load`` (best of ``repeats`` per stage, timers on)."""
    import hepnn.io

    cfg, reads = _resolved(config)
    hepnn.io.load(cfg)
    runs = []
    threads = os.environ.get("HEPNN_READER_THREADS")
    os.environ["HEPNN_READER_THREADS"] = "1"  # one thread: CPU time per stage is the stage's own
    try:
        for _ in range(repeats):
            totals: dict = {}
            with _timers(totals):
                t0 = _clock()
                hepnn.io.load(cfg)
                totals["total"] = _clock() - t0
            runs.append(totals)
    finally:
        if threads is None:
            del os.environ["HEPNN_READER_THREADS"]
        else:
            os.environ["HEPNN_READER_THREADS"] = threads
    best = min(runs, key=lambda t: t["total"])
    # each stage's own time: building the inputs beyond sorting, padding, derived variables and
    # images is NaN checks, feature stacking, gathers of the kept elements
    best["other input building"] = sum(best.pop(k) for k in list(best) if k.startswith("_build "))
    best["padding"] = best.get("padding", 0.0) + best.pop("_padding in load", 0.0)
    best["cuts, labels, split"] = best.pop("_process_chunk", 0.0)
    accounted = sum(v for k, v in best.items() if k != "total")
    best["rest (files, bookkeeping, Python)"] = best["total"] - accounted
    t_uproot = min(_cpu(lambda: _uproot(reads)) for _ in range(repeats))
    out = {"case": name, "cpu_seconds_one_thread": True, "uproot_arrays": round(t_uproot, 4)}
    out.update({k: round(v, 4) for k, v in best.items()})
    return out


def bench_unpadded(name: str, config: dict, repeats: int) -> dict:
    """CPU seconds (one thread, best and median of ``repeats``, alternating) of the stages of ``load`` after
    the chunks are built, for the first sequence input: padded first (pad each chunk, concatenate, fit on the
    real rows, transform the padded array) against unpadded, as ``load`` does it (fit on the kept training
    rows of every chunk, each chunk standardised while padded into its rows of one array; the rows past
    ``max_length`` are dropped by the fit's selection and the padding), from the same chunks; the results
    are compared."""
    import hepnn.io.representations as reps
    from hepnn.io.chunks import iterate_chunks
    from hepnn.io.load import _assembled, _fit_rows, fit_preprocessing
    from hepnn.preprocessing import Preprocessor

    def concatenated(parts):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    cfg, _ = _resolved(config)
    data = cfg.data
    seq = next(n for n, i in data.inputs.items() if i.kind == "sequence")
    inp = data.inputs[seq]
    threads = os.environ.get("HEPNN_READER_THREADS")
    os.environ["HEPNN_READER_THREADS"] = "1"
    try:
        chunks = list(iterate_chunks(data, pad=False))

        def padded_first():
            out = []
            for c in chunks:
                r = c[seq]
                x, mask = reps.pad_sequences(r.counts, r.features, inp.max_length, None, True, inp.pad_value)
                out.append({**c, seq: x, f"{seq}_mask": mask})
            arrays = concatenated(out)
            return fit_preprocessing(data, chunks=[arrays]).transform(arrays)[seq]

        def unpadded():  # as load: fitted on the chunks, each padded into its rows of one array
            parts = [dict(c) for c in chunks]
            pre = Preprocessor.from_config(data)
            pre.fit_parts([_fit_rows(data, c, pre) for c in parts])
            return _assembled(parts, pre, True)[seq]

        if padded_first().tobytes() != unpadded().tobytes():
            raise AssertionError(f"{name}: the two orders of padding and standardising differ")
        times: dict = {"padded_first": [], "unpadded": []}
        for _ in range(repeats):
            for key, fn in (("padded_first", padded_first), ("unpadded", unpadded)):
                times[key].append(_cpu(fn))
    finally:
        if threads is None:
            del os.environ["HEPNN_READER_THREADS"]
        else:
            os.environ["HEPNN_READER_THREADS"] = threads
    return {"case": name, "cpu_seconds_one_thread": True, "elements": int(sum(len(c[seq].features) for c in chunks)),
            **{f"{k}_best": round(min(v), 3) for k, v in times.items()},
            **{f"{k}_median": round(float(np.median(v)), 3) for k, v in times.items()}}


def _clock() -> float:
    """CPU seconds of this process (the breakdown runs one thread)."""
    return time.process_time()


def _cpu(fn) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def _both(fn) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def bench_scale(ttbar: Path, cache: Path, sizes: list[int], repeats: int) -> dict:
    """Microseconds per jet of ``load`` and ``iterate`` (case a, TTree) for files of ``sizes`` jets."""
    import hepnn.io
    from hepnn.config import load_config

    out = {}
    for size in sizes:
        path, n_all = replicated(ttbar, "Events", size, cache)
        cfg = load_config(config_a(path))
        _, reads = _resolved(config_a(path))
        n = hepnn.io.load(cfg).n_jets
        reps = max(2, min(repeats, int(repeats * 100_000 / size)))
        load, stream, plain = [], [], []
        for _ in range(reps):  # alternated
            load.append(_both(lambda: hepnn.io.load(cfg)))
            stream.append(_both(lambda: sum(len(c["label"]) for c in hepnn.io.iterate(cfg))))
            plain.append(_both(lambda: _uproot(reads)))
        load_us, uproot_us = 1e6 * min(t for t, _ in load) / n, 1e6 * min(t for t, _ in plain) / n
        out[str(size)] = {"file_jets": n_all, "selected_jets": n, "repeats": reps,
                          "load_us_per_jet": round(load_us, 3),
                          "iterate_us_per_jet": round(1e6 * min(t for t, _ in stream) / n, 3),
                          "uproot_us_per_jet": round(uproot_us, 3),
                          "load_minus_uproot_us_per_jet": round(load_us - uproot_us, 3),
                          "cpu_load_us_per_jet": round(1e6 * min(c for _, c in load) / n, 3),
                          "cpu_iterate_us_per_jet": round(1e6 * min(c for _, c in stream) / n, 3)}
        print(f"  scale {size}: {json.dumps(out[str(size)])}", flush=True)
    first, last = out[str(sizes[0])], out[str(sizes[-1])]
    for key in ("load_us_per_jet", "iterate_us_per_jet", "uproot_us_per_jet", "load_minus_uproot_us_per_jet",
                "cpu_load_us_per_jet", "cpu_iterate_us_per_jet"):
        out[f"{key}_last_over_first"] = round(last[key] / first[key], 2)
    return out


def _vm(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_child(path: str, step: int) -> None:
    """Peak RSS growth while streaming ``path`` above the RSS after imports (the peak is reset there)."""
    import awkward  # noqa: F401 - imported by the reader on first use; not part of the growth
    import numba  # noqa: F401 - as awkward (the compiled loops), with LLVM: about 100 MB
    import uproot

    import hepnn.io
    from hepnn.config import load_config

    config = config_a(Path(path))
    config["data"]["step_size"] = step
    cfg = load_config(config)
    uproot.open(path)["Events"].keys()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    base = _vm("VmRSS")
    n = sum(len(chunk["label"]) for chunk in hepnn.io.iterate(cfg))
    print(json.dumps({"base_mb": round(base, 1), "growth_mb": round(_vm("VmHWM") - base, 1), "n_jets": n}))


def bench_rss(ttbar: Path, cache: Path, sizes: list[int], step: int) -> dict:
    """Peak RSS growth of streaming (``iterate``, ``step`` entries per chunk) the two largest files
    (both several chunks long: a file shorter than one chunk would make a smaller chunk)."""
    out = {"step_size_entries": step}
    sizes = sorted(sizes)[-2:]
    for size in sizes:
        path, _ = replicated(ttbar, "Events", size, cache)
        res = subprocess.run([sys.executable, __file__, "--rss-child", str(path), str(step)],
                             capture_output=True, text=True, check=True)
        out[str(size)] = json.loads(res.stdout.strip().splitlines()[-1])
    out["growth_ratio"] = round(out[str(sizes[-1])]["growth_mb"] / max(out[str(sizes[0])]["growth_mb"], 1e-9), 2)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default=os.environ.get("HEPNN_BENCH_CACHE", "/tmp/hepnn_read_bench"),
                        help="folder of the generated samples (made on first use)")
    parser.add_argument("--parts", default="ratio,breakdown,scale,rss")
    parser.add_argument("--formats", default="ttree,rntuple")
    parser.add_argument("--cases", default="a,b,c")
    parser.add_argument("--event-jets", type=int, default=50000, help="jets of the per-event ttbar sample")
    parser.add_argument("--jet-jets", type=int, default=75000, help="jets of the per-jet top + qcd samples")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale-jets", default="10000,100000,1000000")
    parser.add_argument("--rss-step", type=int, default=4000, help="rss part: entries (events) per chunk")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    configs = cases(cache, args.formats.split(","), args.cases.split(","), args.event_jets, args.jet_jets)
    if "ratio" in parts:
        for name, config in configs.items():
            print("ratio:", json.dumps(bench_ratio(name, config, args.repeats)), flush=True)
    if "breakdown" in parts:
        for name, config in configs.items():
            print("breakdown:", json.dumps(bench_breakdown(name, config)), flush=True)
    if "unpadded" in parts:  # not in the default parts: cases with a sequence input (a, b)
        for name, config in configs.items():
            if not name.startswith("c"):
                print("unpadded:", json.dumps(bench_unpadded(name, config, args.repeats)), flush=True)
    sizes = [int(s) for s in args.scale_jets.split(",")]
    ttbar = generated(cache, "ttbar", args.event_jets, "per_event")
    if "scale" in parts:
        print("scale:", json.dumps(bench_scale(ttbar, cache, sizes, args.repeats)), flush=True)
    if "rss" in parts:
        print("rss:", json.dumps(bench_rss(ttbar, cache, sizes, args.rss_step)), flush=True)
    print(f"load average at end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
