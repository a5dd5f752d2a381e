"""Contract tests over the model registry: every builder builds, trains a step, saves,
reloads (safe mode) and predicts the same; option validation through the config."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hepnn.config
import hepnn.models
from hepnn.exceptions import ConfigError
from hepnn.models import MODELS
from hepnn.models.registry import RESERVED

keras = pytest.importorskip("keras")

# tiny inputs and options per builder: the main kind plus a side input, so every
# builder is also exercised as a multi-input model
TINY = {
    "dense": ({"jet": (5,), "tracks": (6, 3)}, dict(units=[8, 8], residual=True, batch_norm=True, branch_units=4)),
    "cnn": ({"image": (8, 8, 1), "jet": (5,)}, dict(filters=[4, 4], convs_per_block=1, dense_units=[8], branch_units=4)),
    "resnet": ({"image": (8, 8, 1), "tracks": (6, 3)}, dict(filters=[4, 8], blocks_per_stage=1, dense_units=[8], branch_units=4)),
    "rnn": ({"tracks": (6, 3), "jet": (5,)}, dict(units=[4], dense_units=[8], branch_units=4)),
    "deepsets": ({"tracks": (6, 3), "image": (6, 6, 1)}, dict(phi_units=[8], dense_units=[8], branch_units=4)),
    "autoencoder": ({"jet": (5,)}, dict(units=[8], latent_dim=2)),
    "particlenet": ({"tracks": (6, 3), "jet": (5,)}, dict(k=2, channels=[[4, 4], [4]], dense_units=[8], branch_units=4)),
    "transformer": ({"tracks": (6, 5), "jet": (5,)}, dict(embed_units=[4], num_heads=2, num_layers=1, num_class_layers=1,
                                                         pair_units=[4], four_momentum=[1, 2, 3, 4], branch_units=4)),
    "efn": ({"tracks": (6, 3), "jet": (5,)}, dict(phi_units=[8, 4], dense_units=[8], branch_units=4)),
    "pfn": ({"tracks": (6, 3), "image": (6, 6, 1)}, dict(phi_units=[8], dense_units=[8], branch_units=4)),
}
N_OUTPUTS = {"binary": 1, "multiclass": 3, "regression": 2, "autoencoder": 1}


def supported_tasks(name):
    return ("autoencoder",) if name == "autoencoder" else ("binary", "multiclass", "regression")


CASES = [(name, task) for name in MODELS.names() for task in supported_tasks(name)]


def random_inputs(shapes, n=8, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        x = rng.normal(size=(n, *shape)).astype("float32")
        if len(shape) == 2:  # pad the tail of every sequence
            x[:, shape[0] // 2 :, :] = 0.0
        out[name] = x
    return out


def targets(task, x, n=8):
    rng = np.random.default_rng(1)
    if task == "binary":
        return rng.integers(0, 2, size=(n, 1)).astype("float32")
    if task == "multiclass":
        return rng.integers(0, N_OUTPUTS[task], size=n)
    if task == "regression":
        return rng.normal(size=(n, N_OUTPUTS[task])).astype("float32")
    return next(iter(x.values()))


def test_every_builder_has_a_tiny_case():
    assert set(TINY) == set(MODELS.names())


@pytest.mark.parametrize(("name", "task"), CASES)
def test_build_train_save_reload_predict(name, task, tmp_path):
    from hepnn.models.heads import default_loss

    shapes, options = TINY[name]
    model = MODELS.get(name)(shapes, n_outputs=N_OUTPUTS[task], task=task, **options)
    assert isinstance(model, keras.Model)
    assert sorted(t.name for t in model.inputs) == sorted(shapes)
    x = random_inputs(shapes)
    y = targets(task, x)
    model.compile(optimizer="adam", loss=default_loss(task, N_OUTPUTS[task]), run_eagerly=True)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    before = np.asarray(model(x, training=False))
    if task == "autoencoder":
        assert before.shape == next(iter(x.values())).shape
    else:
        assert before.shape == (8, N_OUTPUTS[task])
    path = tmp_path / "x.keras"
    model.save(path)
    reloaded = hepnn.models.load_model(path)
    after = np.asarray(reloaded(x, training=False))
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=0)
    assert not any(type(layer).__name__ == "Lambda" for layer in reloaded.layers)


@pytest.mark.parametrize("name", MODELS.names())
def test_builder_signature_and_docstring(name):
    builder = MODELS.get(name)
    params = inspect.signature(builder).parameters
    assert list(params)[:4] == list(RESERVED)
    for key, p in params.items():
        if key != "input_shapes":
            assert p.default is not p.empty, f"{name}.{key} has no default"
    doc = inspect.getdoc(builder)
    for section in ("Parameters", "Returns", "Examples"):
        assert section in doc
    for key in params:
        assert key in doc, f"option {key!r} of {name!r} is not documented"


@pytest.mark.parametrize("name", ["dense", "rnn", "deepsets", "cnn", "resnet", "particlenet", "transformer", "efn", "pfn"])
def test_defaults_build(name):
    sequence = {"tracks": (10, 4)}
    shapes = {"dense": {"jet": (6,)}, "rnn": sequence, "deepsets": sequence, "particlenet": sequence,
              "transformer": sequence, "efn": sequence, "pfn": sequence}.get(name, {"image": (25, 25, 1)})
    model = MODELS.get(name)(shapes)
    assert model.output_shape == (None, 1)
    assert model.count_params() > 1000


def test_graph_mode_fit_and_predict():
    # the trainer uses the compiled (non-eager) path
    shapes, options = TINY["rnn"]
    model = MODELS.get("rnn")(shapes, **options)
    x = random_inputs(shapes)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, targets("binary", x), epochs=1, batch_size=8, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(model(x)), atol=1e-6)


def test_import_is_light_and_reload_in_fresh_process(tmp_path):
    shapes, options = TINY["deepsets"]
    model = MODELS.get("deepsets")(shapes, **options)
    x = random_inputs(shapes)
    path = tmp_path / "m.keras"
    model.save(path)
    np.savez(tmp_path / "x.npz", **x)
    expected = np.asarray(model(x))
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import sys
        import hepnn.models
        heavy = [m for m in ("keras", "tensorflow") if m in sys.modules]
        assert not heavy, heavy
        assert "deepsets" in hepnn.models.MODELS
        import numpy as np
        model = hepnn.models.load_model({str(path)!r})
        x = dict(np.load({str(tmp_path / "x.npz")!r}))
        got = np.asarray(model(x))
        np.testing.assert_allclose(got, np.load({str(tmp_path / "expected.npy")!r}), atol=1e-6)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok" in result.stdout


def test_unknown_option_in_config_names_its_path():
    with pytest.raises(ConfigError, match=r"model\.bogus: unknown option 'bogus'"):
        hepnn.config.load_config({"model": {"name": "dense", "bogus": 1}})


def test_misspelt_option_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"model\.unit.*did you mean 'units'"):
        hepnn.config.load_config({"model": {"name": "dense", "unit": [8]}})


@pytest.mark.parametrize(
    ("name", "key", "value", "expected"),
    [
        ("dense", "activation", "relux", "relu"),
        ("dense", "initializer", "xavier", "glorot_uniform"),
        ("dense", "dropout", 1.5, r"\[0, 1\)"),
        ("dense", "units", [64, -1], "positive int"),
        ("rnn", "cell", "transformer", "lstm"),
        ("cnn", "padding", "full", "same"),
        ("deepsets", "pooling", "median", "sum"),
        ("autoencoder", "latent_dim", 0, "positive int"),
        ("particlenet", "preset", "tiny", "lite"),
        ("transformer", "pair_features", "yes", "true or false"),
        ("efn", "phi_units", [], "at least one"),
        ("pfn", "dense_units", [0], "positive int"),
    ],
)
def test_bad_option_values(name, key, value, expected):
    # at config time ...
    with pytest.raises(ConfigError, match=rf"model\.{key}:.*{expected}"):
        hepnn.config.load_config({"model": {"name": name, key: value}})
    # ... and when building directly
    shapes = TINY[name][0]
    with pytest.raises(ValueError, match=rf"model\.{key}:.*{expected}"):
        MODELS.get(name)(shapes, **{key: value})


def test_valid_options_pass_config():
    config = hepnn.config.load_config(
        {"model": {"name": "rnn", "inputs": ["tracks", "jet"], "cell": "gru", "units": [32, 16], "bidirectional": True}}
    )
    assert config.model.params["cell"] == "gru"


@pytest.mark.parametrize("name", ["dense", "rnn", "deepsets", "cnn", "resnet"])
def test_bad_task_and_outputs(name):
    shapes = TINY[name][0]
    with pytest.raises(ValueError, match="task.*binary"):
        MODELS.get(name)(shapes, task="autoencoder")
    with pytest.raises(ValueError, match="n_outputs"):
        MODELS.get(name)(shapes, task="multiclass", n_outputs=1)


@pytest.mark.parametrize(
    ("name", "shapes", "match"),
    [
        ("rnn", {"jet": (5,)}, "needs at least one sequence input"),
        ("deepsets", {"image": (8, 8, 1)}, "needs at least one sequence input"),
        ("cnn", {"tracks": (6, 3)}, "needs at least one image input"),
        ("resnet", {"jet": (5,)}, "needs at least one image input"),
        ("particlenet", {"jet": (5,)}, "needs at least one sequence input"),
        ("transformer", {"image": (8, 8, 1)}, "needs at least one sequence input"),
        ("efn", {"jet": (5,)}, "needs at least one sequence input"),
        ("pfn", {"jet": (5,)}, "needs at least one sequence input"),
        ("dense", {"jet": (5, 4, 3, 2)}, "expected a shape"),
        ("dense", {}, "non-empty mapping"),
    ],
)
def test_bad_inputs(name, shapes, match):
    with pytest.raises(ValueError, match=match):
        MODELS.get(name)(shapes)
