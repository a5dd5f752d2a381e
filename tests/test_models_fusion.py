"""Fusion: every sequence model and the image CNN take a flat input of jet-level features into their head."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS

keras = pytest.importorskip("keras")

CASES = {
    "rnn": ({"parts": (6, 3)}, dict(units=[4], dense_units=[8], cell="gru")),
    "deepsets": ({"parts": (6, 3)}, dict(phi_units=[8], dense_units=[8])),
    "pfn": ({"parts": (6, 3)}, dict(phi_units=[8], dense_units=[8])),
    "cnn": ({"image": (6, 6, 1)}, dict(filters=[4], convs_per_block=1, dense_units=[8])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_model_learns_from_the_flat_input(name):
    shapes, options = CASES[name]
    rng = np.random.default_rng(0)
    n = 128
    x = {k: rng.normal(size=(n, *s)).astype("float32") for k, s in shapes.items()}
    jet = rng.normal(size=(n, 3)).astype("float32")
    y = (jet[:, 0] + 0.5 * jet[:, 1] > 0).astype("float32")  # only the jet-level features know the label
    model = MODELS.get(name)({**shapes, "jet": (3,)}, branch_units=8, batch_norm=False, dropout=0.0, **options)
    assert "jet_branch_dense0" in [layer.name for layer in model.layers]
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy", metrics=["binary_accuracy"])
    history = model.fit({**x, "jet": jet}, y, epochs=15, batch_size=128, verbose=0).history
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["binary_accuracy"][-1] > 0.8
