"""The ``deepsets`` builder (Particle-Flow Network) and its masked pooling."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS

keras = pytest.importorskip("keras")


def jets(mask_value=0.0, length=7, n_real=(4, 2, 0), seed=0):
    rng = np.random.default_rng(seed)
    x = np.full((len(n_real), length, 3), mask_value, "float32")
    for i, k in enumerate(n_real):
        x[i, :k] = rng.normal(size=(k, 3))
    return x


@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
@pytest.mark.parametrize("mask_value", [0.0, -1.0])
def test_permutation_and_padding_invariance(pooling, mask_value):
    build = MODELS.get("deepsets")
    model = build({"parts": (7, 3)}, mask_value=mask_value, pooling=pooling, phi_units=[8, 8], dense_units=[4], dropout=0.0)
    x = jets(mask_value)
    out = np.asarray(model({"parts": x}))
    assert np.all(np.isfinite(out))  # the jet without constituents too
    rng = np.random.default_rng(1)
    shuffled = np.stack([xi[rng.permutation(7)] for xi in x])  # real and padded slots mixed
    np.testing.assert_allclose(np.asarray(model({"parts": shuffled})), out, atol=1e-5)
    longer = build({"parts": (12, 3)}, mask_value=mask_value, pooling=pooling, phi_units=[8, 8], dense_units=[4], dropout=0.0)
    longer.set_weights(model.get_weights())
    padded = np.concatenate([x, np.full((3, 5, 3), mask_value, "float32")], axis=1)
    np.testing.assert_allclose(np.asarray(longer({"parts": padded})), out, atol=1e-5)


def test_masked_sum_is_exact():
    from hepnn.models.layers import MaskedPooling, PaddingMask

    x = np.array([[[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]], "float32")
    features = x + 10.0  # padded slots are non-zero after a biased Dense
    mask = np.asarray(PaddingMask(0.0)(x))
    np.testing.assert_array_equal(mask, [[1, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(np.asarray(MaskedPooling("sum")([features, mask])), [[24.0, 21.0], [0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(MaskedPooling("mean")([features, mask])), [[12.0, 10.5], [0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(MaskedPooling("max")([features, mask])), [[13.0, 12.0], [0.0, 0.0]])


def test_layers_serialise():
    from hepnn.models.layers import ApplyMask, MaskedPooling, PaddingMask

    for layer in (PaddingMask(-1.0), MaskedPooling("mean"), ApplyMask(2.0)):
        config = keras.saving.serialize_keras_object(layer)
        assert config["registered_name"].startswith("hepnn>")
        clone = keras.saving.deserialize_keras_object(config)
        assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="mode"):
        MaskedPooling("median")


def test_structure_and_side_branches():
    model = MODELS.get("deepsets")(
        {"parts": (7, 3), "jet": (4,)}, phi_units=[8, 16], dense_units=[8, 4], batch_norm=True, l1=1e-4, dropout=0.0
    )
    assert model.get_layer("parts_pool").output.shape == (None, 16)
    assert model.get_layer("parts_pool").mode == "sum"
    assert model.get_layer("jet_branch_dense0")
    assert model.get_layer("head_bn0") and model.get_layer("head_dense1")
    assert model.get_layer("parts_phi_dense0").kernel_regularizer is not None
