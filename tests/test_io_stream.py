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


def test_batches_read_ahead_gives_same_batches(tmp_path):
    config = make_per_event(tmp_path, n_files=3, n_events=20)
    runs = [list(batches(config, "train", batch_size=5, shuffle=True, seed=7, step_size=6, read_ahead_chunks=k))
            for k in (0, 1, 3)]
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        for (a, la, wa), (b, lb, wb) in zip(runs[0], other):
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(a["tracks"], b["tracks"])


def test_read_ahead_reraises_and_stops():
    from hepnn.io.stream import read_ahead

    def broken():
        yield 1
        raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        list(read_ahead(broken()))
    it = read_ahead(iter(range(1000)), depth=2)
    assert next(it) == 0
    it.close()  # stops the thread without consuming the rest


@pytest.mark.filterwarnings("ignore:Your input ran out of data:UserWarning")
def test_make_dataset_each_training_jet_once_per_epoch(tmp_path):
    pytest.importorskip("tensorflow")
    config = make_per_event(tmp_path, n_files=3, n_events=40)
    cfg = hepnn.load_config(config, ["data.spectators=[Jet_pt]", "data.shuffle_buffer=16"])
    train = hepnn.io.load(cfg, standardize=False).split("train")
    # jets are identified by their raw flat features (pt, eta)
    expected = sorted(map(tuple, train["jet"].tolist()))
    ds = hepnn.io.make_dataset(cfg, split="train", batch_size=8, preprocessing=None, step_size=7)
    epochs = []
    for _ in range(2):
        got = [b for b in ds]
        assert all(int(b[1].shape[0]) == 8 for b in got[:-1])
        rows = np.concatenate([b[0]["jet"].numpy() for b in got])
        assert sorted(map(tuple, rows.tolist())) == expected
        epochs.append(rows)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled per epoch


_ALLOCATOR_PROBE = """
import resource
import numpy as np
from hepnn.io.memory import bound_allocator

def rss_mb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024

assert bound_allocator()
for _ in range(3):  # a block-sized temporary, freed and made again: the same heap memory
    np.ones(1 << 17).sum()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    np.ones(1 << 17).sum()  # 1 MiB
reused = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
big = np.ones(32 << 17)  # 32 MiB: its own mapping, handed back when freed
before = rss_mb()
del big
print(reused, round(before - rss_mb(), 1))
"""


def _env_without_malloc_settings():
    import os

    from hepnn._memory import _USER_SETTINGS

    return {k: v for k, v in os.environ.items() if k not in _USER_SETTINGS}


def test_allocator_reuses_small_temporaries_and_returns_chunk_sized_arrays():
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    env = _env_without_malloc_settings()
    out = subprocess.run([sys.executable, "-c", _ALLOCATOR_PROBE], env=env, capture_output=True, text=True, check=True)
    reused_faults, returned_mb = out.stdout.split()
    # 20 fresh 1 MiB mappings would fault 20 x 256 pages in; reused heap memory none
    assert int(reused_faults) < 256, out.stdout
    assert float(returned_mb) > 30, out.stdout


def test_streaming_fixes_the_glibc_mmap_threshold_unless_told_not_to(tmp_path):
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    code = "from hepnn.io.memory import bound_allocator; print(bound_allocator())"
    env = _env_without_malloc_settings()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    for setting in ("HEPNN_KEEP_MALLOC", "MALLOC_TOP_PAD_"):  # the user's own settings win
        out = subprocess.run([sys.executable, "-c", code], env={**env, setting: "1"}, capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == "False", setting


_STEP_PROBE = """
import resource
import numpy as np
from hepnn._memory import tensor_allocator

def step():  # a training step's temporaries: 48 x 1 MiB, above the trim threshold together
    arrays = [np.ones(1 << 17) for _ in range(48)]
    del arrays

assert tensor_allocator() == {settings}
step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def test_allocator_keeps_a_steps_temporaries_instead_of_faulting_them_in_again():
    """Without the top pad, each step's 48 MiB went back to the system and 32 MiB of it was faulted in
    again at the next step (81,920 faults in 10 steps; TensorFlow training steps alike: 7 million)."""
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    env = _env_without_malloc_settings()
    out = subprocess.run([sys.executable, "-c", _STEP_PROBE.format(settings=True)], env=env,
                         capture_output=True, text=True, check=True)
    assert int(out.stdout) < 1024, out.stdout  # one step alone is 12,288 pages
    # the probe can fail: glibc's own defaults fault the steps in again
    out = subprocess.run([sys.executable, "-c", _STEP_PROBE.format(settings=False)],
                         env={**env, "HEPNN_KEEP_MALLOC": "1"}, capture_output=True, text=True, check=True)
    assert int(out.stdout) > 10 * 4096, out.stdout
