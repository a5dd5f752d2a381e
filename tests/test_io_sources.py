"""entries_per_step: the chunk size of a memory-size step_size, as uproot computes it."""

from __future__ import annotations

import itertools

import awkward as ak
import numpy as np
import pytest
import uproot

from hepnn.io.sources import _decompression_options, entries_per_step


@pytest.fixture(scope="module")
def tree_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "baskets.root"
    rng = np.random.default_rng(0)
    with uproot.recreate(path) as f:
        for i in range(6):  # one basket per extend, of different sizes
            n = 300 + 150 * i
            counts = rng.integers(0, 12, n)
            data = {"Jet_pt": rng.random(n).astype(np.float32), "event": np.arange(n, dtype=np.int64),
                    "Track_d0": ak.unflatten(rng.normal(size=int(counts.sum())).astype(np.float32), counts)}
            if i == 0:
                f.mktree("Events", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
            f["Events"].extend(data)
    return path


@pytest.mark.parametrize("branches", [["Jet_pt"], ["Jet_pt", "Track_d0"], ["Track_d0", "event", "Track_d0"]])
@pytest.mark.parametrize("step", ["100 MB", "20 kB", "7 kB", "1 kB", "100 B"])
def test_same_chunks_as_uproot(tree_file, branches, step):
    tree = uproot.open(tree_file)["Events"]
    n = entries_per_step(tree, branches, step)
    chunks = uproot.open(tree_file)["Events"].iterate(filter_name=list(dict.fromkeys(branches)), step_size=step, report=True)
    stops = [r.tree_entry_stop for _, r in itertools.islice(chunks, 2)]
    assert stops == [min(n, tree.num_entries), min(2 * n, tree.num_entries)][:len(stops)]
    assert n < tree.num_entries or len(stops) == 1


def test_entries_and_rntuple_pass_through(tmp_path):
    assert entries_per_step(None, ["x"], 5000) == 5000
    path = tmp_path / "rntuple.root"
    with uproot.recreate(path) as f:
        f.mkrntuple("Events", {"x": np.arange(10.0)})
    assert entries_per_step(uproot.open(path)["Events"], ["x"], "1 kB") is None  # uproot computes it


def test_rntuple_chunks_of_whole_clusters(tmp_path):
    """align_clusters: an RNTuple is read in chunks of whole clusters (no cluster decompressed twice),
    the same entries in the same order as uproot's own chunks."""
    from hepnn.io.sources import SourceFile, cluster_ranges, iterate_tree

    path = tmp_path / "clusters.root"
    with uproot.recreate(path) as f:
        for start in range(0, 1000, 100):  # clusters of 100 entries
            chunk = {"x": np.arange(start, start + 100, dtype=np.float64)}
            if start == 0:
                f.mkrntuple("Events", chunk)
            else:
                f["Events"].extend(chunk)
    tree = uproot.open(path)["Events"]
    source = SourceFile(str(path), "Events", 0, 0, 1.0)
    aligned = list(iterate_tree(source, tree, ["x"], 250, align_clusters=True))
    plain = list(iterate_tree(source, tree, ["x"], 250))
    assert [start for _, start in aligned] == [0, 200, 400, 600, 800]
    assert [start for _, start in plain] == [0, 250, 500, 750]  # uproot's chunks cut clusters
    for chunks in (aligned, plain):
        np.testing.assert_array_equal(np.concatenate([np.asarray(a["x"]) for a, _ in chunks]), np.arange(1000.0))
    assert cluster_ranges([(0, 100), (100, 100)], 40) == [(0, 100), (100, 200)]  # a cluster above the step: alone


def _count_pages(monkeypatch, path):
    """A counter of uproot's page reads (decompressions) of the RNTuple in ``path``, by (cluster, column, page)."""
    import collections

    pages = collections.Counter()
    model = type(uproot.open(path)["Events"])
    original = model.read_page

    def counting(self, destination, cluster_idx, col_idx, page_idx, *args, **kwargs):
        pages[(cluster_idx, col_idx, page_idx)] += 1
        return original(self, destination, cluster_idx, col_idx, page_idx, *args, **kwargs)

    monkeypatch.setattr(model, "read_page", counting)
    return pages


@pytest.mark.parametrize("align", [True, False])
def test_rntuple_ranges_decompress_every_page_once(tmp_path, monkeypatch, align):
    """uproot decompresses the cluster after a range that ends on a cluster boundary, and the cluster a
    cut falls in for both ranges; read through BoundaryClusterCache, every page is decompressed once,
    as when the whole file is read in one call, and the values are the same."""
    from hepnn.io.sources import SourceFile, iterate_tree

    path = tmp_path / "clusters.root"
    with uproot.recreate(path) as f:
        for start in range(0, 1000, 100):  # clusters of 100 entries, a jagged field too
            chunk = {"x": np.arange(start, start + 100, dtype=np.float64),
                     "v": ak.unflatten(np.arange(3 * start, 3 * start + 300, dtype=np.float32), np.full(100, 3))}
            if start == 0:
                f.mkrntuple("Events", chunk)
            else:
                f["Events"].extend(chunk)
    pages = _count_pages(monkeypatch, path)
    whole = uproot.open(path)["Events"].arrays(["x", "v"], array_cache=None)
    once = dict(pages)
    pages.clear()
    tree = uproot.open(path)["Events"]
    chunks = list(iterate_tree(SourceFile(str(path), "Events", 0, 0, 1.0), tree, ["x", "v"], 250, align_clusters=align))
    assert len(chunks) > 3
    assert dict(pages) == once  # every page of every cluster once
    assert ak.concatenate([a for a, _ in chunks]).to_list() == whole.to_list()


def _nested_rntuple(path, n_clusters=4, per_cluster=50):
    """An RNTuple with flat, jagged and nested record fields, several clusters."""
    rng = np.random.default_rng(3)
    with uproot.recreate(path) as f:
        for i in range(n_clusters):
            counts = rng.integers(0, 6, per_cluster)
            n = int(counts.sum())
            chunk = {"x": np.arange(i * per_cluster, (i + 1) * per_cluster, dtype=np.float64),
                     "Track_d0": ak.unflatten(rng.normal(size=n).astype(np.float32), counts),
                     "Jet": ak.zip({"pt": ak.unflatten(rng.random(n).astype(np.float32), counts),
                                    "flavour": ak.unflatten(rng.integers(0, 6, n).astype(np.int32), counts)}),
                     "y": rng.integers(0, 9, per_cluster).astype(np.int16)}
            if i == 0:
                f.mkrntuple("Events", chunk)
            else:
                f["Events"].extend(chunk)
    return path


@pytest.mark.parametrize("names", [["x", "Track_d0", "Jet", "y"], ["y", "Jet.pt", "x", "Jet.flavour"], ["Track_d0", "x"]])
def test_parallel_fields_equal_one_call(tmp_path, monkeypatch, names):
    """Fields read in threads, joined: the record array one uproot call returns (fields, order, types, values)."""
    from hepnn.io import rntuple

    monkeypatch.setattr(rntuple, "MIN_PARALLEL_BYTES", 0)
    tree = uproot.open(_nested_rntuple(tmp_path / "nested.root"))["Events"]
    parallel = rntuple.ParallelFields.for_branches(tree, names, threads=4)
    assert parallel is not None
    assert sorted(sum(parallel.groups, [])) == sorted(names)  # every name in one group
    try:
        for start, stop in [(0, 200), (30, 170), (50, 100), (199, 200)]:
            one = tree.arrays(filter_name=names, entry_start=start, entry_stop=stop, library="ak")
            joined = parallel.arrays(start, stop)
            assert joined.fields == one.fields
            assert str(joined.type) == str(one.type)
            assert joined.layout.form == one.layout.form
            assert joined.to_list() == one.to_list()
    finally:
        parallel.close()


def test_parallel_fields_real_physlite(monkeypatch):
    """On real PHYSLITE (fields named 'Collection:var'): the same arrays as one call."""
    from pathlib import Path

    from hepnn.io import rntuple

    monkeypatch.setattr(rntuple, "MIN_PARALLEL_BYTES", 0)
    tree = uproot.open(Path(__file__).parent / "data" / "uproot-physlite-rntuple_v1-0-0-0.root")["EventData"]
    names = ["AnalysisJetsAuxDyn:pt", "AnalysisJetsAuxDyn:eta", "InDetTrackParticlesAuxDyn:d0",
             "InDetTrackParticlesAuxDyn:theta", "AnalysisJetsAuxDyn:HadronConeExclTruthLabelID"]
    parallel = rntuple.ParallelFields.for_branches(tree, names, threads=2)
    assert parallel is not None and len(parallel.groups) == 2
    try:
        one = tree.arrays(filter_name=names, library="ak")
        joined = parallel.arrays(0, int(tree.num_entries))
        assert joined.fields == one.fields
        assert joined.layout.form == one.layout.form
        assert joined.to_list() == one.to_list()
    finally:
        parallel.close()


def test_parallel_fields_only_when_there_is_something_to_split(tmp_path, tree_file):
    from hepnn.io.rntuple import MIN_PARALLEL_BYTES, ParallelFields

    tree = uproot.open(_nested_rntuple(tmp_path / "nested.root"))["Events"]
    assert ParallelFields.for_branches(tree, ["x", "y"], threads=1) is None           # one thread
    assert ParallelFields.for_branches(tree, ["Jet.pt", "Jet.flavour"], threads=4) is None  # one top-level field
    assert ParallelFields.for_branches(tree, ["x", "no_such"], threads=4) is None      # uproot reports it
    assert ParallelFields.for_branches(uproot.open(tree_file)["Events"], ["Jet_pt", "event"], threads=4) is None  # TTree
    small = ParallelFields.for_branches(tree, ["x", "y"], threads=2)
    assert small.groups in ([["x"], ["y"]], [["y"], ["x"]])
    assert not small.worth_it(0, 200)  # a few kB: one call is cheaper
    assert small.bytes_per_entry * 200 < MIN_PARALLEL_BYTES


def test_iterate_tree_in_threads_reads_every_page_once(tmp_path, monkeypatch):
    """iterate_tree with fields in threads (ranges cutting clusters): the same chunks as in one thread,
    every page decompressed once."""
    from hepnn.io import rntuple
    from hepnn.io.sources import SourceFile, iterate_tree

    path = _nested_rntuple(tmp_path / "nested.root", n_clusters=6)
    monkeypatch.setattr(rntuple, "MIN_PARALLEL_BYTES", 0)
    pages = _count_pages(monkeypatch, path)
    names = ["x", "Track_d0", "Jet", "y"]
    chunks = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("HEPNN_READER_THREADS", threads)
        pages.clear()
        source = SourceFile(str(path), "Events", 0, 0, 1.0)
        chunks[threads] = list(iterate_tree(source, uproot.open(path)["Events"], names, 70))
        assert len(chunks[threads]) == 5
        assert set(pages.values()) == {1}, threads
    for (one, start1), (three, start3) in zip(chunks["1"], chunks["3"]):
        assert start1 == start3
        assert three.layout.form == one.layout.form
        assert three.to_list() == one.to_list()


def test_a_double_star_glob_matches_files_in_every_subfolder(tmp_path):
    # data/**/*.root matched one folder level only (glob without recursive=True)
    from hepnn.config import load_config
    from hepnn.io.sources import resolve_files
    from hepnn.training.rundir import input_files

    for sub in ("a", "a/b", "c/d/e"):
        (tmp_path / "data" / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / sub / "x.root").write_bytes(b"")
    config = load_config({"data": {"directory": str(tmp_path), "files": [{"path": "data/**/*.root", "label": 0}],
                                   "inputs": {"jet": {"kind": "flat", "variables": ["pt"]}}}})
    expected = sorted(str(tmp_path / "data" / s / "x.root") for s in ("a", "a/b", "c/d/e"))
    assert sorted(str(s.path) for s in resolve_files(config.data)) == expected
    assert sorted(str(p) for p in input_files(config.data)) == expected


def test_small_baskets_are_inflated_in_the_reading_thread(tmp_path):
    # a thread pool's hand-offs cost more than inflating small baskets: those read without it
    rng = np.random.default_rng(0)
    with uproot.recreate(tmp_path / "small.root") as f:
        f.mktree("t", {"x": "float64"})
        for _ in range(20):
            f["t"].extend({"x": rng.normal(size=100)})  # one basket per extend: ~800 bytes
    with uproot.recreate(tmp_path / "large.root") as f:
        f["t"] = {"x": rng.normal(size=200_000)}  # one basket of 1.6 MB
    pool = uproot.source.futures.ThreadPoolExecutor(2)
    small = uproot.open(tmp_path / "small.root", decompression_executor=pool)["t"]
    large = uproot.open(tmp_path / "large.root", decompression_executor=pool)["t"]
    options = _decompression_options(small, ["x"])
    assert isinstance(options["decompression_executor"], uproot.source.futures.TrivialExecutor)
    assert _decompression_options(large, ["x"]) == {}  # the file's pool
    assert _decompression_options(small, ["no_such_branch"]) == {}
    values = np.concatenate([np.asarray(a["x"]) for a in small.iterate(filter_name=["x"], library="ak", **options)])
    assert len(values) == 2000 and np.array_equal(values, small["x"].array(library="np"))
