"""The ``rnn`` builder: masking, cells, stacking, bidirectional."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS

keras = pytest.importorskip("keras")


def tracks(mask_value=0.0, n=3, length=6, n_real=(3, 1, 0), seed=0):
    rng = np.random.default_rng(seed)
    x = np.full((n, length, 4), mask_value, "float32")
    for i, k in enumerate(n_real):
        x[i, :k] = rng.normal(size=(k, 4))
    return x


@pytest.mark.parametrize(("cell", "bidirectional"), [("lstm", False), ("gru", True)])
def test_padding_is_ignored(cell, bidirectional):
    mask_value = -999.0
    model = MODELS.get("rnn")(
        {"tracks": (6, 4)}, mask_value=mask_value, cell=cell, bidirectional=bidirectional, units=[4], dense_units=[4], dropout=0.0
    )
    x = tracks(mask_value)
    # the same real tracks, with the padding moved in front and in between
    moved = np.full_like(x, mask_value)
    moved[0, [1, 3, 5]] = x[0, :3]
    moved[1, 4] = x[1, 0]
    # the same jets with a longer padded sequence
    longer = MODELS.get("rnn")(
        {"tracks": (9, 4)}, mask_value=mask_value, cell=cell, bidirectional=bidirectional, units=[4], dense_units=[4], dropout=0.0
    )
    longer.set_weights(model.get_weights())
    padded = np.concatenate([x, np.full((3, 3, 4), mask_value, "float32")], axis=1)
    a = np.asarray(model({"tracks": x}))
    np.testing.assert_allclose(np.asarray(model({"tracks": moved})), a, atol=1e-5)
    np.testing.assert_allclose(np.asarray(longer({"tracks": padded})), a, atol=1e-5)
    assert np.all(np.isfinite(a))  # the jet without tracks too


def test_stacked_bidirectional_layers():
    model = MODELS.get("rnn")({"tracks": (6, 4)}, units=[8, 4], bidirectional=True, dense_units=[4])
    first = model.get_layer("tracks_bidirectional0")
    assert first.forward_layer.return_sequences
    assert not model.get_layer("tracks_bidirectional1").forward_layer.return_sequences
    assert model.get_layer("tracks_bidirectional1").output.shape == (None, 8)
    assert type(first.forward_layer).__name__ == "LSTM"


def test_gru_cell_and_regulariser():
    model = MODELS.get("rnn")({"tracks": (6, 4)}, cell="gru", units=4, l2=1e-4, dense_units=[4])
    layer = model.get_layer("tracks_gru0")
    assert type(layer).__name__ == "GRU"
    assert layer.cell.kernel_regularizer is not None


def test_every_sequence_input_gets_a_recurrent_branch_and_flat_a_dense_branch():
    model = MODELS.get("rnn")({"tracks": (6, 4), "vertices": (3, 2), "jet": (5,)}, units=[4], dense_units=[4])
    assert model.get_layer("tracks_lstm0") and model.get_layer("vertices_lstm0")
    assert model.get_layer("jet_branch_dense0")
    assert sorted(model.input.keys()) == ["jet", "tracks", "vertices"]


def test_cudnn_off_by_default():
    # cuDNN fails at run time on a jet without tracks or on non-trailing padding
    model = MODELS.get("rnn")({"tracks": (6, 4)}, units=[4], dense_units=[4])
    assert model.get_layer("tracks_lstm0").use_cudnn is False
    fast = MODELS.get("rnn")({"tracks": (6, 4)}, units=[4], dense_units=[4], cudnn=True)
    assert fast.get_layer("tracks_lstm0").use_cudnn == "auto"
