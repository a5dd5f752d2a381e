"""ParticleNet: kNN graph, invariances, presets, options by feature name, end to end."""

from __future__ import annotations

import numpy as np
import pytest

import hepnn.models
from hepnn.config import load_config
from hepnn.exceptions import ConfigError
from hepnn.models import MODELS
from point_cloud_helpers import (
    check_end_to_end,
    config_for,
    end_to_end,
    generated_files,
    pad_more,
    predict,
    random_jets,
    shuffle_real,
)

keras = pytest.importorskip("keras")

TINY = dict(k=3, channels=[[8, 8], [8]], dense_units=[8], dropout=0.0)


def build(max_length=10, n_features=4, **options):
    return MODELS.get("particlenet")({"parts": (max_length, n_features)}, **{**TINY, **options})


def test_knn_edges_skip_padding_and_self():
    from hepnn.models.particle_layers import KNNEdges

    coords = np.array([[[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]]], "float32")
    mask = np.array([[1, 1, 1, 0, 0]], "float32")
    feats = np.arange(5, dtype="float32").reshape(1, 5, 1) + 1.0
    feats[0, 3:] = 0.0
    edges, edge_mask = (np.asarray(t) for t in KNNEdges(k=2)([coords, feats, mask]))
    assert edges.shape == (1, 5, 2, 2) and edge_mask.shape == (1, 5, 2)
    for i in range(3):  # each real point: both other real points, nobody else
        valid = edge_mask[0, i] > 0
        neighbours = sorted(edges[0, i, valid, 0] + edges[0, i, valid, 1])  # x_i + (x_j - x_i) = x_j
        assert neighbours == sorted(v for j, v in enumerate([1.0, 2.0, 3.0]) if j != i)
    assert np.all(edge_mask[0, 3:] == 0)  # padded points have no edges
    # with k=1 the nearest neighbour of point 0 is point 1 (distance 1), of point 2 it is point 1
    edges, edge_mask = (np.asarray(t) for t in KNNEdges(k=1)([coords, feats, mask]))
    assert edges[0, 0, 0, 0] + edges[0, 0, 0, 1] == 2.0 and edges[0, 2, 0, 0] + edges[0, 2, 0, 1] == 2.0


def test_permutation_and_padding_invariance():
    model = build()
    x, n_real = random_jets()
    y = predict(model, "parts", x)
    assert y.shape == (6, 1) and np.all(np.isfinite(y)) and np.std(y) > 0
    np.testing.assert_allclose(predict(model, "parts", shuffle_real(x, n_real)), y, atol=1e-5, rtol=0)
    longer = build(max_length=15)
    longer.set_weights(model.get_weights())
    np.testing.assert_allclose(predict(longer, "parts", pad_more(x)), y, atol=1e-5, rtol=0)
    # and the padded slots are never used: their content does not matter once they are all-zero
    assert predict(model, "parts", x).shape == (6, 1)


def test_order_of_real_particles_in_a_batch_with_bn_and_max_pooling():
    model = build(pooling="max", batch_norm=True, shortcut=False)
    x, n_real = random_jets(seed=3)
    np.testing.assert_allclose(predict(model, "parts", shuffle_real(x, n_real, seed=4)), predict(model, "parts", x),
                               atol=1e-5, rtol=0)


def test_presets_and_overrides():
    lite = MODELS.get("particlenet")({"parts": (20, 4)}, preset="lite")
    full = MODELS.get("particlenet")({"parts": (20, 4)}, preset="full")
    assert full.count_params() > 5 * lite.count_params()
    assert lite.get_layer("parts_edgeconv0_knn").k == 7 and full.get_layer("parts_edgeconv0_knn").k == 16
    assert [n for n in (layer.name for layer in full.layers) if n.endswith("_knn")] == [
        "parts_edgeconv0_knn", "parts_edgeconv1_knn", "parts_edgeconv2_knn"]
    override = MODELS.get("particlenet")({"parts": (20, 4)}, preset="full", k=5, channels=[[8]])
    assert override.get_layer("parts_edgeconv0_knn").k == 5
    assert override.get_layer("parts_edgeconv0_dense0").units == 8


def test_coordinates_by_feature_name():
    names = {"parts": ["log_pt", "rel_eta", "rel_phi", "delta_r"]}
    model = MODELS.get("particlenet")({"parts": (10, 4)}, feature_names=names, **TINY)
    assert model.get_layer("parts_coordinates").indices == [1, 2]
    model = MODELS.get("particlenet")({"parts": (10, 4)}, feature_names=names, coordinates=["delta_r", "log_pt"], **TINY)
    assert model.get_layer("parts_coordinates").indices == [3, 0]
    with pytest.raises(ValueError, match="has no feature 'rel_et'.*did you mean 'rel_eta'"):
        MODELS.get("particlenet")({"parts": (10, 4)}, feature_names=names, coordinates=["rel_et", "rel_phi"], **TINY)
    with pytest.raises(ValueError, match="none of the features rel_eta"):
        MODELS.get("particlenet")({"parts": (10, 2)}, feature_names={"parts": ["a", "b"]}, **TINY)


def test_trainer_context_gives_the_feature_names():
    from hepnn.models.registry import check_params, context_options

    config = load_config({"data": {"inputs": {
        "parts": {"kind": "sequence", "variables": ["log_pt", "rel_phi", "rel_eta"]},
        "jet": {"kind": "flat", "variables": ["jet_mass"]},
        "image": {"kind": "image", "channels": ["pt", "charged_pt"]},
    }}, "model": {"name": "particlenet"}})
    builder = MODELS.get("particlenet")
    context = context_options(builder, config, ["parts", "jet", "image"])
    assert context == {"feature_names": {"parts": ["log_pt", "rel_phi", "rel_eta"], "jet": ["jet_mass"],
                                         "image": ["pt", "charged_pt"]}}
    assert context_options(MODELS.get("dense"), config) == {}  # builders without the argument get nothing
    model = builder({"parts": (10, 3)}, **context, **TINY)
    assert model.get_layer("parts_coordinates").indices == [2, 1]
    # not a config option
    assert [key for key, _ in check_params("particlenet", {"feature_names": {}})] == ["feature_names"]


@pytest.mark.parametrize(("option", "value", "match"), [
    ("preset", "medium", "expected one of 'full', 'lite'"),
    ("k", 0, "expected a positive int"),
    ("channels", [[8], []], "list of EdgeConv blocks"),
    ("pooling", "median", "expected one of"),
    ("coordinates", "rel_eta", "list of feature names"),
])
def test_bad_options_fail_at_config_load(option, value, match):
    with pytest.raises(ConfigError, match=f"model.{option}: .*{match}"):
        load_config({"model": {"name": "particlenet", option: value}})


def test_save_reload_in_safe_mode(tmp_path):
    model = build()
    x, _ = random_jets()
    model.save(tmp_path / "m.keras")
    reloaded = hepnn.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(predict(reloaded, "parts", x), predict(model, "parts", x), atol=1e-6)


def test_fused_model_trains():
    rng = np.random.default_rng(0)
    x, _ = random_jets(n_jets=64, n_real=(10, 4, 7, 2))
    jet = rng.normal(size=(64, 3)).astype("float32")
    y = (jet[:, 0] > 0).astype("float32")  # only the jet-level input knows the label
    model = MODELS.get("particlenet")({"parts": (10, 4), "jet": (3,)}, branch_units=8, **TINY)
    assert "jet_branch_dense0" in [layer.name for layer in model.layers]
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    history = model.fit({"parts": x, "jet": jet}, y, epochs=12, batch_size=64, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]


@pytest.mark.slow
def test_end_to_end_train_evaluate_predict_explain_export(tmp_path_factory):
    files = generated_files(tmp_path_factory)
    config = config_for(files, {"name": "particlenet", **TINY},
                        ["rel_eta", "rel_phi", "log_pt", "log_e", "delta_r"])
    result = end_to_end(files, tmp_path_factory.mktemp("particlenet_run"), config)
    check_end_to_end(result)
