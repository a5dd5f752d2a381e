"""``hepnn.datasets.generate``: run the generator in worker processes and write a ROOT file.

Work is split statically: worker ``k`` of ``J`` makes ``N // J`` (+1) jets from its
own Pythia seed (derived from ``(seed, k)`` with :class:`numpy.random.SeedSequence`),
and the main process writes the workers' jets round-robin, in blocks of whole events of at
least :data:`INTERLEAVE_JETS` jets (worker 0's first block, worker 1's first block, ...). Every
branch (values and order of the jets) therefore depends only on ``(sample, options, N, seed,
jobs, layout)``, and not on the performance options ``chunk_jets`` and ``events_per_batch``
(which the provenance record lists with the other options); the bytes of the file do not
repeat, as the ROOT headers hold write times and a UUID. Memory is bounded by a few chunks per
worker and the block being gathered; the file is written under a temporary name
and renamed at the end, so an interrupted run leaves nothing under the final name, and the
next run removes the temporary file a killed run left behind. Worker processes end with their parent, also
when the parent is killed with SIGKILL (``PR_SET_PDEATHSIG`` on Linux, plus a watchdog
thread polling the parent pid).
"""

from __future__ import annotations

import os
import queue as queue_module
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .._faults import fault
from .._fileio import atomic_path, remove_stale_parts
from .._version import __version__
from ..exceptions import ConfigError, HepnnError, OutputDirError, suggest
from ..outdir import claim_file
from .clustering import cluster_jets, kinematics
from .matching import hadron_flavour, match_resonance
from .pythia import charge_of, make_pythia, next_batch
from .samples import SAMPLES, SampleDefinition, resolve_options
from .substructure import substructure
from .tracks import PIXEL_R_MAX, PIXEL_Z_MAX, impact_parameters, track_selection
from .writer import ChunkWriter, read_provenance

__all__ = ["generate", "LAYOUTS", "MAX_EVENTS_WITHOUT_JETS", "INTERLEAVE_JETS", "worker_seeds", "produce",
           "process_batch", "WorkerTraceback"]

LAYOUTS = ("per_jet", "per_event")
_PYTHIA_SEED_MAX = 900_000_000
#: a worker whose first this-many events give no selected jet stops with an error (empty selection)
MAX_EVENTS_WITHOUT_JETS = 50_000
#: with several workers, the file holds blocks of whole events of at least this many jets of one worker,
#: worker after worker: a fixed size, so that the order of jets does not depend on ``chunk_jets``
INTERLEAVE_JETS = 2000


def worker_seeds(seed: int, jobs: int) -> list[int]:
    """Pythia seeds (1 .. 900 000 000) of the ``jobs`` workers of a run with ``seed``.

    Examples
    --------
    >>> a = worker_seeds(1, 2)
    >>> len(set(a)) == 2 and a == worker_seeds(1, 2)
    True
    """
    return [int(np.random.SeedSequence([seed, k]).generate_state(1)[0]) % _PYTHIA_SEED_MAX + 1
            for k in range(jobs)]


def process_batch(defn: SampleDefinition, pythia, batch, rng: np.random.Generator) -> dict:
    """Cluster, label and measure the jets of one batch of events; return a chunk dict."""
    jets = cluster_jets(batch, defn.jet_r, defn.pt_min, defn.pt_max, defn.eta_max, defn.n_leading)
    if defn.kind == "flavour":
        flavour = hadron_flavour(batch, jets)
        label = flavour
    else:
        if defn.signal_id is not None:
            jets = jets.take(match_resonance(batch, jets, defn.signal_id, defn.jet_r))
            label = np.ones(jets.n_jets, dtype=np.int32)
        else:
            label = np.zeros(jets.n_jets, dtype=np.int32)
        flavour = np.zeros(jets.n_jets, dtype=np.int32)
    cons = jets.constituents
    counts = np.diff(jets.cons_offsets)
    px, py, pz, e = batch.px[cons], batch.py[cons], batch.pz[cons], batch.e[cons]
    pid = batch.id[cons]
    charge = charge_of(pythia, pid)
    cpt, ceta, cphi, _ = kinematics(px, py, pz, e)
    jpt, jeta, jphi, jmass = kinematics(jets.px, jets.py, jets.pz, jets.e)
    taus, sd_mass = substructure(px, py, pz, e, counts, defn.jet_r)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau21 = np.where(taus[:, 0] > 0, taus[:, 1] / taus[:, 0], 0.0)
        tau32 = np.where(taus[:, 1] > 0, taus[:, 2] / taus[:, 1], 0.0)
    f32 = np.float32
    chunk = {
        "jet": {
            "pt": jpt.astype(f32), "eta": jeta.astype(f32), "phi": jphi.astype(f32),
            "mass": jmass.astype(f32), "energy": jets.e.astype(f32),
            "nparticles": counts.astype(np.int32),
            "tau1": taus[:, 0].astype(f32), "tau2": taus[:, 1].astype(f32), "tau3": taus[:, 2].astype(f32),
            "tau21": tau21.astype(f32), "tau32": tau32.astype(f32), "sdmass": sd_mass.astype(f32),
            "label": label.astype(np.int32), "flavour": flavour.astype(np.int32),
        },
        "event": jets.event.astype(np.int64),
        "part": {
            "px": px.astype(f32), "py": py.astype(f32), "pz": pz.astype(f32), "energy": e.astype(f32),
            "pt": cpt.astype(f32), "eta": ceta.astype(f32), "phi": cphi.astype(f32),
            "charge": charge.astype(np.int32), "pid": pid.astype(np.int32),
        },
        "part_counts": counts.astype(np.int64),
    }
    # every charged constituent that makes a track carries its impact parameters (all samples)
    owner = np.repeat(np.arange(jets.n_jets), counts)
    sel = track_selection(charge, cpt, batch.vx[cons], batch.vy[cons], batch.vz[cons], defn.track_pt_min)
    d0, z0, d0sig, z0sig = impact_parameters(
        px[sel], py[sel], pz[sel], batch.vx[cons][sel], batch.vy[cons][sel], batch.vz[cons][sel],
        jphi[owner[sel]], jeta[owner[sel]], rng)
    for key, values in (("d0", d0), ("z0", z0), ("d0sig", d0sig), ("z0sig", z0sig)):
        full = np.zeros(len(sel), dtype=f32)
        full[sel] = values
        chunk["part"][key] = full
    chunk["part"]["istrack"] = sel.astype(np.int32)
    if defn.kind == "flavour":
        chunk["track"] = {
            "pt": cpt[sel].astype(f32), "eta": ceta[sel].astype(f32), "phi": cphi[sel].astype(f32),
            "charge": charge[sel].astype(np.int32), "d0": d0.astype(f32), "z0": z0.astype(f32),
            "d0sig": d0sig.astype(f32), "z0sig": z0sig.astype(f32),
        }
        chunk["track_counts"] = np.bincount(owner[sel], minlength=jets.n_jets).astype(np.int64)
    return chunk


def _slice_chunk(chunk: dict, n: int, start: int = 0) -> dict:
    """Jets ``start`` to ``n`` (exclusive) of a chunk (no ``timing``)."""
    out = {"jet": {k: v[start:n] for k, v in chunk["jet"].items()}, "event_number": chunk["event_number"][start:n]}
    for coll in ("part", "track"):
        if coll in chunk:
            all_counts = chunk[f"{coll}_counts"]
            first, stop = int(all_counts[:start].sum()), int(all_counts[:n].sum())
            out[coll] = {k: v[first:stop] for k, v in chunk[coll].items()}
            out[f"{coll}_counts"] = all_counts[start:n]
    return out


def _blocks(chunks: Iterator[dict], size: int) -> Iterator[dict]:
    """Regroup one worker's chunks into blocks of whole events holding at least ``size`` jets (the last
    block: the rest). The blocks depend on the jets only, not on how the worker cut its chunks."""
    block: list[dict] = []
    n_block = 0
    for chunk in chunks:
        start = 0
        n_chunk = len(chunk["event_number"])
        events = chunk["event_number"]
        # a chunk ends with a whole event (or the worker's last jet)
        bounds = np.r_[np.flatnonzero(events[1:] != events[:-1]) + 1, n_chunk]
        while start < n_chunk:
            ends = bounds[bounds >= start + size - n_block]
            stop = int(ends[0]) if len(ends) else n_chunk
            piece = _slice_chunk(chunk, stop, start)
            # the chunk's time is counted once, with its first piece
            piece["timing"] = chunk["timing"] if start == 0 else dict.fromkeys(chunk["timing"], 0)
            block.append(piece)
            n_block += stop - start
            start = stop
            if n_block >= size:
                yield _concat(block)
                block, n_block = [], 0
    if block:
        yield _concat(block)


def _concat(chunks: list[dict]) -> dict:
    if len(chunks) == 1:
        return chunks[0]
    out = {"jet": {k: np.concatenate([c["jet"][k] for c in chunks]) for k in chunks[0]["jet"]},
           "event_number": np.concatenate([c["event_number"] for c in chunks])}
    for coll in ("part", "track"):
        if coll in chunks[0]:
            out[coll] = {k: np.concatenate([c[coll][k] for c in chunks]) for k in chunks[0][coll]}
            out[f"{coll}_counts"] = np.concatenate([c[f"{coll}_counts"] for c in chunks])
    out["timing"] = {k: sum(c["timing"][k] for c in chunks) for k in chunks[0]["timing"]}
    return out


def produce(defn: SampleDefinition, n_jets: int, seed: int, worker: int, jobs: int) -> Iterator[dict]:
    """Yield chunks of at most ``defn.chunk_jets`` jets until worker ``worker`` has made ``n_jets``.

    Each chunk carries ``timing`` = ``{"pythia": s, "other": s}`` (seconds in
    ``Pythia.nextBatch`` and in everything else), used by the benchmark.

    Raises
    ------
    HepnnError
        The first :data:`MAX_EVENTS_WITHOUT_JETS` events gave no selected jet (options
        that select nothing, e.g. ``pt_min`` above the reach of ``pthat_max``): without
        this the loop would never end.
    """
    pythia = make_pythia(defn.pythia_settings(worker_seeds(seed, jobs)[worker]))
    rng = np.random.default_rng(np.random.SeedSequence([seed, worker, 1]))
    pending: list[dict] = []
    n_pending = n_done = n_events = 0
    while n_done < n_jets:
        t0 = time.perf_counter()
        batch = next_batch(pythia, defn.events_per_batch)
        t1 = time.perf_counter()
        piece = process_batch(defn, pythia, batch, rng)
        # unique over workers: event index in this worker's stream, interleaved
        piece["event_number"] = (n_events + piece.pop("event")) * jobs + worker
        n_events += batch.n_events
        n_new = len(piece["event_number"])
        if n_done == 0 and n_new == 0 and n_events >= MAX_EVENTS_WITHOUT_JETS:
            msg = (f"sample {defn.name}: no jet passed the selection in {n_events} events (pt_min={defn.pt_min:g}, "
                   f"pt_max={defn.pt_max}, eta_max={defn.eta_max:g}, jet_r={defn.jet_r:g}, "
                   f"pthat_min={defn.pthat_min}, pthat_max={defn.pthat_max}); the options select nothing, "
                   "loosen them")
            raise HepnnError(msg)
        if n_new > n_jets - n_done:
            piece = _slice_chunk(piece, n_jets - n_done)
            n_new = n_jets - n_done
        piece["timing"] = {"pythia": t1 - t0, "other": time.perf_counter() - t1, "events": batch.n_events}
        n_done += n_new
        if n_new:
            pending.append(piece)
            n_pending += n_new
        if n_pending >= defn.chunk_jets or (n_done >= n_jets and pending):
            yield _concat(pending)
            pending, n_pending = [], 0


def die_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Make this worker process end when its parent does (even a parent killed by SIGKILL).

    On Linux the kernel sends SIGKILL to this process when the parent dies
    (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread polls ``os.getppid()`` and
    exits when the parent is gone (re-parented), which also covers a parent that died
    before the ``prctl`` call.
    """
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog below still works
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watchdog() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watchdog, name="hepnn-parent-watchdog", daemon=True).start()


def _worker_main(defn, n_jets, seed, worker, jobs, queue, parent_pid=None) -> None:  # pragma: no cover - subprocess
    import traceback

    if parent_pid is not None:
        die_with_parent(parent_pid)
    try:
        fault("generate-worker", {"worker": worker})
        for chunk in produce(defn, n_jets, seed, worker, jobs):
            queue.put(("chunk", chunk))
        queue.put(("done", None))
    except HepnnError as err:  # a hepnn message says what is wrong and how to fix it: no traceback
        queue.put(("error", (f"{type(err).__name__}: {err}", None)))
    except BaseException as err:  # noqa: BLE001 - unexpected: reported to the parent with its traceback
        queue.put(("error", (f"{type(err).__name__}: {err}", traceback.format_exc())))


def _round_robin(defn, n_per_worker, seed, jobs) -> Iterator[dict]:
    """Chunks of all workers, in a fixed order: blocks of :data:`INTERLEAVE_JETS` (whole events) of
    worker 0, 1, ..., 0, 1, ... (one worker: its chunks as they come, in this process). Workers
    with no jets to make (``jobs`` above ``n_jets``) are not started: they would write nothing."""
    workers = [k for k in range(jobs) if n_per_worker[k] > 0]
    if len(workers) == 1:
        yield from produce(defn, n_per_worker[workers[0]], seed, workers[0], jobs)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queues = {k: ctx.Queue(maxsize=2) for k in workers}
    procs = {k: ctx.Process(target=_worker_main, args=(defn, n_per_worker[k], seed, k, jobs, queues[k], os.getpid()),
                            daemon=True, name=f"hepnn-generate-worker-{k}") for k in workers}
    for p in procs.values():
        p.start()
    try:
        blocks = {k: _blocks(_worker_chunks(queues[k], procs[k], k), INTERLEAVE_JETS) for k in workers}
        active = list(workers)
        while active:
            for k in list(active):
                block = next(blocks[k], None)
                if block is None:
                    active.remove(k)
                else:
                    yield block
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


class WorkerTraceback(Exception):
    """The traceback of an unexpected error in a generator worker, as text: the ``__cause__`` of the
    :class:`HepnnError` raised in the parent (shown by Python and by ``hepnn --debug``, not in the
    one-line message)."""


def _worker_chunks(q, proc, k: int) -> Iterator[dict]:
    """The chunks worker ``k`` sends, until it says it is done; its error is raised here: one line
    (the worker's exception), with the worker's traceback chained when the error was not hepnn's."""
    while True:
        kind, payload = _next_message(q, proc, k)
        if kind == "done":
            return
        if kind != "chunk":
            summary, remote = payload
            msg = f"generator worker {k} failed: {summary}"
            raise HepnnError(msg) from (WorkerTraceback(f"in generator worker {k}:\n{remote}") if remote else None)
        yield payload


def _next_message(q, proc, k: int, poll: float = 1.0) -> tuple[str, Any]:
    """The next message of worker ``k``; a worker that died without one (killed, out of memory, a
    crash in compiled code) is an error instead of a wait for ever."""
    while True:
        try:
            return q.get(timeout=poll)
        except queue_module.Empty:
            if proc.is_alive():
                continue
        try:  # what it sent just before it ended is still in the pipe
            return q.get(timeout=poll)
        except queue_module.Empty:
            msg = (f"generator worker {k} ended without finishing (exit code {proc.exitcode}: killed, out of "
                   "memory or crashed); run again (with --jobs 1 to see its error). From a script, call "
                   "generate(..., jobs > 1) under `if __name__ == \"__main__\":` (the workers are started "
                   "with 'spawn' and import the script again)")
            raise HepnnError(msg) from None


def _check_args(sample, n_jets, seed, jobs, layout):
    if isinstance(sample, str) and sample not in SAMPLES:
        msg = (f"sample: unknown sample {sample!r}{suggest(sample, SAMPLES.names())}; "
               f"valid samples: {', '.join(SAMPLES.names())}")
        raise ConfigError(msg)
    if isinstance(n_jets, bool) or not isinstance(n_jets, (int, np.integer)) or n_jets < 1:
        msg = f"n_jets: expected a positive int, received {n_jets!r}"
        raise ConfigError(msg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"seed: expected a non-negative int, received {seed!r}"
        raise ConfigError(msg)
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        msg = f"jobs: expected a positive int, received {jobs!r}"
        raise ConfigError(msg)
    if layout not in LAYOUTS:
        msg = f"layout: expected one of {', '.join(LAYOUTS)}, received {layout!r}"
        raise ConfigError(msg)


def _generated_by_hepnn(path: Path, sample: str) -> bool:
    """True when ``path`` is a ROOT file of ``sample`` with the provenance record :func:`generate` writes."""
    try:
        record = read_provenance(path)
    except Exception:  # noqa: BLE001 - not ROOT, no provenance, not JSON: not ours
        return False
    return (isinstance(record, dict) and str(record.get("format", "")).startswith("hepnn.datasets provenance")
            and record.get("sample") == sample)


def _provenance(defn: SampleDefinition, n_jets, seed, jobs, layout) -> dict:
    import dataclasses
    import platform
    from importlib import metadata


    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    seeds = worker_seeds(seed, jobs)
    options = {k: v for k, v in dataclasses.asdict(defn).items() if k not in ("processes", "extra")}
    prov = {
        "format": "hepnn.datasets provenance v1",
        "sample": defn.name, "description": defn.description,
        "n_jets": int(n_jets), "seed": int(seed), "jobs": int(jobs), "layout": layout,
        "options": options,
        "worker_pythia_seeds": seeds,
        "pythia_settings": defn.pythia_settings(seeds[0])[:-1] + ["Random:seed = <worker_pythia_seeds[k]>"],
        "jet_algorithm": f"anti-kT R={defn.jet_r:g}, final-state particles except neutrinos",
        "substructure": "N-subjettiness (beta=1, OnePass_KT_Axes, normalised, R0=R) and soft drop "
                        "(beta=0, z_cut=0.1, R0=R) after C/A reclustering",
        "versions": {
            "hepnn": __version__, "pythia8mc": version("pythia8mc"), "fastjet": version("fastjet"),
            "uproot": version("uproot"), "awkward": version("awkward"), "numpy": version("numpy"),
            "python": platform.python_version(),
        },
        "units": "GeV, mm",
    }
    if defn.extra:
        prov["extra"] = dict(defn.extra)  # a plugin's notes (checked to be JSON by resolve_options)
    if defn.kind == "flavour":
        prov["labels"] = ("hadron flavour: 5 if a weakly decaying B hadron with pT > 5 GeV is within dR < 0.3, "
                          "else 4 for a C hadron, else 0")
        prov["tracks"] = (f"charged constituents, pT > {defn.track_pt_min:g} GeV, production vertex r < "
                          f"{PIXEL_R_MAX:g} mm and |z| < {PIXEL_Z_MAX:g} mm; straight-line d0/z0 [mm], Gaussian "
                          "smearing sigma(d0) = 10 um (+) 50 um GeV/pT, sigma(z0) = 20 um (+) 80 um GeV/pT, "
                          "lifetime-signed by the jet direction")
    else:
        prov["labels"] = (f"1: jet contains the PDG {defn.signal_id} resonance and all its decay quarks within "
                          f"dR < {defn.jet_r:g}" if defn.signal_id else "0: background (no matching)")
    return prov


def generate(sample: str | SampleDefinition, n_jets: int, seed: int = 1, out: str | os.PathLike | None = None,
             jobs: int = 1, layout: str = "per_jet", options: Mapping[str, Any] | None = None,
             progress: bool = True, stats: dict | None = None, force: bool = False) -> Path:
    """Generate ``n_jets`` jets of ``sample`` with Pythia 8 + FastJet and write a ROOT file.

    Parameters
    ----------
    sample : {"top", "qcd", "w", "ttbar"} or SampleDefinition
        The sample (see :data:`hepnn.datasets.SAMPLES`).
    n_jets : int
        Number of jets written (the last event of each worker may contribute only some of its jets).
    seed : int
        Base seed; worker ``k`` uses a Pythia seed derived from ``(seed, k)``.
    out : path, optional
        Output file (default ``<sample>.root``). Written atomically. An existing file is
        replaced only when hepnn generated it as the same sample (its ``provenance`` record
        says so: a rerun), or with ``force``.
    jobs : int
        Worker processes (at most ``n_jets`` are started: a larger ``jobs`` gives the same file,
        without the workers that would make no jet). The output is reproducible for a fixed
        ``(sample, n_jets, seed, jobs)``;
        with several workers the file holds blocks of at least :data:`INTERLEAVE_JETS` jets (whole
        events) of worker 0, 1, ..., 0, 1, ... The options ``chunk_jets`` and ``events_per_batch``
        change speed and memory only, never the jets written.
    layout : {"per_jet", "per_event"}
        ``per_jet``: tree ``jets``; ``per_event``: NanoAOD-like tree ``Events``.
    options : mapping, optional
        Generator options: ``pt_min``, ``pt_max``, ``eta_max``, ``jet_r``, ``n_leading``, ``mpi``,
        ``pthat_min``, ``pthat_max``, ``track_pt_min``, ``events_per_batch``, ``chunk_jets``
        (see :data:`hepnn.datasets.OPTIONS`). Numbers must be finite (``None`` means no limit for
        ``pt_max``, ``pthat_min``, ``pthat_max``); ``pt_min`` and ``pthat_min`` lie below 7000 GeV.
    progress : bool
        Show a tqdm progress bar (jets/s) on stderr.
    stats : dict, optional
        Filled with ``pythia_s``, ``other_s`` (summed over workers), ``events``, ``wall_s``.
    force : bool
        Replace an existing ``out`` that is not a sample of the same name generated by hepnn.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ConfigError
        For a bad argument (the message names it and the valid values), checked before any
        worker starts.
    HepnnError
        A worker failed (its hepnn message, without the worker's traceback), e.g. Pythia refused a
        setting of a custom :class:`SampleDefinition`.
    OutputDirError
        ``out`` is a directory, or an existing file that is not a sample of the same name
        generated by hepnn (unless ``force``).

    Examples
    --------
    >>> from hepnn.datasets import generate
    >>> path = generate("qcd", n_jets=20, seed=3, out="qcd.root", progress=False)  # doctest: +SKIP
    >>> import uproot; uproot.open(path)["jets"].num_entries                      # doctest: +SKIP
    20
    """
    _check_args(sample, n_jets, seed, jobs, layout)
    defn = resolve_options(sample, options)
    out = Path(out) if out is not None else Path(f"{defn.name}.root")
    claim_file(out, f"{defn.name} sample written by hepnn generate", lambda p: _generated_by_hepnn(p, defn.name),
               force=force)
    remove_stale_parts(out)
    n_jets, seed, jobs = int(n_jets), int(seed), int(jobs)
    n_per_worker = [n_jets // jobs + (k < n_jets % jobs) for k in range(jobs)]

    totals = {"pythia": 0.0, "other": 0.0, "events": 0}
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_jets, unit="jet", desc=f"generate {defn.name}", file=sys.stderr, dynamic_ncols=True)
    opened = False
    try:
        with atomic_path(out) as tmp:
            opened = True
            writer = ChunkWriter(tmp, layout, with_tracks=defn.kind == "flavour")
            try:
                for chunk in _round_robin(defn, n_per_worker, seed, jobs):
                    for k in totals:
                        totals[k] += chunk["timing"][k]
                    writer.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk["event_number"]))
                writer.write_provenance(_provenance(defn, n_jets, seed, jobs, layout))
            finally:
                writer.close()
    except OSError as err:
        if opened:
            raise
        reason = err.strerror or str(err)
        if isinstance(err, FileExistsError) and err.filename is not None:  # a parent folder is a file
            reason = f"{err.filename} is a file, not a directory"
        msg = f"--out {out}: cannot write a file there ({reason}); choose another --out"
        raise OutputDirError(msg) from None
    finally:
        if bar is not None:
            bar.close()
    if stats is not None:
        stats.update(pythia_s=totals["pythia"], other_s=totals["other"], events=totals["events"],
                     wall_s=time.perf_counter() - start, n_jets=n_jets, jobs=jobs)
    return out
