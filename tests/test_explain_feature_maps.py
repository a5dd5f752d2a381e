"""The ``feature_maps`` explainer: first-convolution filters, feature maps per jet and per class."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.exceptions import UnknownNameError
from hepnn.explain import explain
from hepnn.explain.registry import NotApplicableError
from hepnn.models import MODELS

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def model():
    return MODELS.get("cnn")({"image": (8, 8, 1), "jet": (3,)}, filters=[4, 6], convs_per_block=1, dense_units=[8],
                             branch_units=4)


def images(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.random((n, 8, 8, 1)).astype("float32"), "jet": rng.normal(size=(n, 3)).astype("float32")}


def test_filters_and_maps_match_the_layers(model):
    from hepnn.explain.gradcam import conv_layers

    x = images()
    labels = np.array([0, 1] * 5)
    expl = explain(model, x, method="feature_maps", labels=labels, n_examples=3)
    convs = conv_layers(model)
    np.testing.assert_allclose(expl.extra["filters"], np.asarray(convs[0].kernel))
    assert list(expl.extra["layers"]) == [convs[0].name, convs[-1].name]
    probe = keras.Model(model.inputs, [convs[0].output, convs[-1].output])
    first, last = (np.asarray(t) for t in probe(x))
    np.testing.assert_allclose(expl.extra["example_maps_0"], first[:3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expl.extra["mean_maps_1"][0], last[labels == 0].mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expl.extra["mean_maps_1"][1], last[labels == 1].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert list(expl.extra["classes"]) == [0, 1]
    # per-pixel values: the first layer's mean activation (same size as the image here)
    np.testing.assert_allclose(expl.values["image"][..., 0], first.mean(axis=-1), rtol=1e-5, atol=1e-6)
    assert np.all(expl.values["jet"] == 0)


def test_chosen_layer_and_errors(model):
    from hepnn.explain.gradcam import conv_layers

    name = conv_layers(model)[-1].name
    expl = explain(model, images(4), method="feature_maps", layers=[name])
    assert list(expl.extra["layers"]) == [name] and "mean_maps_1" not in expl.extra
    with pytest.raises(UnknownNameError):
        explain(model, images(4), method="feature_maps", layers=["nope"])
    dense = MODELS.get("dense")({"jet": (3,)}, units=[4])
    with pytest.raises(NotApplicableError, match="image input"):
        explain(dense, {"jet": images(2)["jet"]}, method="feature_maps")


def test_plots_written_by_explain_run_machinery(model, tmp_path):
    from hepnn.explain.run import write_plots

    expl = explain(model, images(), method="feature_maps", labels=np.array([0, 1] * 5))
    written = {p.name for p in write_plots(expl, tmp_path, class_names=["qcd", "top"])}
    layers = list(expl.extra["layers"])
    assert {"filters.png", f"feature_maps_{layers[0]}.png", f"feature_maps_{layers[1]}.png"} <= written
    assert all((tmp_path / n).is_file() for n in written)
