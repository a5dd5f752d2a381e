"""Activation maximisation raises the chosen neuron well above its start."""

from __future__ import annotations

import numpy as np

from hepnn.explain import explain
from hepnn.models import MODELS


def test_gradient_ascent_raises_the_neuron():
    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,), dropout=0.0)
    layer = next(layer for layer in model.layers if layer.__class__.__name__ == "Dense").name
    e = explain(model, {"jet": x}, method="activation_maximization", layer=layer, units=[0, 3], n_steps=60)
    start, end = e.extra["activation_start"], e.extra["activation_end"]
    assert start.shape == (2,) and np.all(end > start + 1.0)
    assert e.values["jet"].shape == (2, 4) and e.extra["pattern_jet"].shape == (2, 4)


def test_output_and_conv_filter():
    x = np.random.default_rng(0).random((5, 6, 6, 1)).astype("float32")
    model = MODELS.get("cnn")({"img": (6, 6, 1)}, filters=(2,), convs_per_block=1, dense_units=(4,), dropout=0.0)
    conv = next(layer for layer in model.layers if layer.__class__.__name__ == "Conv2D").name
    e = explain(model, {"img": x}, method="activation_maximization", layer=conv, units=[1], n_steps=30)
    assert e.extra["activation_end"][0] > e.extra["activation_start"][0]
    e = explain(model, {"img": x}, method="activation_maximization", n_steps=30)
    assert e.extra["activation_end"][0] >= e.extra["activation_start"][0]
