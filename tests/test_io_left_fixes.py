"""Reader/stream fixes: a file skipped part-way through gives no jets when streaming either; analysis
plugin settings in the stream cache key; the dataset's first file found once per streaming pass."""

from __future__ import annotations

import glob
import json
import logging

import awkward as ak
import numpy as np
import pytest
import uproot

import hepnn
import hepnn.io
import hepnn.io.chunks
from hepnn import Analysis
from hepnn.exceptions import InputDataError, PluginError, PluginOutputError
from hepnn.io.sources import BadFileWarning
from hepnn.io.stream import batch_runs, batches, chunk_cache, settings_key
from test_io_fixtures import per_event_data, write_tree

# --- 1. data.skip_bad_files: a file that fails part-way through, streamed ----------------------------


def _files_with_a_bad_last_basket(tmp_path):
    """a.root, b.root, c.root: four baskets of 50 jets each; b's last basket cannot be decompressed."""
    rng = np.random.default_rng(0)
    values = {}
    for name in ("a", "b", "c"):
        with uproot.recreate(tmp_path / f"{name}.root", compression=uproot.ZLIB(1)) as f:
            f.mktree("jets", {"jet_pt": np.float64})
            for _ in range(4):  # rounded values: zlib compresses them, so the baskets are compressed
                f["jets"].extend({"jet_pt": np.round(rng.uniform(0, 100, 50))})
        values[name] = uproot.open(tmp_path / f"{name}.root")["jets"]["jet_pt"].array(library="np")
    seek = int(uproot.open(tmp_path / "b.root")["jets"]["jet_pt"].member("fBasketSeek")[3])
    raw = bytearray((tmp_path / "b.root").read_bytes())
    key_length = (raw[seek + 14] << 8) | raw[seek + 15]
    raw[seek + key_length:seek + key_length + 20] = bytes(20)
    (tmp_path / "b.root").write_bytes(bytes(raw))
    config = {"data": {"layout": "per_jet", "directory": str(tmp_path), "skip_bad_files": True,
                       "files": [{"path": "a.root", "tree": "jets", "label": 0},
                                 {"path": "[bc].root", "tree": "jets", "label": 1}],
                       "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}}
    return config, np.concatenate([values["a"], values["c"]]).astype(np.float32)


def test_iterate_skips_a_file_that_fails_part_way_through_whole(tmp_path):
    """Before: iterate yielded the 150 jets of b.root read before its bad basket (load dropped them)."""
    config, expected = _files_with_a_bad_last_basket(tmp_path)
    summary = {}
    with pytest.warns(BadFileWarning, match=r"b\.root"):
        chunks = list(hepnn.io.iterate(config, step_size=50, summary=summary))
    np.testing.assert_array_equal(np.concatenate([c["jet"][:, 0] for c in chunks]), expected)
    np.testing.assert_array_equal(np.concatenate([c["label"] for c in chunks]), np.repeat([0, 1], 200))
    assert summary["n_jets"] == 400 and summary["skipped"] == [str(tmp_path / "b.root")]
    with pytest.warns(BadFileWarning):
        loaded = hepnn.io.load(config, standardize=False, step_size=50)
    np.testing.assert_array_equal(loaded["jet"][:, 0], expected)  # streaming agrees with load


def test_iterate_without_skip_bad_files_still_raises_part_way_through(tmp_path):
    config, _ = _files_with_a_bad_last_basket(tmp_path)
    config["data"]["skip_bad_files"] = False
    with pytest.raises(InputDataError, match=r"b\.root: cannot read tree 'jets'"):
        list(hepnn.io.iterate(config, step_size=50))


@pytest.mark.parametrize("skip, processed", [(False, 1), (True, 4)])
def test_chunks_are_held_back_only_with_skip_bad_files(tmp_path, monkeypatch, skip, processed):
    """Bounded memory for normal reading: without the option the first chunk is handed over before
    the next is read; with it, once its file (four chunks) has been read to the end."""
    config, _ = _files_with_a_bad_last_basket(tmp_path)
    config["data"]["skip_bad_files"] = skip
    real, calls = hepnn.io.chunks.process_chunk, []
    monkeypatch.setattr(hepnn.io.chunks, "process_chunk", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = next(hepnn.io.iterate(config, step_size=50))
    assert len(calls) == processed and len(first["label"]) == 50


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_stream_and_its_cache_hold_none_of_a_file_skipped_part_way_through(tmp_path, shuffle):
    """Before: the training stream (and the cache it wrote) kept b.root's first 150 jets."""
    config, expected = _files_with_a_bad_last_basket(tmp_path)
    cache = tmp_path / "cache"
    with pytest.warns(BadFileWarning, match=r"b\.root"):
        streamed = list(batches(config, None, batch_size=32, shuffle=shuffle, seed=3, step_size=50,
                                cache_dir=cache))
    values = np.concatenate([b[0]["jet"][:, 0] for b in streamed])
    labels = np.concatenate([b[1] for b in streamed])
    if shuffle:
        values, expected = np.sort(values), np.sort(expected)
    np.testing.assert_array_equal(values, expected)
    assert (labels == 1).sum() == 200 and (labels == 0).sum() == 200
    info = json.loads((cache / "complete.json").read_text())
    assert info["n_jets"] == 400 and info["n_files"] == 3
    cached = list(chunk_cache(cache, config, None, step_size=50).read())
    np.testing.assert_array_equal(np.sort(np.concatenate([c["jet"][:, 0] for c in cached])), np.sort(expected))


# --- 2. analysis plugin settings in the stream cache key ---------------------------------------------


class PtCut(Analysis):
    def __init__(self, threshold, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold

    def select(self, jets):
        return jets["jet_pt"] > self.threshold


class WithModel(PtCut):
    def __init__(self, threshold, **kwargs):
        super().__init__(threshold, **kwargs)
        self.model = object()  # not plain data: the settings cannot be fingerprinted


class NoHooks(Analysis):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.model = object()


def _plain_files(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f.mktree("jets", {"jet_pt": np.float64})
            f["jets"].extend({"jet_pt": np.round(rng.uniform(0, 100, 120), 1)})
    return {"data": {"layout": "per_jet", "directory": str(tmp_path),
                     "files": [{"path": "a.root", "tree": "jets", "label": 0}, {"path": "b.root", "tree": "jets", "label": 1}],
                     "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}}


def _pass(config, analysis, cache):
    out = list(batches(config, None, batch_size=16, shuffle=False, analysis=analysis, step_size=40, cache_dir=cache))
    return np.concatenate([b[0]["jet"][:, 0] for b in out])


def test_two_settings_of_one_plugin_class_do_not_share_a_stream_cache(tmp_path):
    """Before: the key held the class and its code only; PtCut(80) read PtCut(20)'s cached jets."""
    config = _plain_files(tmp_path)
    cache = tmp_path / "cache"
    low, high = PtCut(20.0, config=config), PtCut(80.0, config=config)
    assert chunk_cache(cache, config, None, analysis=low).fingerprint != chunk_cache(cache, config, None,
                                                                                     analysis=high).fingerprint
    first = _pass(config, low, cache)
    assert first.min() > 20 and (first <= 80).any()
    second = _pass(config, high, cache)  # a different key: read from the files, not the cache
    assert second.min() > 80 and len(second) == (first > 80).sum()
    # the same settings in another instance share the cache
    assert chunk_cache(cache, config, None, analysis=PtCut(80.0, config=config)).fingerprint == \
        chunk_cache(cache, config, None, analysis=high).fingerprint
    assert chunk_cache(cache, config, None, step_size=40, analysis=PtCut(80.0, config=config)).is_complete()


def test_a_plugin_whose_settings_are_not_plain_data_gets_its_own_cache(tmp_path, caplog):
    config = _plain_files(tmp_path)
    one, other = WithModel(20.0, config=config), WithModel(20.0, config=config)
    assert one.cache_key() is None
    with caplog.at_level(logging.WARNING, logger="hepnn.io"):
        key = chunk_cache(tmp_path / "c", config, None, analysis=one).fingerprint
        assert chunk_cache(tmp_path / "c", config, None, analysis=one).fingerprint == key  # stable for the instance
        assert chunk_cache(tmp_path / "c", config, None, analysis=other).fingerprint != key
    warned = [r.getMessage() for r in caplog.records if "stream cache" in r.getMessage()]
    assert len(warned) == 2, "once per instance"
    assert "(WithModel): its attribute 'model' is not plain data" in warned[0] and "define cache_key()" in warned[0]
    # a plugin without select/labels hooks: its settings change no jet, so they are not in the key
    assert settings_key(NoHooks(config=config)) is None


def test_cache_key_override_and_its_check(tmp_path):
    config = _plain_files(tmp_path)

    class Keyed(WithModel):
        def cache_key(self):
            return f"threshold={self.threshold}"

    assert settings_key(Keyed(5.0, config=config)) == "threshold=5.0"
    assert chunk_cache(tmp_path, config, None, analysis=Keyed(5.0, config=config)).fingerprint == \
        chunk_cache(tmp_path, config, None, analysis=Keyed(5.0, config=config)).fingerprint

    class Bad(PtCut):
        def cache_key(self):
            return object()

    with pytest.raises(PluginOutputError, match=r"Bad\).*cache_key\(\) must return text or JSON data"):
        settings_key(Bad(1.0, config=config))

    class Raises(PtCut):
        def cache_key(self):
            return self.missing

    with pytest.raises(PluginError, match=r"Raises\): its cache_key\(\) hook raised AttributeError"):
        settings_key(Raises(1.0, config=config))

    class Slotted:  # a plugin object of its own class, without __dict__ or cache_key
        __slots__ = ("threshold",)

        def select(self, jets):
            return None

    assert isinstance(settings_key(Slotted()), str)


def test_default_cache_key_reads_numpy_and_paths_as_plain_data(tmp_path):
    config = _plain_files(tmp_path)
    a, b = PtCut(np.float32(20.0), config=config), PtCut(np.array([20.0]), config=config)
    assert a.cache_key() is not None and b.cache_key() is not None and a.cache_key() != b.cache_key()
    b._private = object()  # private state is not a setting
    assert b.cache_key() == PtCut(np.array([20.0]), config=config).cache_key()


# --- 3. the dataset's first file found once per streaming pass ---------------------------------------


def _guessing_files(tmp_path, n_files):
    for i in range(n_files):
        events = per_event_data(12, seed=i)
        jets = {f: events["Jet"][f] for f in events["Jet"].fields}
        jets["energy"] = jets["pt"] * 2
        events["Jet"] = ak.zip(jets)
        write_tree(tmp_path / f"ev_{i}.root", "Events", events)
    # no data.jet_axis: the jet axis is guessed per file (Jet_pt, Jet_eta, Jet_phi, Jet_energy)
    return {"data": {"directory": str(tmp_path), "layout": "per_event", "files": [{"path": "ev_*.root", "tree": "Events"}],
                     "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
                     "inputs": {"tr": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx",
                                       "variables": ["Track_pt", "rel_eta"], "max_length": 5}}}}


def _counted_pass(tmp_path, n_files, monkeypatch, shuffle):
    folder = tmp_path / f"n{n_files}"
    folder.mkdir()
    config = _guessing_files(folder, n_files)
    calls = {"globbed": 0, "opens": 0}
    real_glob, real_open = glob.glob, uproot.open

    def counting_glob(*args, **kwargs):
        found = real_glob(*args, **kwargs)
        calls["globbed"] += len(found)  # the names listed: the work a glob does
        return found

    def counting_open(*args, **kwargs):
        calls["opens"] += 1
        return real_open(*args, **kwargs)

    monkeypatch.setattr(glob, "glob", counting_glob)
    monkeypatch.setattr(uproot, "open", counting_open)
    runs = list(batch_runs(config, None, batch_size=4, shuffle=shuffle, seed=1, read_ahead_chunks=0))
    monkeypatch.setattr(glob, "glob", real_glob)
    monkeypatch.setattr(uproot, "open", real_open)
    tracks = np.concatenate([r[0]["tr"].reshape(-1, 5, 2) for r in runs])
    return calls, config, tracks


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_streaming_pass_globs_and_opens_linearly_in_the_files(tmp_path, monkeypatch, shuffle):
    """Before: every file of a pass globbed data.files again and opened the first file's header:
    (n + 1) * n names globbed and 2n - 1 opens for n files, now n names and at most n + 1 opens."""
    few, _, _ = _counted_pass(tmp_path, 3, monkeypatch, shuffle)
    many, config, tracks = _counted_pass(tmp_path, 9, monkeypatch, shuffle)
    assert few["globbed"] == 3 and many["globbed"] == 9
    # each file once, and the first file's header once more where another file is read before it
    assert 3 <= few["opens"] <= 4 and 9 <= many["opens"] <= 10
    if not shuffle:  # the same jets as the one-pass reader, in the same order
        loaded = np.concatenate([c["tr"] for c in hepnn.io.iterate(config)])
        np.testing.assert_array_equal(tracks, loaded)
    else:
        assert len(tracks) == sum(len(c["label"]) for c in hepnn.io.iterate(config))


def test_a_streamed_file_with_other_guesses_than_the_first_is_still_an_error(tmp_path):
    config = _guessing_files(tmp_path, 3)
    events = per_event_data(12, seed=7)  # no Jet_energy: the guessed energy differs from ev_0's
    write_tree(tmp_path / "ev_2.root", "Events", events)
    with pytest.raises(InputDataError, match=r"ev_2\.root: data\.jet_axis\.energy \(Jet\) would be read from no "
                                             r"branch, while the dataset's first file .*ev_0\.root gives Jet_energy"):
        list(batch_runs(config, None, batch_size=4, shuffle=False, read_ahead_chunks=0))
