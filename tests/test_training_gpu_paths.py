"""The GPU training paths, exercised on CPUs: mixed precision and MirroredStrategy.

Mixed precision: every model family trains under ``mixed_float16`` with a float32 output, and
``training.mixed_precision`` sets (and resets) the global dtype policy for each run. On a CPU the
trainer itself keeps float32 (float16 is emulated there); these tests force the ``mixed_float16``
policy by hand so that the GPU code path (float16 layers, float32 outputs, loss scaling) runs.

MirroredStrategy: on one CPU device, and on two logical CPU devices (two replicas, as on two
GPUs: the global batch split in two, gradients all-reduced), the loss curve equals the default
strategy's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from hepnn.models import MODELS  # noqa: E402
from hepnn.training import distribute  # noqa: E402
from hepnn.training.trainer import Trainer  # noqa: E402

N = 32
RNG = np.random.default_rng(0)
SEQ = RNG.normal(size=(N, 6, 3)).astype("float32")
SEQ[:, 4:] = 0.0  # padded slots
SEQ[0] = 0.0  # a jet without elements
FLAT = RNG.normal(size=(N, 4)).astype("float32")
IMG = RNG.random(size=(N, 9, 9, 1)).astype("float32")
# constituents as raw four-momenta (px, py, pz, E) plus one more feature, for the pair features of ParT
_P = RNG.normal(size=(N, 6, 3)).astype("float32")
P4SEQ = np.concatenate([_P, np.linalg.norm(_P, axis=-1, keepdims=True) + 0.1, RNG.normal(size=(N, 6, 1))],
                       axis=-1).astype("float32")
P4SEQ[:, 4:] = 0.0

# (model name, inputs, options): small versions of each family, the autoencoder on every input kind
CASES = {
    "dense": ("dense", {"jet": FLAT}, {"units": [8]}),
    "cnn": ("cnn", {"image": IMG}, {"filters": [4], "dense_units": [8]}),
    "resnet": ("resnet", {"image": IMG}, {"filters": [4], "blocks_per_stage": 1, "dense_units": [8]}),
    "rnn_gru": ("rnn", {"tracks": SEQ, "jet": FLAT}, {"cell": "gru", "units": [4], "dense_units": [8]}),
    "rnn_lstm": ("rnn", {"tracks": SEQ}, {"cell": "lstm", "units": [4], "dense_units": [8]}),
    "deepsets": ("deepsets", {"tracks": SEQ, "jet": FLAT}, {"phi_units": [8], "dense_units": [8]}),
    "deepsets_max": ("deepsets", {"tracks": SEQ}, {"phi_units": [8], "dense_units": [8], "pooling": "max"}),
    "autoencoder_flat": ("autoencoder", {"jet": FLAT}, {"units": [4], "latent_dim": 2}),
    "autoencoder_sequence": ("autoencoder", {"tracks": SEQ}, {"units": [4], "latent_dim": 2}),
    "autoencoder_image_dense": ("autoencoder", {"image": IMG}, {"units": [4], "latent_dim": 2, "architecture": "dense"}),
    "autoencoder_image_conv": ("autoencoder", {"image": IMG}, {"filters": [4], "latent_dim": 2}),
    # the point-cloud models at test size (their paper-size defaults take a minute in emulated float16)
    "pfn": ("pfn", {"tracks": SEQ, "jet": FLAT}, {"phi_units": [8], "dense_units": [8]}),
    "efn": ("efn", {"tracks": SEQ, "jet": FLAT}, {"phi_units": [8], "dense_units": [8]}),
    "particlenet": ("particlenet", {"tracks": SEQ, "jet": FLAT}, {"k": 2, "channels": [[8, 8]], "dense_units": [8]}),
    "transformer": ("transformer", {"tracks": P4SEQ, "jet": FLAT},
                    {"embed_units": [8], "num_heads": 2, "num_layers": 1, "num_class_layers": 1,
                     "pair_units": [4], "four_momentum": [0, 1, 2, 3]}),
}

# models registered later (graph, attention networks) get a generic case: constituents + jet features
GENERIC = sorted(set(MODELS.names()) - {name for name, _, _ in CASES.values()})
CASES.update({name: (name, {"tracks": SEQ, "jet": FLAT}, {}) for name in GENERIC})


@pytest.fixture
def mixed_policy():
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(before)


def test_every_registered_family_is_covered():
    assert {name for name, _, _ in CASES.values()} == set(MODELS.names())
    assert {"dense", "cnn", "resnet", "rnn", "deepsets", "autoencoder"} <= set(MODELS.names())


@pytest.mark.parametrize("case", sorted(CASES))
def test_family_trains_in_mixed_float16_with_float32_outputs(case, mixed_policy):
    name, x, options = CASES[case]
    shapes = {k: v.shape[1:] for k, v in x.items()}
    if name == "autoencoder":
        model = MODELS.get(name)(shapes, task="autoencoder", **options)
        target, loss = next(iter(x.values())), "mse"
    elif case in GENERIC:
        try:
            model = MODELS.get(name)(shapes, **options)
        except (ValueError, TypeError, KeyError) as err:
            pytest.skip(f"model {name!r} does not take the generic inputs (tracks, jet): {err}")
        target, loss = (FLAT[:, 0] > 0).astype("float32"), "binary_crossentropy"
    else:
        model = MODELS.get(name)(shapes, **options)
        target, loss = (FLAT[:, 0] > 0).astype("float32"), "binary_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    assert model.dtype_policy.name == "mixed_float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"  # loss scaling against float16 underflow
    assert str(model.outputs[0].dtype).endswith("float32"), f"{case}: output layer is {model.outputs[0].dtype}"
    history = model.fit(x, target, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    out = np.asarray(model(x, training=False))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert all(v.dtype == "float32" for v in model.trainable_variables)  # float32 master weights
    if case == "autoencoder_sequence":  # padded slots are put back exactly, in float32
        assert np.array_equal(out[:, 4:], np.zeros_like(out[:, 4:]))


def toy():
    rng = np.random.default_rng(1)
    n = 256
    y = rng.integers(0, 2, n)
    return {"jet": (rng.normal(size=(n, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(n, "float32"), "split": np.where(np.arange(n) < 200, 0, 1).astype("int8")}


def toy_config(**training):
    return {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
            "model": {"name": "dense", "units": [8], "dropout": 0.0},
            "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None, **training}}


def test_a_run_without_mixed_precision_resets_the_global_policy(tmp_path, mixed_policy):
    # a previous run in this process left mixed_float16 behind (as one with mixed precision on a GPU does)
    trainer = Trainer(toy_config(), log=lambda line: None).fit(tmp_path / "run", data=toy())
    assert trainer.model_.dtype_policy.name == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_precision_without_a_gpu_trains_in_float32_and_says_so(tmp_path):
    lines = []
    trainer = Trainer(toy_config(mixed_precision=True), log=lines.append).fit(tmp_path / "run", data=toy())
    assert trainer.model_.dtype_policy.name == "float32"
    assert any("no GPU visible, training in float32" in line for line in lines)
    assert distribute.set_mixed_precision(False) == "float32"


def test_mirrored_strategy_on_one_cpu_device_matches_the_default_strategy(tmp_path):
    losses = {}
    for kind in ("none", "mirrored"):
        trainer = Trainer(toy_config(epochs=2, distribute=kind), log=lambda line: None).fit(tmp_path / kind, data=toy())
        losses[kind] = [row["loss"] for row in trainer.history_]
    assert len(losses["mirrored"]) == 2 and np.isfinite(losses["mirrored"]).all()
    np.testing.assert_allclose(losses["mirrored"], losses["none"], rtol=1e-5)


TWO_REPLICAS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from hepnn.training import distribute
    from hepnn.training.trainer import Trainer

    default = distribute.select_strategy
    # what training.distribute: mirrored gives on a node with two GPUs
    distribute.select_strategy = lambda kind="auto": (
        tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if kind == "mirrored" else default(kind))
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    data = {"jet": (rng.normal(size=(n, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": rng.uniform(0.5, 1.5, n).astype("float32"),
            "split": np.where(np.arange(n) < 500, 0, 1).astype("int8")}
    out = {}
    for kind in ("none", "mirrored"):
        cfg = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
               "model": {"name": "dense", "units": [8], "dropout": 0.0},
               "training": {"epochs": 2, "batch_size": 64, "verbose": 0, "early_stopping": None, "distribute": kind}}
        trainer = Trainer(cfg, log=lambda line: None).fit(f"{sys.argv[1]}/{kind}", data=data)
        out[kind] = {"loss": [r["loss"] for r in trainer.history_], "val_loss": [r["val_loss"] for r in trainer.history_],
                     "provenance": json.load(open(f"{sys.argv[1]}/{kind}/provenance.json"))}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_mirrored_strategy_with_two_replicas_matches_one_device(tmp_path):
    script = tmp_path / "two_replicas.py"
    script.write_text(TWO_REPLICAS)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mirrored"]["provenance"]["strategy"] == "MirroredStrategy"
    assert out["none"]["provenance"]["strategy"] != "MirroredStrategy"
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(out["mirrored"][key], out["none"][key], rtol=1e-4)
    assert out["mirrored"]["loss"][-1] < out["mirrored"]["loss"][0]
