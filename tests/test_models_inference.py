"""hepnn.models.inference.predict: the compiled forward pass gives model.predict's numbers."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from hepnn.models import MODELS
from hepnn.models.inference import predict


@pytest.mark.parametrize("n", [0, 1, 5, 64, 100])
def test_equals_model_predict(n):
    rng = np.random.default_rng(0)
    shapes = {"jet": (3,), "trk": (6, 4)}
    model = MODELS.get("deepsets")(shapes, n_outputs=3, task="multiclass", phi_units=(8,), dense_units=(8,))
    x = {"jet": rng.normal(size=(n, 3)).astype("float32"), "trk": rng.normal(size=(n, 6, 4)).astype("float32")}
    x["trk"][:, 4:] = 0.0  # padded slots
    got = predict(model, x, batch_size=32)
    assert got.shape == (n, 3)
    if n:
        np.testing.assert_allclose(got, model.predict(x, batch_size=32, verbose=0), rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_batch_size_does_not_change_scores_and_is_checked():
    x = {"jet": np.random.default_rng(1).normal(size=(50, 4)).astype("float32")}
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,))
    np.testing.assert_allclose(predict(model, x, batch_size=7), predict(model, x, batch_size=50), atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, x, batch_size=0)


def test_the_cache_does_not_keep_models_alive():
    x = {"jet": np.zeros((2, 4), "float32")}
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,))
    predict(model, x)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
