"""Track dropping: per-position importance, padded slots untouched."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.explain import explain
from hepnn.models import MODELS


@pytest.mark.parametrize("mode", ["mask", "remove"])
def test_dropping_gives_zero_for_padding_and_positions(mode):
    x = np.random.default_rng(0).normal(size=(10, 5, 3)).astype("float32")
    x[:, 3:] = 0.0
    model = MODELS.get("rnn")({"trk": (5, 3)}, units=(4,), dense_units=(4,), dropout=0.0)
    e = explain(model, {"trk": x}, method="track_dropping", mode=mode)
    assert np.all(e.values["trk"][:, 3:] == 0.0)
    pos = e.extra["position_importance_trk"]
    assert pos.shape == (5,) and np.all(pos[3:] == 0.0) and np.all(pos[:3] > 0)


def test_dropping_in_a_sum_model_is_exact():
    """Deep Sets with a linear head: dropping an element removes exactly its term."""
    x = np.random.default_rng(0).normal(size=(6, 4, 2)).astype("float32")
    x[:, 3] = 0.0
    model = MODELS.get("deepsets")({"trk": (4, 2)}, phi_units=(3,), dense_units=(), dropout=0.0, task="regression")
    e = explain(model, {"trk": x}, method="track_dropping")
    base = model.predict({"trk": x}, verbose=0)[:, 0]
    dropped = x.copy()
    dropped[:, 1] = 0.0
    expected = base - model.predict({"trk": dropped}, verbose=0)[:, 0]
    np.testing.assert_allclose(e.values["trk"][:, 1].sum(axis=1), expected, atol=1e-5)
