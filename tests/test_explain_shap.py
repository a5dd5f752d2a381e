"""SHAP: additivity where promised, masked slots, fallbacks, and the gradient-registry guard."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.explain import explain
from hepnn.models import MODELS


def flat_model():
    return MODELS.get("dense")({"jet": (4,)}, units=(8,), dropout=0.0)


def sequences(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 3)).astype("float32")
    x[:, 3:] = 0.0
    x[: n // 2, 1:] = 0.0
    return x


@pytest.mark.parametrize("algorithm", ["deep", "kernel", "permutation"])
def test_values_sum_to_output_minus_base(algorithm):
    x = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    e = explain(flat_model(), {"jet": x}, method="shap", algorithm=algorithm, background_size=8, n_samples=20)
    assert e.extra["algorithm"] == algorithm
    total = e.values["jet"].sum(axis=1) + e.base_values
    np.testing.assert_allclose(total, e.outputs, atol=1e-4)


def test_cnn_uses_deep_explainer_and_is_additive():
    x = np.random.default_rng(0).random((6, 6, 6, 1)).astype("float32")
    model = MODELS.get("cnn")({"img": (6, 6, 1)}, filters=(2,), convs_per_block=1, dense_units=(4,), dropout=0.0)
    e = explain(model, {"img": x}, method="shap", background_size=5)
    assert e.extra["algorithm"] == "deep"
    np.testing.assert_allclose(e.values["img"].reshape(6, -1).sum(axis=1) + e.base_values, e.outputs, atol=1e-4)


@pytest.mark.parametrize("name", ["rnn", "deepsets"])
def test_masked_slots_get_zero_attribution(name):
    builder = MODELS.get(name)
    opts = {"units": (4,)} if name == "rnn" else {"phi_units": (4,)}
    model = builder({"trk": (5, 3)}, dense_units=(4,), dropout=0.0, **opts)
    x = sequences()
    e = explain(model, {"trk": x}, method="shap", background_size=6, n_samples=10)
    assert e.extra["algorithm"] == ("gradient" if name == "rnn" else "deep")
    padded = np.all(x == 0.0, axis=-1)
    assert np.all(e.values["trk"][padded] == 0.0)
    assert np.any(e.values["trk"][~padded] != 0.0)


def test_multi_input_uses_gradient_explainer():
    rng = np.random.default_rng(0)
    model = MODELS.get("rnn")({"trk": (5, 3), "jet": (4,)}, units=(4,), dense_units=(4,), dropout=0.0)
    x = {"trk": sequences(), "jet": rng.normal(size=(12, 4)).astype("float32")}
    e = explain(model, x, method="shap", background_size=6, n_samples=10)
    assert e.extra["algorithm"] == "gradient" and "multi-input" in e.extra["deep_skipped"]
    assert e.values["jet"].shape == (12, 4) and e.values["trk"].shape == (12, 5, 3)


def _gradients_work():
    import tensorflow as tf

    model = flat_model()
    x = tf.constant(np.ones((3, 4), "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model({"jet": x})
    g = tape.gradient(y, x)
    assert g is not None and np.all(np.isfinite(g.numpy()))


def test_failed_deep_explainer_leaves_gradients_working():
    model = MODELS.get("rnn")({"trk": (5, 3)}, units=(4,), dense_units=(4,), dropout=0.0)
    x = sequences()
    with pytest.raises(Exception):  # noqa: B017 - shap fails on LSTM in its own ways
        explain(model, {"trk": x}, method="shap", algorithm="deep", background_size=4)
    _gradients_work()
    # and the explainers that need gradients still run
    e = explain(model, {"trk": x}, method="saliency")
    assert np.any(e.values["trk"] != 0.0)


def test_auto_falls_back_to_gradient_when_deep_fails(monkeypatch):
    from hepnn.explain import shap_values

    monkeypatch.setattr(shap_values, "deep_supported", lambda target: None)
    model = MODELS.get("rnn")({"trk": (5, 3)}, units=(4,), dense_units=(4,), dropout=0.0)
    e = explain(model, {"trk": sequences()}, method="shap", background_size=4, n_samples=5)
    assert e.extra["algorithm"] == "gradient" and "DeepExplainer failed" in e.extra["fallback"]
    _gradients_work()
