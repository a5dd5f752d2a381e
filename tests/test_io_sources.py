"""entries_per_step: the chunk size of a memory-size step_size, as uproot computes it."""

from __future__ import annotations

import itertools

import awkward as ak
import numpy as np
import pytest
import uproot

from hepnn.io.sources import entries_per_step


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


@pytest.mark.parametrize("align", [True, False])
def test_rntuple_ranges_decompress_every_page_once(tmp_path, monkeypatch, align):
    """uproot decompresses the cluster after a range that ends on a cluster boundary, and the cluster a
    cut falls in for both ranges; read through BoundaryClusterCache, every page is decompressed once,
    as when the whole file is read in one call, and the values are the same."""
    import collections

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
    pages = collections.Counter()
    model = type(uproot.open(path)["Events"])
    original = model.read_page

    def counting(self, destination, cluster_idx, col_idx, page_idx, *args, **kwargs):
        pages[(cluster_idx, col_idx, page_idx)] += 1
        return original(self, destination, cluster_idx, col_idx, page_idx, *args, **kwargs)

    monkeypatch.setattr(model, "read_page", counting)
    whole = uproot.open(path)["Events"].arrays(["x", "v"], array_cache=None)
    once = dict(pages)
    pages.clear()
    tree = uproot.open(path)["Events"]
    chunks = list(iterate_tree(SourceFile(str(path), "Events", 0, 0, 1.0), tree, ["x", "v"], 250, align_clusters=align))
    assert len(chunks) > 3
    assert dict(pages) == once  # every page of every cluster once
    assert ak.concatenate([a for a, _ in chunks]).to_list() == whole.to_list()
