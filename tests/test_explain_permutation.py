"""Permutation importance: the one feature a model uses is the most important, with a spread."""

from __future__ import annotations

import numpy as np

from hepnn.explain import explain
from hepnn.models import MODELS


def one_feature_model(feature=2, n_features=4):
    """A dense tagger computing ``sigmoid(8 relu(x[feature]) - 4)``: it reads only ``feature``."""
    model = MODELS.get("dense")({"jet": (n_features,)}, units=(8,), dropout=0.0)
    hidden, out = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    kernel, bias = hidden.get_weights()
    keep = np.zeros_like(kernel)
    keep[feature] = 1.0
    hidden.set_weights([keep, np.zeros_like(bias)])
    kernel, bias = out.get_weights()
    out.set_weights([np.ones_like(kernel), np.full_like(bias, -4.0)])
    return model


def test_deciding_feature_has_top_importance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    labels = (x[:, 2] > 0).astype(int)
    e = explain(one_feature_model(), {"jet": x}, method="permutation", labels=labels, n_repeats=3)
    imp = e.extra["importance_jet"]
    assert np.argmax(imp) == 2 and np.all(imp[[0, 1, 3]] == 0.0)
    assert e.extra["importance_std_jet"].shape == (4,) and e.extra["importance_std_jet"][2] > 0
    assert np.argmax(e.extra["auc_drop_jet"]) == 2 and e.extra["auc_drop_jet"][2] > 0
    assert np.argmax(e.mean_abs()["jet"]) == 2


def test_sequence_permutation_keeps_padding():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4, 2)).astype("float32")
    x[:, 2:] = 0.0
    model = MODELS.get("deepsets")({"trk": (4, 2)}, phi_units=(4,), dense_units=(4,), dropout=0.0)
    e = explain(model, {"trk": x}, method="permutation", n_repeats=2)
    assert np.all(e.values["trk"][:, 2:] == 0.0)
    assert e.extra["importance_trk"].shape == (2,)
