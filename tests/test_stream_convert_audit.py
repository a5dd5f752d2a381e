"""Audit of conversion, iteration, streaming and the stream cache against brute-force references.

``hepnn.io.load`` is the reference: what ``convert`` writes, what ``iterate`` yields and what
``batches`` streams (cached or not) must be the same jets, array for array.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import awkward as ak
import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.io.convert import convert, read_npz
from hepnn.io.stream import batches, chunk_cache
from test_io_fixtures import PER_EVENT_YAML, PER_JET_YAML, make_per_event, make_per_jet, per_event_data, write_tree

SPLITS = ("train", "val", "test")


def per_event_config(tmp_path):
    """Four per-event files (weights, spectators); file 1 has no jet passing the cuts."""
    yaml_text = PER_EVENT_YAML.replace("  jets: Jet\n", "  jets: Jet\n  weight: event\n  spectators: [Jet_pt, Jet_mass]\n")
    path = make_per_event(tmp_path, n_files=4, n_events=25, yaml_text=yaml_text)
    events = per_event_data(25, seed=9)
    events["Jet"] = ak.zip({k: events["Jet"][k] * (0.01 if k == "pt" else 1) for k in events["Jet"].fields})
    write_tree(tmp_path / "ttbar_1.root", "Events", events)
    return hepnn.load_config(path)


def per_jet_config(tmp_path):
    yaml_text = PER_JET_YAML.replace(
        "  inputs:", "  weight: jet_tau21\n  spectators: [jet_pt, jet_mass]\n  cuts: [{variable: jet_mass, min: 30}]\n  inputs:")
    return hepnn.load_config(make_per_jet(tmp_path, n=50, yaml_text=yaml_text))


@pytest.fixture(params=["per_event", "per_jet"])
def config(request, tmp_path):
    return (per_event_config if request.param == "per_event" else per_jet_config)(tmp_path)


def assert_same(got: dict, ref, keys, where: str) -> None:
    assert set(keys) <= set(got), f"{where}: missing {set(keys) - set(got)}"
    for key in keys:
        assert got[key].dtype == ref[key].dtype, f"{where}: {key} dtype"
        np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{where}: {key}")


def test_convert_reads_back_as_load(config, tmp_path):
    data = hepnn.io.load(config)
    assert any(k.startswith("spec_") for k in data.keys()) and not np.all(data["weight"] == 1)
    counts = convert(config, tmp_path / "converted")
    for name in SPLITS:
        ref = data.split(name)
        got = read_npz(tmp_path / "converted" / f"{name}.npz")
        assert counts[name] == ref.n_jets == len(got["label"]) > 0
        assert_same(got, ref, [k for k in ref.keys() if k != "split"], f"{name}.npz")


def test_iterate_concatenated_equals_load_and_splits_partition(config):
    raw = hepnn.io.load(config, standardize=False)
    seen = []
    for split in (None, *SPLITS):
        chunks = list(hepnn.io.iterate(config, split=split, step_size=3))
        got = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        ref = raw if split is None else raw.split(split)
        assert_same(got, ref, list(ref.keys()), f"iterate(split={split})")
        if split is not None:
            seen.append(got["spec_" + ("Jet_pt" if "spec_Jet_pt" in got else "jet_pt")])
    # train/val/test: every jet in exactly one of them (jet pt values are distinct floats)
    everything = np.sort(np.concatenate(seen))
    assert len(everything) == raw.n_jets and len(np.unique(everything)) == raw.n_jets
    np.testing.assert_array_equal(everything, np.sort(raw["spec_" + ("Jet_pt" if "spec_Jet_pt" in raw else "jet_pt")]))


def jets_of(batch_list, key="jet"):
    return np.concatenate([b[0][key] for b in batch_list])


def stream(cfg, seed, cache=None, shuffle=True, **kw):
    return list(batches(cfg, "train", batch_size=8, shuffle=shuffle, seed=seed, step_size=7, cache_dir=cache,
                        cycle_length=2, **kw))


def test_unshuffled_stream_equals_load_cached_or_not(tmp_path):
    cfg = per_event_config(tmp_path)
    data = hepnn.io.load(cfg)
    train = data.split("train")
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # uncached, writing, reading
        got = stream(cfg, 0, cache, shuffle=False, preprocessing=data.preprocessing)
        for key in ("jet", "tracks"):
            np.testing.assert_allclose(jets_of(got, key), train[key], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), train["label"])
        np.testing.assert_array_equal(np.concatenate([b[2] for b in got]), train["weight"])


def test_cached_pass_gives_the_batches_of_the_uncached_pass(tmp_path):
    """Same seed, same batches whether the pass reads the files or the cache (a rerun, or a run
    resumed at the end of epoch 0, trains on what the first run trained on)."""
    cfg = hepnn.load_config(make_per_event(tmp_path, n_files=5, n_events=30))
    pre = hepnn.io.load(cfg).preprocessing
    cache = tmp_path / "cache"
    for seed in (3, 4):
        plain = stream(cfg, seed, preprocessing=pre)
        writing = stream(cfg, seed, cache, preprocessing=pre)
        assert (cache / "complete.json").is_file()
        reading = stream(cfg, seed, cache, preprocessing=pre)
        for got in (writing, reading):
            assert len(got) == len(plain)
            np.testing.assert_array_equal(jets_of(got), jets_of(plain))
            np.testing.assert_array_equal(jets_of(got, "tracks"), jets_of(plain, "tracks"))
            np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), np.concatenate([b[1] for b in plain]))
    assert not np.array_equal(jets_of(stream(cfg, 3, cache, preprocessing=pre)), jets_of(reading))


def test_shuffled_pass_has_every_jet_once_and_is_seeded(tmp_path):
    cfg = hepnn.load_config(make_per_event(tmp_path, n_files=5, n_events=30))
    ref = np.sort(hepnn.io.load(cfg, standardize=False).split("train")["jet"], axis=0)
    first, again, other = (jets_of(stream(cfg, s)) for s in (1, 1, 2))
    for got in (first, other):
        np.testing.assert_array_equal(np.sort(got, axis=0), ref)
        assert len(np.unique(got[:, 0])) == len(ref)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_truncated_cache_chunk_is_not_read(tmp_path):
    """A chunk file cut short (a crash before the data reached the disk) makes the cache incomplete."""
    cfg = hepnn.load_config(make_per_event(tmp_path, n_files=2, n_events=30))
    cache = tmp_path / "cache"
    first = stream(cfg, 1, cache)
    biggest = max((cache / "chunks").iterdir(), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])
    assert not chunk_cache(cache, cfg, "train").is_complete()
    again = stream(cfg, 1, cache)
    assert len(jets_of(again)) == len(jets_of(first))
    np.testing.assert_array_equal(jets_of(again), jets_of(first))


ANALYSIS = """
import numpy as np
from hepnn.analysis import Analysis


class PtCut(Analysis):
    def select(self, jets):
        return np.asarray(jets["Jet_pt"]) > {cut}
"""


def load_analysis(tmp_path, cut: float, config):
    """The same module and class, as a user would have it before and after editing ``select``."""
    module_file = tmp_path / "ptcut_analysis.py"
    module_file.write_text(textwrap.dedent(ANALYSIS.format(cut=cut)))
    spec = importlib.util.spec_from_file_location("ptcut_analysis", module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ptcut_analysis"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("ptcut_analysis", None)
    return module.PtCut(config=config, directory=tmp_path)


def test_an_edited_analysis_hook_is_not_served_from_the_cache(tmp_path):
    path = make_per_event(tmp_path, n_files=2, n_events=30)
    cfg = hepnn.load_config(path)
    cache = tmp_path / "cache"
    n_loose = len(jets_of(stream(cfg, 1, cache, analysis=load_analysis(tmp_path, 30.0, path))))
    tight = load_analysis(tmp_path, 60.0, path)  # the hook edited, the run started again
    got = jets_of(stream(cfg, 1, cache, analysis=tight))
    ref = hepnn.io.load(cfg, tight, standardize=False).split("train")["jet"]
    assert len(got) == len(ref) < n_loose
    assert got[:, 0].min() > 60.0
    np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(ref, axis=0))


def test_cache_key_covers_what_the_chunks_depend_on(tmp_path):
    path = make_per_event(tmp_path, n_files=2, n_events=30)
    cfg = hepnn.load_config(path)
    pre = hepnn.io.load(cfg).preprocessing
    key = chunk_cache(tmp_path / "c", cfg, "train", pre).fingerprint
    assert chunk_cache(tmp_path / "c", hepnn.load_config(path), "train", pre).fingerprint == key  # stable
    changed = {
        "cuts": chunk_cache(tmp_path / "c", hepnn.load_config(path, ["data.cuts=[{variable: Jet_pt, min: 25}]"]), "train", pre),
        "inputs": chunk_cache(tmp_path / "c", hepnn.load_config(path, ["data.inputs.tracks.max_length=9"]),
                              "train", pre),
        "split": chunk_cache(tmp_path / "c", cfg, "val", pre),
        "preprocessing": chunk_cache(tmp_path / "c", cfg, "train", None),
        "step_size": chunk_cache(tmp_path / "c", cfg, "train", pre, step_size=5),
    }
    for what, cache in changed.items():
        assert cache.fingerprint != key, what
    stat = (tmp_path / "ttbar_1.root").stat()
    os.utime(tmp_path / "ttbar_1.root", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert chunk_cache(tmp_path / "c", cfg, "train", pre).fingerprint != key, "file modification time"
