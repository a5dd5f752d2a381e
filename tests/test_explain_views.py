"""Looks inside a model stored for the report (hepnn.explain.views): what is stored is what the
report would compute, a stored view is used only under its key, and the report then loads no model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from hepnn.config import load_config  # noqa: E402
from hepnn.explain.views import ViewUnavailable, compute_view, store_views, stored_view, view_names  # noqa: E402
from hepnn.models import MODELS  # noqa: E402
from hepnn.runs.spec import InputSpec, RunSpec  # noqa: E402


def _test_split(task, inputs: dict, n=40, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    specs = []
    for name, (kind, shape) in inputs.items():
        x = rng.normal(size=(n, *shape)).astype("float32")
        if kind == "sequence":  # (Δη, Δφ, z, log_pt) with a few padded slots per jet
            x[:, :, 2] = rng.uniform(0.05, 1.0, (n, shape[0]))
            x[:, -2:] = 0.0
        data[name] = x
        specs.append(InputSpec(name=name, kind=kind, shape=shape))
    classes = ("qcd", "top")
    labels = rng.integers(0, 2, n).astype("int32")
    return {"data": data, "label": labels, "task": task, "classes": list(classes),
            "spec": RunSpec(task=task, classes=classes, inputs=tuple(specs)),
            "config": load_config({"model": {"name": "dense"}, "evaluation": {"batch_size": 16}})}


CASES = {
    "cnn": ("binary", {"image": ("image", (8, 8, 1))}, dict(filters=[4, 4], dense_units=[8])),
    "efn": ("binary", {"parts": ("sequence", (10, 4))}, dict(phi_units=[8, 6], dense_units=[8])),
    "autoencoder": ("autoencoder", {"image": ("image", (8, 8, 1))}, dict(units=[8], latent_dim=3, filters=[4, 4])),
    "flat_image": ("binary", {"image": ("image", (8, 8, 1))}, {}),  # an image classifier without convolutions
}
EXPECTED = {"cnn": ["feature_maps"], "efn": ["efn_filters"], "autoencoder": ["latent"], "flat_image": ["feature_maps"]}


def _model(name, task, shapes, options):
    if name != "flat_image":
        return MODELS.get(name)(shapes, task=task, **options)
    import keras

    image = keras.Input((8, 8, 1), name="image")
    return keras.Model({"image": image}, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(image)))


@pytest.mark.parametrize("model_name", list(CASES))
def test_stored_views_equal_the_computed_ones_and_only_under_their_key(tmp_path, model_name):
    task, inputs, options = CASES[model_name]
    test = _test_split(task, inputs)
    shapes = {name: shape for name, (_, shape) in inputs.items()}
    model = _model(model_name, task, shapes, options)
    run_dir = tmp_path / model_name
    run_dir.mkdir()

    assert store_views(run_dir, model, test, key=None) == [], "no key (data not the run's own): nothing stored"
    assert store_views(run_dir, model, test, key="k1") == EXPECTED[model_name]
    for name in view_names():
        if name not in EXPECTED[model_name]:
            assert stored_view(run_dir, name, "k1") is None  # not called for by this run
            continue
        assert stored_view(run_dir, name, "k2") is None, "another key: the model or the data changed"
        if model_name == "flat_image":  # the reason is stored
            with pytest.raises(ViewUnavailable, match="no convolution layer"):
                stored_view(run_dir, name, "k1")
            with pytest.raises(ViewUnavailable, match="no convolution layer"):
                compute_view(name, model, test)
            continue
        stored, computed = stored_view(run_dir, name, "k1"), compute_view(name, model, test)
        assert sorted(stored) == sorted(computed)
        for k in computed:
            np.testing.assert_array_equal(stored[k], computed[k])
    if model_name == "efn":
        grid = stored_view(run_dir, "efn_filters", "k1")
        assert grid["filters"].shape == (6, 65, 65) and str(grid["input"]) == "parts"
        assert grid["columns"].tolist() == [0, 1]
        x = test["data"]["parts"]
        want = np.quantile(np.abs(x[..., :2][np.any(x != 0, axis=-1)]), 0.98)
        assert float(grid["extent"]) == pytest.approx(want)
    if model_name == "autoencoder":
        assert stored_view(run_dir, "latent", "k1")["latent"].shape == (40, 3)
    if model_name == "cnn":
        maps = stored_view(run_dir, "feature_maps", "k1")
        assert int(maps["n_jets"]) == 40 and maps["mean_maps_1"].shape[0] == len(np.unique(test["label"]))


def test_the_report_draws_stored_views_without_loading_the_model(tmp_path, monkeypatch):
    import hepnn.plotting.report as report

    task, inputs, options = CASES["cnn"]
    test = _test_split(task, inputs)
    model = MODELS.get("cnn")({"image": (8, 8, 1)}, task=task, **options)
    store_views(tmp_path, model, test, key="k1")

    def no_model(path):
        raise AssertionError("the report loaded the model")

    monkeypatch.setattr(report, "load_run_model", no_model)
    run = SimpleNamespace(name="cnn", path=tmp_path, key="k1", test=test)
    d = SimpleNamespace(cache={})
    maps = report._view(d, run, "feature_maps", "feature maps")
    np.testing.assert_array_equal(maps["filters"], compute_view("feature_maps", model, test)["filters"])
    # under another key the report computes the view itself, from the model it loads
    stale = SimpleNamespace(name="cnn2", path=tmp_path, key="k2", test=test)
    with pytest.raises(AssertionError, match="loaded the model"):
        report._view(d, stale, "feature_maps", "feature maps")
    # a stored reason becomes a skipped figure with that reason
    flat = _model("flat_image", task, {"image": (8, 8, 1)}, {})
    (tmp_path / "flat").mkdir()
    store_views(tmp_path / "flat", flat, test, key="k1")
    with pytest.raises(report.SkipFigure, match="flat: no feature maps .*no convolution layer"):
        report._view(d, SimpleNamespace(name="flat", path=tmp_path / "flat", key="k1", test=test),
                     "feature_maps", "feature maps")


def test_feature_maps_view_of_an_empty_test_split_is_stored_as_unavailable(tmp_path):
    # explain() rejects 0 jets (InputDataError): the view stores the reason instead of failing the step
    task, inputs, options = CASES["cnn"]
    test = _test_split(task, inputs, n=0)
    model = _model("cnn", task, {"image": (8, 8, 1)}, options)
    assert store_views(tmp_path, model, test, key="k1") == ["feature_maps"]
    with pytest.raises(ViewUnavailable, match="no jets"):
        stored_view(tmp_path, "feature_maps", "k1")
