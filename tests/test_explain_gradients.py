"""Saliency and integrated gradients: completeness, masked slots."""

from __future__ import annotations

import numpy as np

from hepnn.explain import explain
from hepnn.models import MODELS


def sequences(n=10):
    x = np.random.default_rng(0).normal(size=(n, 5, 3)).astype("float32")
    x[:, 3:] = 0.0
    x[:4, 1:] = 0.0
    return x


def test_integrated_gradients_sum_to_output_minus_baseline():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,), dropout=0.0)
    e = explain(model, {"jet": x}, method="integrated_gradients", n_steps=64)
    np.testing.assert_allclose(e.values["jet"].sum(axis=1), e.outputs - e.base_values, atol=2e-3)
    assert e.extra["completeness_error"] < 2e-3


def test_saliency_matches_finite_differences():
    # A smooth activation: with ReLU, x +- eps can straddle a kink and the
    # central difference is then not the gradient at x.
    import keras

    keras.utils.set_random_seed(3)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,), dropout=0.0, activation="tanh")
    e = explain(model, {"jet": x}, method="saliency")
    eps = 1e-3
    up, down = x.copy(), x.copy()
    up[:, 1] += eps
    down[:, 1] -= eps
    fd = (model.predict({"jet": up}, verbose=0)[:, 0] - model.predict({"jet": down}, verbose=0)[:, 0]) / (2 * eps)
    np.testing.assert_allclose(e.values["jet"][:, 1], fd, atol=1e-3)


def test_masked_slots_get_zero_gradient_attribution():
    x = sequences()
    padded = np.all(x == 0.0, axis=-1)
    for name, opts in (("rnn", {"units": (4,)}), ("deepsets", {"phi_units": (4,)})):
        model = MODELS.get(name)({"trk": (5, 3)}, dense_units=(4,), dropout=0.0, **opts)
        for method in ("saliency", "integrated_gradients"):
            e = explain(model, {"trk": x}, method=method)
            assert np.all(e.values["trk"][padded] == 0.0), (name, method)
            assert np.any(e.values["trk"][~padded] != 0.0), (name, method)
