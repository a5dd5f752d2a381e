"""The ``cnn`` and ``resnet`` builders."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS

keras = pytest.importorskip("keras")


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_cnn_blocks_pooling_and_head():
    model = MODELS.get("cnn")({"image": (9, 9, 2)}, filters=[4, 8], convs_per_block=2, dense_units=[8])
    types = layer_types(model)
    assert types.count("Conv2D") == 4
    assert types.count("MaxPooling2D") == 2  # 9 -> 4 -> 2
    assert model.get_layer("image_global").output.shape == (None, 2 * 2 * 8)
    assert model.output_shape == (None, 1)


def test_pooling_is_skipped_once_the_image_is_too_small():
    model = MODELS.get("cnn")({"image": (4, 4, 1)}, filters=[2, 2, 2, 2], convs_per_block=1, dense_units=[4])
    assert layer_types(model).count("MaxPooling2D") == 2  # 4 -> 2 -> 1, then no more
    assert model.output_shape == (None, 1)


def test_cnn_options():
    model = MODELS.get("cnn")(
        {"image": (8, 8, 1)},
        filters=[4],
        convs_per_block=1,
        kernel_size=5,
        strides=2,
        padding="valid",
        pooling="average",
        separable=True,
        global_pooling="max",
        batch_norm=True,
        l2=1e-3,
        dense_units=[4],
    )
    conv = model.get_layer("image_block0_conv0")
    assert type(conv).__name__ == "SeparableConv2D"
    assert conv.kernel_size == (5, 5) and conv.strides == (2, 2) and conv.padding == "valid"
    assert conv.pointwise_regularizer is not None
    types = layer_types(model)
    assert "BatchNormalization" in types and "GlobalMaxPooling2D" in types
    assert "MaxPooling2D" not in types  # 8 -> 2 with valid 5x5 stride 2; average pooling 2 -> 1
    assert "AveragePooling2D" in types


def test_resnet_has_skip_connections_and_downsamples():
    model = MODELS.get("resnet")({"image": (8, 8, 1)}, filters=[4, 8], blocks_per_stage=2, dense_units=[4])
    types = layer_types(model)
    assert types.count("Add") == 4
    assert model.get_layer("image_stage1_block0_conv0").strides == (2, 2)
    assert model.get_layer("image_stage1_block0_proj")  # projection shortcut
    assert model.get_layer("image_stage1_block1_add").output.shape == (None, 4, 4, 8)
    assert "BatchNormalization" in types


def test_resnet_separable():
    model = MODELS.get("resnet")({"image": (8, 8, 1)}, filters=[4], blocks_per_stage=1, separable=True, dense_units=[4])
    assert type(model.get_layer("image_stage0_block0_conv0")).__name__ == "SeparableConv2D"


def test_multi_input_cnn_with_sequence_side_branch_ignores_padding():
    shapes = {"image": (6, 6, 1), "tracks": (5, 3)}
    model = MODELS.get("cnn")(shapes, filters=[2], convs_per_block=1, dense_units=[4], branch_units=4, dropout=0.0)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 6, 6, 1)).astype("float32")
    tracks = np.zeros((2, 5, 3), "float32")
    tracks[:, :2] = rng.normal(size=(2, 2, 3))
    moved = np.zeros_like(tracks)
    moved[:, 3:] = tracks[:, :2]
    a = np.asarray(model({"image": image, "tracks": tracks}))
    b = np.asarray(model({"image": image, "tracks": moved}))
    np.testing.assert_allclose(a, b, atol=1e-6)
