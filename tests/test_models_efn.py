"""Energy and Particle Flow Networks: IRC safety, invariances, options by name, filters, end to end."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.config import load_config
from hepnn.exceptions import ConfigError
from hepnn.models import MODELS
from point_cloud_helpers import (
    check_end_to_end,
    config_for,
    end_to_end,
    generated_files,
    pad_more,
    predict,
    random_jets,
    shuffle_real,
)

keras = pytest.importorskip("keras")

TINY = dict(phi_units=[8, 6], dense_units=[8])


def efn_jets(seed=0, max_length=10):
    """Columns (Δη, Δφ, z, log_pt); z > 0 and summing to one per jet."""
    x, n_real = random_jets(max_length=max_length, seed=seed)
    rng = np.random.default_rng(seed + 10)
    for i, n in enumerate(n_real):
        z = rng.uniform(0.05, 1.0, n)
        x[i, :n, 2] = z / z.sum()
    return x, n_real


def build(name="efn", max_length=10, **options):
    return MODELS.get(name)({"parts": (max_length, 4)}, **{**TINY, **options})


@pytest.mark.parametrize("name", ["efn", "pfn"])
def test_permutation_and_padding_invariance(name):
    model = build(name)
    x, n_real = efn_jets()
    y = predict(model, "parts", x)
    assert y.shape == (6, 1) and np.std(y) > 0
    np.testing.assert_allclose(predict(model, "parts", shuffle_real(x, n_real)), y, atol=1e-5, rtol=0)
    longer = build(name, max_length=14)
    longer.set_weights(model.get_weights())
    np.testing.assert_allclose(predict(longer, "parts", pad_more(x, 4)), y, atol=1e-5, rtol=0)


def test_efn_infrared_safety():
    model = build()
    x, n_real = efn_jets()
    y = predict(model, "parts", x)
    soft = x.copy()
    for i, n in enumerate(n_real):
        if n < x.shape[1]:  # add a zero-pT particle anywhere in the plane, with any other features
            soft[i, n] = [0.3, -0.2, 0.0, 5.0]
    assert np.any(soft != x)
    np.testing.assert_allclose(predict(model, "parts", soft), y, atol=1e-6, rtol=0)


def test_efn_collinear_safety():
    model = build()
    x, n_real = efn_jets()
    y = predict(model, "parts", x)
    split = x.copy()
    for i, n in enumerate(n_real):
        if 0 < n < x.shape[1]:  # split particle 0 into two with the same direction
            split[i, n] = split[i, 0]
            split[i, n, 2] = 0.3 * x[i, 0, 2]
            split[i, 0, 2] = 0.7 * x[i, 0, 2]
    np.testing.assert_allclose(predict(model, "parts", split), y, atol=1e-5, rtol=0)
    # the PFN is not collinear safe: the same split changes its output
    pfn = build("pfn")
    assert np.max(np.abs(predict(pfn, "parts", split) - predict(pfn, "parts", x))) > 1e-4


def test_efn_phi_sees_only_the_angles():
    model = build()
    x, _ = efn_jets()
    other = x.copy()
    other[..., 3] += 7.0 * (x[..., 2] > 0)  # change a feature the EFN must ignore (real slots only)
    np.testing.assert_allclose(predict(model, "parts", other), predict(model, "parts", x), atol=1e-6, rtol=0)


def test_features_by_name():
    names = {"parts": ["log_pt", "pt_frac", "rel_phi", "rel_eta"]}
    model = MODELS.get("efn")({"parts": (10, 4)}, feature_names=names, **TINY)
    assert model.get_layer("parts_angles").indices == [3, 2] and model.get_layer("parts_z").indices == [1]
    model = MODELS.get("efn")({"parts": (10, 4)}, feature_names=names, z="log_pt", coordinates=[2, 3], **TINY)
    assert model.get_layer("parts_angles").indices == [2, 3] and model.get_layer("parts_z").indices == [0]
    with pytest.raises(ValueError, match="none of the features pt_frac"):
        MODELS.get("efn")({"parts": (10, 3)}, feature_names={"parts": ["rel_eta", "rel_phi", "log_pt"]}, **TINY)


@pytest.mark.parametrize(("option", "value"), [("coordinates", ["rel_eta"]), ("z", 1.5), ("phi_units", [])])
def test_bad_options_fail_at_config_load(option, value):
    with pytest.raises(ConfigError, match=f"model.{option}: "):
        load_config({"model": {"name": "efn", option: value}})


def test_efn_filters_on_a_grid():
    from hepnn.models.efn import efn_filters

    model = build()
    grid = efn_filters(model, extent=0.5, n_grid=9)
    assert grid["filters"].shape == (6, 9, 9) and grid["input"] == "parts"
    assert grid["eta"][0] == -0.5 and grid["eta"][-1] == 0.5
    # filter values at (Δη, Δφ) = (0.25, -0.5) equal Phi of that point computed through the model's layers
    probe = np.array([[0.25, -0.5]], "float32")
    h = probe
    for layer in model.layers:
        if layer.name.startswith("parts_phi_"):
            h = layer(h)
    np.testing.assert_allclose(grid["filters"][:, 0, 6], np.asarray(h)[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no EFN branch"):
        efn_filters(build("pfn"))


def test_fused_efn_trains():
    rng = np.random.default_rng(0)
    x, _ = efn_jets()
    x = np.concatenate([x] * 10)
    jet = rng.normal(size=(60, 3)).astype("float32")
    y = (jet[:, 1] > 0).astype("float32")
    model = MODELS.get("efn")({"parts": (10, 4), "jet": (3,)}, branch_units=8, **TINY)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    history = model.fit({"parts": x, "jet": jet}, y, epochs=12, batch_size=64, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0]


def test_end_to_end_train_evaluate_predict_explain_export(tmp_path_factory):
    files = generated_files(tmp_path_factory)
    config = config_for(files, {"name": "efn", **TINY}, ["rel_eta", "rel_phi", "pt_frac", "log_pt"],
                        transforms={"log_pt": {"standardize": True}}, standardize=False)
    result = end_to_end(files, tmp_path_factory.mktemp("efn_run"), config)
    check_end_to_end(result)
    parts = result["data"]["parts"]
    z = parts[..., 2]
    real = result["data"]["parts_mask"]
    assert z[real].max() <= 1.0 + 1e-6
    assert np.all(z[real] > 0) and np.all(z[~real] == 0)  # z reached the model unstandardised


def test_report_of_an_efn_run_shows_its_filters(tmp_path_factory):
    import hepnn.io
    from hepnn.models import load_model
    from hepnn.models.efn import efn_filters
    from hepnn.plotting.report import build_report
    from hepnn.training.trainer import Trainer

    files = generated_files(tmp_path_factory)
    config = config_for(files, {"name": "efn", **TINY}, ["rel_eta", "rel_phi", "pt_frac", "log_pt"],
                        transforms={"log_pt": {"standardize": True}}, standardize=False)
    data = hepnn.io.load(config)
    run = tmp_path_factory.mktemp("efn_report") / "efn"
    Trainer(config, log=lambda _: None).fit(run, data=data)
    report = build_report(run, data=data, progress=False)
    figure = report.figure("efn_filters")
    assert figure.section == "explain" and figure.files and all((report.path / f).is_file() for f in figure.files)
    extent = figure.summary["extent"]
    assert 0.1 < extent < 1.5  # raw (Δη, Δφ): the range of the jet's particles, not standard deviations
    grid = efn_filters(load_model(run / "model.keras"), extent=extent, n_grid=65)
    first = figure.result.indices[0]
    np.testing.assert_allclose(figure.result.values[0], grid["filters"][first], rtol=1e-5, atol=1e-6)


def test_efn_filters_take_only_their_own_inputs_layers():
    """The filter grid of input 'parts' took every layer whose name starts with 'parts_phi_', so
    a second input named 'parts_phi' had its layers applied too (or broke the grid)."""
    from hepnn.models.efn import efn_filters

    model = MODELS.get("efn")({"parts": (10, 4), "parts_phi": (10, 4)}, **TINY)
    grid = efn_filters(model, input_name="parts", extent=0.5, n_grid=5)
    probe = np.array([[0.25, -0.5]], "float32")
    h = probe
    for layer in model.layers:
        if layer.name.startswith(("parts_phi_dense", "parts_phi_act", "parts_phi_bn")):
            h = layer(h)
    np.testing.assert_allclose(grid["filters"][:, 0, 3], np.asarray(h)[0], rtol=1e-5, atol=1e-6)
