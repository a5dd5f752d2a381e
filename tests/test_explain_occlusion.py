"""Occlusion of jet images and Grad-CAM: empty images give nothing, mass where the model looks."""

from __future__ import annotations

import numpy as np

from hepnn.explain import explain
from hepnn.models import MODELS


def cnn(pix=8):
    return MODELS.get("cnn")({"img": (pix, pix, 1)}, filters=(2,), convs_per_block=1, pooling="none",
                             dense_units=(4,), dropout=0.0)


def region_model(pix=8):
    """A CNN whose dense layer only reads the top-left 3x3 pixels of its (unpooled) feature maps."""
    model = cnn(pix)
    dense = next(layer for layer in model.layers if layer.__class__.__name__ == "Dense")
    kernel, bias = dense.get_weights()
    keep = np.zeros((pix, pix, kernel.shape[0] // (pix * pix), kernel.shape[1]), kernel.dtype)
    keep[:3, :3] = 1.0
    dense.set_weights([kernel * keep.reshape(kernel.shape) + 0.1 * keep.reshape(kernel.shape), bias])
    return model


def test_occluding_an_empty_image_changes_nothing():
    x = np.zeros((3, 8, 8, 1), "float32")
    e = explain(cnn(), {"img": x}, method="occlusion", patch_size=3, stride=2)
    assert np.all(e.values["img"] == 0.0)


def test_occlusion_mass_is_where_the_model_looks():
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    e = explain(region_model(), {"img": x}, method="occlusion", patch_size=2, stride=1)
    v = np.abs(e.values["img"]).mean(axis=0)[..., 0]
    assert v.sum() > 0 and np.all(v[5:] == 0) and np.all(v[:, 5:] == 0)  # 3x3 region + kernel reach + patch


def test_gradcam_mass_is_in_the_lit_region():
    x = np.zeros((4, 8, 8, 1), "float32")
    x[:, 5:, 5:] = np.random.default_rng(1).random((4, 3, 3, 1))
    model = cnn()
    conv = next(layer for layer in model.layers if layer.__class__.__name__ == "Conv2D")
    k, b = conv.get_weights()
    conv.set_weights([np.abs(k), np.zeros_like(b)])  # dark pixels -> zero feature maps
    e = explain(model, {"img": x}, method="gradcam", relu=False)
    v = np.abs(e.values["img"]).mean(axis=0)[..., 0]
    assert v[4:, 4:].sum() > 0.9 * v.sum() > 0
    assert e.extra["layer"] == conv.name
