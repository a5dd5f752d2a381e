"""Training feeds: the streaming feed's cached epochs are a tf.data pipeline over the chunk cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.training.feeds import StreamingFeed
from test_io_fixtures import make_per_jet


def epoch(feed, e, skip=0):
    ds = feed.epoch_args(e, skip_steps=skip)["x"]
    return [(x["highlevel"].numpy(), y.numpy(), w.numpy()) for x, y, w in ds]


def test_streaming_feed_reads_later_epochs_from_the_cache_with_tf_ops(tmp_path):
    config = make_per_jet(tmp_path, n=60)
    cfg = hepnn.load_config(config, ["training.streaming=true", "training.stream_cache=true",
                                     "training.batch_size=16", "data.shuffle_buffer=32",
                                     "training.class_weight={signal: 2.0}"])
    data = hepnn.io.load(cfg)
    train = data.split("train")
    feed = StreamingFeed(cfg, ["highlevel"], ["background", "signal"], "binary", data.preprocessing,
                         cache_dir=tmp_path / "cache")
    first = epoch(feed, 0)
    cache = feed.cache()
    assert cache.is_complete(), "epoch 0 wrote the cache the feed reads (same fingerprint as the reader's)"
    assert cache.info()["n_jets"] == len(train["label"])
    # epochs >= 1 come from the cache: the ROOT files are gone
    hidden = [f.rename(f.with_suffix(".hidden")) for f in tmp_path.glob("*.root")]
    one, two = epoch(feed, 1), epoch(feed, 2)
    assert feed.n_train == len(train["label"])
    want = sorted(map(tuple, train["highlevel"].tolist()))
    for e in (first, one, two):
        assert sorted(map(tuple, np.concatenate([b[0] for b in e]).tolist())) == want
        assert [len(b[1]) for b in e[:-1]] == [16] * (len(e) - 1)
    flat = lambda e: np.concatenate([b[0] for b in e])  # noqa: E731
    assert not np.array_equal(flat(one), flat(two)), "each epoch shuffled anew"
    np.testing.assert_array_equal(flat(epoch(feed, 1)), flat(one))  # seeded by (seed, epoch)
    # class weights: label 1 weighs 2, label 0 weighs 1 (the preprocessed weights are 1)
    labels, weights = np.concatenate([b[1] for b in one]), np.concatenate([b[2] for b in one])
    np.testing.assert_array_equal(weights, np.where(labels == 1, 2.0, 1.0))
    # a resume in the middle of an epoch: the batches after the skipped ones
    rest = epoch(feed, 2, skip=3)
    assert len(rest) == len(two) - 3
    np.testing.assert_array_equal(flat(rest), flat(two[3:]))
    # a resumed run whose cache was removed: the cache is rebuilt, the epoch is the same
    for h in hidden:
        h.rename(h.with_suffix(".root"))
    shutil.rmtree(tmp_path / "cache")
    np.testing.assert_array_equal(flat(epoch(feed, 2)), flat(two))
    assert feed.cache().is_complete()


class Killed(BaseException):
    """Raised by the fault hook (nothing catches it, like a kill)."""


def test_stream_cache_run_killed_mid_epoch_resumes_bit_identically(tmp_path, monkeypatch):
    """Killed inside a cached epoch (after a step checkpoint): the resumed run ends with the
    weights and losses of an uninterrupted one (the cached epochs train in one fit)."""
    import hepnn._faults as faults
    from hepnn.config import load_config
    from hepnn.training.trainer import Trainer

    config = make_per_jet(tmp_path, n=120)
    overrides = ["model.name=dense", "model.units=[8]", "model.inputs=[highlevel]", "training.streaming=true",
                 "training.stream_cache=true", "training.batch_size=16", "training.verbose=0", "training.epochs=4",
                 "training.deterministic=true", "training.early_stopping=null", "training.checkpoint_every_n_steps=3"]
    cfg = load_config(config, overrides)
    full = Trainer(cfg, log=lambda s: None).fit(tmp_path / "full")

    def hook(point, info):
        if point == "step" and (info["epoch"], info["step"]) == (2, 6):
            raise Killed(info)

    monkeypatch.setattr(faults, "HOOK", hook)
    with pytest.raises(Killed):
        Trainer(cfg, log=lambda s: None).fit(tmp_path / "cut")
    monkeypatch.setattr(faults, "HOOK", None)
    lines = []
    resumed = Trainer(cfg, log=lines.append).fit(tmp_path / "cut")
    assert any("resuming" in line for line in lines)
    loss = lambda h: [(r["epoch"], r["loss"], r["val_loss"]) for r in h]  # noqa: E731
    assert loss(resumed.history_) == loss(full.history_)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_every_tf_data_pipeline_hepnn_builds_has_no_autotuning_thread(tmp_path):
    """tf.data's autotuning model thread made ``fit`` wait up to 19 s at its end (hepnn._tfdata);
    the in-memory batches keep their order and content through the tf.data pipeline."""
    tf = pytest.importorskip("tensorflow")
    from hepnn.training.batches import EpochBatches
    from hepnn.training.feeds import InMemoryFeed

    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(37, 3)).astype("float32"), "b": rng.normal(size=(37, 4, 2)).astype("float32")}
    y, w = rng.integers(0, 2, 37).astype("int32"), rng.random(37).astype("float32")
    feed = InMemoryFeed(x, y, w, {k: v[:9] for k, v in x.items()}, y[:9], w[:9], batch_size=8, seed=5)
    args = feed.fit_args(2)
    assert args["x"].options().autotune.enabled is False
    assert args["validation_data"].options().autotune.enabled is False
    # two epochs (5 batches each, the last of 5 jets) from the pipeline == EpochBatches' own batches
    reference = EpochBatches(feed, 2)
    for i, (bx, by, bw) in enumerate(args["x"].take(10)):
        rx, ry, rw = reference[i]
        assert set(bx) == {"a", "b"} and len(ry) == (5 if i % 5 == 4 else 8)
        for name in rx:
            np.testing.assert_array_equal(bx[name].numpy(), rx[name])
        np.testing.assert_array_equal(by.numpy(), ry)
        np.testing.assert_array_equal(bw.numpy(), rw)
    assert feed.epoch_args(0, as_dataset=True)["x"].options().autotune.enabled is False

    config = make_per_jet(tmp_path, n=40)
    cfg = hepnn.load_config(config, ["training.streaming=true", "training.stream_cache=true",
                                     "training.batch_size=16"])
    data = hepnn.io.load(cfg)
    assert hepnn.io.make_dataset(cfg, split="train", batch_size=16,
                                     preprocessing=data.preprocessing).options().autotune.enabled is False
    stream = StreamingFeed(cfg, ["highlevel"], ["background", "signal"], "binary", data.preprocessing,
                           cache_dir=tmp_path / "cache")
    assert stream.epoch_args(0)["x"].options().autotune.enabled is False
    epoch(stream, 0)
    assert stream.epoch_args(1)["x"].options().autotune.enabled is False  # read from the cache
    assert stream.fit_args(1)["x"].options().autotune.enabled is False
    assert stream.cache().dataset(16, seed=1, passes=2).options().autotune.enabled is False
    assert isinstance(args["x"], tf.data.Dataset)


def _weighted_pair(tmp_path, qcd_weight: float):
    """top.root (jet_w 1) and qcd.root (jet_w ``qcd_weight``) and a per-jet config."""
    from test_io_fixtures import per_jet_data, write_tree

    config = make_per_jet(tmp_path, n=60)
    for name, seed, w in (("top", 1, 1.0), ("qcd", 2, qcd_weight)):
        write_tree(tmp_path / f"{name}.root", "jets", {**per_jet_data(60, seed=seed), "jet_w": np.full(60, w)})
    return config


def test_streamed_training_checks_the_class_weights_like_in_memory(tmp_path):
    """The streamed pass that fits the preprocessing also checks what load + check do in memory:
    a class whose (NLO) weights sum to <= 0 is refused before training."""
    from hepnn.exceptions import InputDataError
    from hepnn.training.trainer import Trainer

    config = _weighted_pair(tmp_path, -0.5)
    message = (r"data.weight \('jet_w'\), train split, streamed: the weights of the \d+ 'qcd' jets sum to -\d+.*"
               "cannot learn from them")
    overrides = ["model.name=dense", "model.units=[4]", "model.inputs=[highlevel]", "training.streaming=true",
                 "training.epochs=1", "training.verbose=0", "data.weight=jet_w"]
    cfg = hepnn.load_config(config, overrides)
    with pytest.raises(InputDataError, match=message):
        Trainer(cfg, log=lambda s: None).fit(tmp_path / "run")
    assert not (tmp_path / "run" / "history.csv").exists()
    in_memory = hepnn.load_config(config, [o for o in overrides if "streaming" not in o])
    with pytest.raises(InputDataError, match=message.replace(", streamed", "")):
        Trainer(in_memory, log=lambda s: None).fit(tmp_path / "memory")
