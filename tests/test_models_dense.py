"""The ``dense`` builder: options really change the network."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS

keras = pytest.importorskip("keras")


def build(shapes=None, **options):
    return MODELS.get("dense")(shapes or {"jet": (5,)}, **{"units": [8, 4], **options})


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_default_is_plain_mlp_with_dropout():
    model = MODELS.get("dense")({"jet": (5,)})
    types = layer_types(model)
    assert types.count("Dense") == 4  # 3 hidden + output
    assert "Dropout" in types and "BatchNormalization" not in types and "Add" not in types
    assert model.get_layer("output").activation.__name__ == "sigmoid"


def test_batch_norm_dropout_residual_present_when_asked():
    model = build(batch_norm=True, dropout=0.2, residual=True)
    types = layer_types(model)
    assert types.count("BatchNormalization") == 2
    assert types.count("Dropout") == 2
    assert types.count("Add") == 2
    assert model.get_layer("mlp_proj0")  # 5 -> 8 needs a projection
    assert not model.get_layer("mlp_dense0").use_bias  # BN supplies the shift


def test_residual_without_projection_when_widths_match():
    model = build({"jet": (8,)}, units=[8, 8], residual=True, dropout=0.0)
    assert not [layer for layer in model.layers if "proj" in layer.name]
    assert layer_types(model).count("Add") == 2


def test_no_dropout_when_zero():
    assert "Dropout" not in layer_types(build(dropout=0.0))


def test_regularisers_present():
    model = build(l1=1e-4, l2=1e-3)
    reg = model.get_layer("mlp_dense0").kernel_regularizer
    assert reg is not None
    assert reg.get_config() == pytest.approx({"l1": 1e-4, "l2": 1e-3})
    model({"jet": np.ones((2, 5), "float32")})
    assert len(model.losses) == 2
    assert build().get_layer("mlp_dense0").kernel_regularizer is None


@pytest.mark.parametrize(
    ("activation", "initializer", "expected_init"),
    [
        ("relu", "auto", "HeUniform"),
        ("selu", "auto", "LecunNormal"),
        ("tanh", "auto", "GlorotUniform"),
        ("leaky_relu", "he_normal", "HeNormal"),
        ("elu", "lecun_uniform", "LecunUniform"),
        ("sigmoid", "glorot_normal", "GlorotNormal"),
    ],
)
def test_activation_and_initializer(activation, initializer, expected_init):
    model = build(activation=activation, initializer=initializer)
    assert model.get_layer("mlp_act0").activation.__name__ == activation
    assert type(model.get_layer("mlp_dense0").kernel_initializer).__name__ == expected_init


def test_selu_uses_alpha_dropout():
    assert "AlphaDropout" in layer_types(build(activation="selu", dropout=0.1))


def test_bad_activation_names_option_and_valid_values():
    with pytest.raises(ValueError, match=r"model\.activation: expected one of 'relu'.*'leaky_relu'.*received 'relux'"):
        build(activation="relux")


def test_side_branch_or_flatten_for_sequences():
    shapes = {"jet": (5,), "tracks": (6, 3)}
    with_branch = build(shapes)
    assert "MaskedPooling" in layer_types(with_branch)
    flat = build(shapes, flatten_sequences=True)
    assert "MaskedPooling" not in layer_types(flat)
    assert flat.get_layer("mlp_dense0").kernel.shape == (5 + 18, 8)


@pytest.mark.parametrize(("task", "n_outputs", "activation"), [("multiclass", 4, "softmax"), ("regression", 2, "linear")])
def test_heads(task, n_outputs, activation):
    model = build(task=task, n_outputs=n_outputs)
    assert model.output_shape == (None, n_outputs)
    assert model.get_layer("output").activation.__name__ == activation
    out = np.asarray(model({"jet": np.ones((3, 5), "float32")}))
    if task == "multiclass":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
