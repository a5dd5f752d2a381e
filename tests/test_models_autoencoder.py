"""The ``autoencoder`` builder, its encoder and its anomaly score."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS
from hepnn.models.autoencoder import anomaly_score, encoder

keras = pytest.importorskip("keras")

build = MODELS.get("autoencoder")


@pytest.mark.parametrize(
    ("shape", "options", "conv"),
    [
        ((5,), {}, False),
        ((6, 3), {}, False),
        ((9, 9, 1), {}, True),  # odd size: cropped back
        ((8, 8, 2), {"architecture": "dense"}, False),
    ],
)
def test_shapes_latent_and_encoder(shape, options, conv):
    model = build({"x": shape}, units=[8], latent_dim=3, filters=[4, 4], **options)
    assert model.output_shape == (None, *shape)
    assert model.get_layer("reconstruction").output.shape == (None, *shape)
    assert model.get_layer("latent").output.shape == (None, 3)
    assert any(type(layer).__name__ == "Conv2DTranspose" for layer in model.layers) == conv
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype("float32")
    latent = np.asarray(encoder(model)({"x": x}))
    assert latent.shape == (4, 3)
    scores = anomaly_score(model, {"x": x})
    assert scores.shape == (4,) and np.all(scores >= 0)
    reconstruction = np.asarray(model({"x": x}))
    np.testing.assert_allclose(scores, ((x - reconstruction) ** 2).reshape(4, -1).mean(axis=1), rtol=1e-5)


def test_sequence_padding_is_ignored():
    mask_value = -5.0
    model = build({"tracks": (6, 3)}, mask_value=mask_value, units=[8], latent_dim=2)
    rng = np.random.default_rng(0)
    x = np.full((3, 6, 3), mask_value, "float32")
    x[0, :4] = rng.normal(size=(4, 3))
    x[1, :1] = rng.normal(size=(1, 3))
    reconstruction = np.asarray(model({"tracks": x}))
    assert np.all(reconstruction[0, 4:] == mask_value)  # padded slots reproduced exactly
    assert np.all(reconstruction[2] == mask_value)
    scores = anomaly_score(model, x)
    expected = ((x[0, :4] - reconstruction[0, :4]) ** 2).mean()
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5)
    assert scores[2] == 0.0  # no real tracks


def test_trains_on_x_x():
    model = build({"jet": (4,)}, units=[8], latent_dim=2)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    history = model.fit({"jet": x}, x, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_errors():
    with pytest.raises(ValueError, match="exactly one input"):
        build({"jet": (4,), "tracks": (5, 3)})
    with pytest.raises(ValueError, match="'conv' needs an image"):
        build({"jet": (4,)}, architecture="conv")
    with pytest.raises(ValueError, match="task"):
        build({"jet": (4,)}, task="binary")
    with pytest.raises(ValueError, match="no layer named 'latent'"):
        encoder(MODELS.get("dense")({"jet": (4,)}, units=[4]))
