"""The on-disk stream cache: later passes read the first pass's processed chunks."""

from __future__ import annotations

import json
import os

import numpy as np

import hepnn
import hepnn.io
from hepnn.io.cache import ChunkCache
from hepnn.io.stream import batches
from test_io_fixtures import make_per_event, per_event_data, write_tree


def rows(batch_list, name="jet"):
    return sorted(map(tuple, np.concatenate([b[0][name] for b in batch_list]).tolist()))


def run(config, cache, seed, **kw):
    return list(batches(config, "train", batch_size=8, shuffle=True, seed=seed, step_size=7, cache_dir=cache, **kw))


def test_later_passes_read_the_cache_not_the_files(tmp_path, monkeypatch):
    config = make_per_event(tmp_path, n_files=3, n_events=30)
    cfg = hepnn.load_config(config)
    data = hepnn.io.load(cfg)
    pre = data.preprocessing
    cache = tmp_path / "cache"
    first = run(cfg, cache, seed=1, preprocessing=pre)
    info = json.loads((cache / "complete.json").read_text())
    assert info["n_jets"] == (data["split"] == 0).sum() and info["n_chunks"] == len(list((cache / "chunks").iterdir()))
    assert info["bytes"] > 0
    # the ROOT files cannot be read any more: a later pass can only come from the cache
    def no_reading(*args, **kwargs):
        raise AssertionError("a cached pass read the ROOT files")

    monkeypatch.setattr(hepnn.io.stream, "iterate_chunks", no_reading)
    second = run(cfg, cache, seed=2, preprocessing=pre)
    assert rows(second) == rows(first) == sorted(map(tuple, data.split("train")["jet"].tolist()))
    assert rows(second, "tracks") == rows(first, "tracks")
    labels = lambda bl: np.sort(np.concatenate([b[1] for b in bl]))  # noqa: E731
    np.testing.assert_array_equal(labels(second), labels(first))
    order = lambda bl: np.concatenate([b[0]["jet"] for b in bl])  # noqa: E731
    assert not np.array_equal(order(second), order(first)), "each pass is shuffled anew"
    np.testing.assert_array_equal(order(run(cfg, cache, seed=2, preprocessing=pre)), order(second))  # seeded


def test_input_files_written_again_are_read_again(tmp_path):
    """A cache of older file contents is never served: the files' sizes and times are in its fingerprint."""
    config = make_per_event(tmp_path, n_files=2, n_events=30)
    cfg = hepnn.load_config(config)
    cache = tmp_path / "cache"
    first = run(cfg, cache, seed=1)
    stamp = (cache / "complete.json").read_text()
    assert rows(run(cfg, cache, seed=1)) == rows(first) and (cache / "complete.json").read_text() == stamp
    # the same file names, other events (another seed): the next pass gives the new jets
    for i in range(2):
        write_tree(tmp_path / f"ttbar_{i}.root", "Events", per_event_data(30, seed=7 + i))
    fresh = rows(run(cfg, cache, seed=1))
    assert fresh != rows(first)
    assert fresh == sorted(map(tuple, hepnn.io.load(cfg, standardize=False).split("train")["jet"].tolist()))
    assert (cache / "complete.json").read_text() != stamp


def test_a_different_fingerprint_or_an_unfinished_pass_rebuilds(tmp_path):
    config = make_per_event(tmp_path, n_files=2, n_events=30)
    cfg = hepnn.load_config(config)
    cache = tmp_path / "cache"
    raw = run(cfg, cache, seed=1, preprocessing=None)
    stamp = (cache / "complete.json").read_text()
    # standardised now: a cache of raw values must not be reused
    pre = hepnn.io.load(cfg).preprocessing
    std = run(cfg, cache, seed=1, preprocessing=pre)
    assert (cache / "complete.json").read_text() != stamp
    assert abs(np.concatenate([b[0]["jet"] for b in std]).mean()) < abs(np.concatenate([b[0]["jet"] for b in raw]).mean())
    # an unfinished pass leaves no marker, so the next pass reads the files again (read in
    # this thread with a small shuffle buffer: otherwise the pass may legitimately be
    # complete before the first batch comes out)
    small = hepnn.load_config(config, ["data.shuffle_buffer=8"])
    pre = hepnn.io.load(small).preprocessing
    std = run(small, cache, seed=1, preprocessing=pre)
    (cache / "complete.json").unlink()
    it = batches(small, "train", batch_size=8, seed=1, step_size=7, cache_dir=cache, preprocessing=pre,
                 read_ahead_chunks=0)
    next(it)
    it.close()
    assert not ChunkCache(cache, "anything").is_complete() and not (cache / "complete.json").exists()
    again = run(small, cache, seed=1, preprocessing=pre)
    assert rows(again) == rows(std)
    assert (cache / "complete.json").is_file()
    # a chunk file lost from a complete cache: not complete any more
    victim = sorted((cache / "chunks").iterdir())[0]
    os.remove(victim)
    assert not ChunkCache(cache, json.loads((cache / "complete.json").read_text())["fingerprint"]).is_complete()


def test_stream_cache_without_streaming_is_a_config_error():
    import pytest

    from hepnn.exceptions import ConfigError

    with pytest.raises(ConfigError, match="training.stream_cache: .*training.streaming: true"):
        hepnn.load_config({"training": {"stream_cache": True}})
    assert hepnn.load_config({"training": {"stream_cache": True, "streaming": True}}).training.stream_cache


def test_chunk_cache_format_roundtrip_and_tf_dataset(tmp_path):
    """Raw column blocks read back by numpy and by TensorFlow's own ops: same values, every jet once."""
    rng = np.random.default_rng(3)
    cache = ChunkCache(tmp_path / "c", "fp")
    cache.begin()
    chunks = []
    for i, n in enumerate([7, 0, 13, 5]):  # an empty chunk (all jets cut) too
        chunk = {"seq": rng.normal(size=(n, 3, 2)).astype("float32"), "seq_mask": rng.random((n, 3)) < 0.5,
                 "label": np.arange(n, dtype="int32") + 100 * i, "weight": rng.random(n).astype("float32")}
        cache.add((0, i), chunk)
        chunks.append(chunk)
    assert not cache.is_complete()
    cache.finish()
    info = cache.info()
    assert info["n_jets"] == 25 and info["n_chunks"] == 4 and info["format"] == "rows-v2"
    assert [f[0] for f in info["fields"]][-1] == "seq_mask"  # widest first: the bools last
    for got, want in zip(cache.read(), chunks):
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    every = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def take(ds):
        out = [{k: v.numpy() for k, v in b.items()} for b in ds]
        return out, {k: np.concatenate([b[k] for b in out]) for k in out[0]}

    batches_, flat = take(cache.dataset(4))  # canonical order
    assert [len(b["label"]) for b in batches_] == [4] * 6 + [1]
    for k in every:
        np.testing.assert_array_equal(flat[k], every[k])
    shuffled, flat = take(cache.dataset(4, keys=["label", "seq"], seed=5, shuffle_buffer=8))
    assert set(flat) == {"label", "seq"}
    assert sorted(flat["label"]) == sorted(every["label"]) and not np.array_equal(flat["label"], every["label"])
    index = {int(v): j for j, v in enumerate(every["label"])}
    np.testing.assert_array_equal(flat["seq"], every["seq"][[index[int(v)] for v in flat["label"]]])  # rows intact
    again, flat2 = take(cache.dataset(4, keys=["label", "seq"], seed=5, shuffle_buffer=8))
    np.testing.assert_array_equal(flat2["label"], flat["label"])  # seeded
    _, other = take(cache.dataset(4, keys=["label"], seed=6, shuffle_buffer=8))
    assert not np.array_equal(other["label"], flat["label"])
    # passes one after the other: pass p is the single pass of seed + p, each ending with its short batch
    several, _ = take(cache.dataset(4, keys=["label"], seed=5, shuffle_buffer=8, passes=3))
    assert [len(b["label"]) for b in several] == ([4] * 6 + [1]) * 3
    singles = [take(cache.dataset(4, keys=["label"], seed=5 + p, shuffle_buffer=8))[1]["label"] for p in range(3)]
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in several]), np.concatenate(singles))
    endless = cache.dataset(4, keys=["label"], seed=5, shuffle_buffer=8, passes=None).take(7 * 5)
    assert sum(len(b["label"]) for b in endless) == 25 * 5
    # an older format or another fingerprint is not complete
    assert not ChunkCache(tmp_path / "c", "other").is_complete()
    marker = json.loads((tmp_path / "c" / "complete.json").read_text())
    (tmp_path / "c" / "complete.json").write_text(json.dumps({**marker, "format": None}))
    assert not cache.is_complete()
