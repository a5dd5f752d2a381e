"""The streaming tf.data pipeline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import hepnn.io
from hepnn.io.stream import batches
from test_io_fixtures import make_per_event


def test_import_io_does_not_import_tensorflow():
    code = "import sys, hepnn.io; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_batches_cover_split_once(tmp_path):
    config = make_per_event(tmp_path, n_files=3, n_events=20)
    full = hepnn.io.load(config, standardize=False)
    for shuffle in (False, True):
        got = list(batches(config, "val", batch_size=4, shuffle=shuffle, step_size=6))
        labels = np.concatenate([b[1] for b in got])
        assert len(labels) == (full["split"] == 1).sum()
        assert all(len(b[1]) <= 4 for b in got)
        if not shuffle:
            np.testing.assert_array_equal(np.concatenate([b[0]["tracks"] for b in got]), full.split("val")["tracks"])


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")
@pytest.mark.filterwarnings("ignore:Your input ran out of data:UserWarning")
def test_make_dataset_feeds_keras(tmp_path):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    config = make_per_event(tmp_path, n_files=2, n_events=30)
    data = hepnn.io.load(config)
    ds = hepnn.io.make_dataset(config, split="train", batch_size=16, preprocessing=data.preprocessing, include_masks=False)
    inputs, label, weight = next(iter(ds))
    assert set(inputs) == {"jet", "tracks"} and inputs["tracks"].shape[1:] == (15, 7) and label.dtype == tf.int32
    n = sum(int(b[1].shape[0]) for b in ds)
    assert n == (data["split"] == 0).sum()
    jet = keras.Input((2,), name="jet")
    tracks = keras.Input((15, 7), name="tracks")
    x = keras.layers.Concatenate()([jet, keras.layers.GlobalAveragePooling1D()(tracks)])
    model = keras.Model({"jet": jet, "tracks": tracks}, keras.layers.Dense(3, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
