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


def test_gradcam_of_two_jet_images_maps_each_into_its_own_input():
    import keras

    model = MODELS.get("cnn")({"a": (8, 8, 1), "b": (6, 6, 2)}, filters=(3, 3), convs_per_block=1,
                              dense_units=(4,), dropout=0.0)
    rng = np.random.default_rng(2)
    x = {"a": rng.random((5, 8, 8, 1)).astype("float32"), "b": rng.random((5, 6, 6, 2)).astype("float32")}
    convs = {layer.name: layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"}
    last = {image: [n for n in convs if n.startswith(f"{image}_")][-1] for image in ("a", "b")}

    def reference(name, size):  # Grad-CAM written out for one layer
        import tensorflow as tf

        probe = keras.Model(model.input, [convs[name].output, model.outputs[0]])
        with tf.GradientTape() as tape:
            maps, out = probe(x)
            tape.watch(maps)
            score = out[:, 0]
        grads = tape.gradient(score, maps)
        cam = tf.reduce_sum(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * maps, axis=-1, keepdims=True)
        return tf.image.resize(cam, size, method="bilinear").numpy()[..., 0]

    e = explain(model, x, method="gradcam", relu=False)
    assert e.extra["layers"] == last and e.extra["layer"] == last["a"]
    for image, size in (("a", (8, 8)), ("b", (6, 6))):
        want = reference(last[image], size)
        assert np.abs(want).max() > 0
        for channel in range(x[image].shape[-1]):
            np.testing.assert_allclose(e.values[image][..., channel], want, rtol=1e-4, atol=1e-6)
    # one layer of b's convolutions: its map goes into b, nothing into a
    only_b = explain(model, x, method="gradcam", relu=False, layer=last["b"])
    assert only_b.extra["layers"] == {"b": last["b"]}
    np.testing.assert_allclose(only_b.values["b"], e.values["b"], rtol=1e-5, atol=1e-7)
    assert not np.any(only_b.values["a"])
    # the feature maps' per-pixel values go into the image the first chosen layer sees
    maps = explain(model, x, method="feature_maps", layers=[last["b"]])
    assert maps.extra["image"] == "b" and not np.any(maps.values["a"]) and np.any(maps.values["b"])
