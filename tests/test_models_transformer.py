"""Particle Transformer: pair features against a slow reference, invariances, masks, end to end."""

from __future__ import annotations

import numpy as np
import pytest

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

TINY = dict(embed_units=[8], num_heads=2, num_layers=2, num_class_layers=1, pair_units=[4], ffn_ratio=2,
            attention_dropout=0.0, dropout=0.0)


def four_momenta(n_jets=6, max_length=10, n_real=(3, 7, 10, 1, 5, 0), seed=0):
    """Random massive four-momenta (px, py, pz, E) with E > |p|, padded with zeros."""
    rng = np.random.default_rng(seed)
    p = rng.normal(scale=[30.0, 30.0, 60.0], size=(n_jets, max_length, 3))
    m = rng.uniform(0.0, 2.0, size=(n_jets, max_length, 1))
    e = np.sqrt(np.sum(p**2, axis=-1, keepdims=True) + m**2)
    p4 = np.concatenate([p, e], axis=-1).astype("float32")
    real = [n_real[i % len(n_real)] for i in range(n_jets)]
    for i, n in enumerate(real):
        p4[i, n:] = 0.0
    return p4, real


def test_pair_features_against_the_slow_reference():
    from hepnn.models.particle_layers import PairFeatures, pair_features_reference

    p4, n_real = four_momenta(n_jets=3, max_length=6, n_real=(6, 4, 2), seed=5)
    mask = (np.arange(6)[None, :] < np.array(n_real)[:, None]).astype("float32")
    got = np.asarray(PairFeatures()([p4, mask]))
    assert got.shape == (3, 6, 6, 4)
    for i, n in enumerate(n_real):
        expected = np.array(pair_features_reference(p4[i, :n].astype("float64").tolist()))
        off_diagonal = ~np.eye(n, dtype=bool)
        np.testing.assert_allclose(got[i, :n, :n][off_diagonal], expected[off_diagonal], rtol=2e-4, atol=2e-3)
        assert np.all(np.isfinite(got[i]))
        assert np.all(got[i, n:, :] == 0) and np.all(got[i, :, n:] == 0)  # pairs with padding
    # symmetric in the pair, and the diagonal is ln(eps) for ln Δ
    np.testing.assert_allclose(got[0], np.transpose(got[0], (1, 0, 2)), atol=1e-4)
    np.testing.assert_allclose(got[0, 0, 0, 0], np.log(1e-8), rtol=1e-5)


def _close_massless_pair():
    """Two massless particles with integer momenta (Pythagorean triples, pz = 0) whose azimuths differ by
    1e-3 to 5e-3: float32 holds them exactly and their pair mass is known in closed form."""
    triples = sorted((np.arctan2(2 * m * n, m * m - n * n), m * m - n * n, 2 * m * n, m * m + n * n)
                     for m in range(2, 150) for n in range(1, m))
    for (phi_a, *pa), (phi_b, *pb) in zip(triples, triples[1:]):
        if 1e-3 < phi_b - phi_a < 5e-3 and min(pa[2], pb[2]) > 8000:
            return [pa[0], pa[1], 0, pa[2]], [pb[0], pb[1], 0, pb[2]], phi_b - phi_a
    raise AssertionError("no close pair of triples")


def test_pair_features_resolve_nearly_collinear_pairs_and_self_pairs_in_float32():
    """The pair mass of two close, hard constituents is a sum without cancellation: float32 gets
    ln m² right where (E_a + E_b)² - |p_a + p_b|² (products of 1e9 GeV² for m² ~ 100 GeV²) loses every
    digit; a particle with itself has Δ = 0 exactly; XLA (fused multiply-adds) agrees with the graph."""
    import tensorflow as tf

    from hepnn.models.particle_layers import PairFeatures

    pa, pb, dphi = _close_massless_pair()
    p4 = np.array([[pa, pb, pa, [0, 0, 0, 0]]], "float32")  # the first particle twice, then padding
    mask = np.array([[1, 1, 1, 0]], "float32")
    layer = PairFeatures()
    graph = np.asarray(tf.function(lambda x, m: layer([x, m]))(p4, mask))[0]
    xla = np.asarray(tf.function(lambda x, m: layer([x, m]), jit_compile=True)(p4, mask))[0]
    m2 = 2.0 * pa[3] * pb[3] * (1.0 - np.cos(dphi))  # massless, same rapidity
    for got in (graph, xla):
        np.testing.assert_allclose(got[0, 1], [np.log(dphi), np.log(min(pa[3], pb[3]) * dphi),
                                               np.log(min(pa[3], pb[3]) / (pa[3] + pb[3])), np.log(m2)], atol=2e-3)
        for a, b in ((0, 0), (1, 1), (0, 2)):  # a particle with itself or its exact copy
            np.testing.assert_allclose(got[a, b, [0, 1, 3]], np.log(1e-8), rtol=1e-6)  # log(eps): Δ = m² = 0 exactly
        assert np.all(got[3] == 0) and np.all(got[:, 3] == 0)
    np.testing.assert_allclose(xla, graph, rtol=0, atol=1e-4)


def test_pair_features_known_values():
    from hepnn.models.particle_layers import PairFeatures

    # two massless particles at rapidity 0, azimuth 0 and pi/2, pT 10 and 30
    p4 = np.array([[[10.0, 0.0, 0.0, 10.0], [0.0, 30.0, 0.0, 30.0]]], "float32")
    got = np.asarray(PairFeatures()([p4, np.ones((1, 2), "float32")]))[0, 0, 1]
    delta = np.pi / 2
    np.testing.assert_allclose(got, [np.log(delta), np.log(10 * delta), np.log(10 / 40), np.log(40**2 - 10**2 - 30**2)],
                               rtol=1e-5)


def jets(seed=0, max_length=10):
    p4, n_real = four_momenta(max_length=max_length, seed=seed)
    x, _ = random_jets(max_length=max_length, n_features=2, seed=seed)
    return np.concatenate([x, p4], axis=-1), n_real  # columns: two features, then px, py, pz, E


def build(max_length=10, **options):
    return MODELS.get("transformer")({"parts": (max_length, 6)}, four_momentum=[2, 3, 4, 5], **{**TINY, **options})


@pytest.mark.parametrize("pair_features", [True, False])
def test_permutation_and_padding_invariance(pair_features):
    model = build(pair_features=pair_features)
    x, n_real = jets()
    y = predict(model, "parts", x)
    assert y.shape == (6, 1) and np.all(np.isfinite(y)) and np.std(y) > 0
    np.testing.assert_allclose(predict(model, "parts", shuffle_real(x, n_real)), y, atol=1e-5, rtol=0)
    longer = build(max_length=13, pair_features=pair_features)
    longer.set_weights(model.get_weights())
    np.testing.assert_allclose(predict(longer, "parts", pad_more(x, 3)), y, atol=1e-5, rtol=0)


def test_pair_features_reach_the_attention():
    model = build()
    assert model.get_layer("parts_block0_attention").use_bias_input
    assert "parts_pair_features" in [layer.name for layer in model.layers]
    x, _ = jets()
    boosted = x.copy()
    boosted[..., 2:] *= np.where(x[..., 5:6] != 0, 1.0, 0.0) * 3.0 + (x[..., 5:6] == 0)  # scale the momenta
    # the four-momenta feed only the pair features: scaling them changes ln kT and ln m² and so the output
    assert np.max(np.abs(predict(model, "parts", boosted) - predict(model, "parts", x))) > 1e-6
    plain = build(pair_features=False)
    assert "parts_pair_features" not in [layer.name for layer in plain.layers]
    assert plain.get_layer("parts_embed_dense0").kernel.shape[0] == 6  # the plain model embeds every feature
    assert model.get_layer("parts_embed_dense0").kernel.shape[0] == 2  # ParT: the four-momenta only as pairs


def test_attention_ignores_padded_keys():
    from hepnn.models.particle_layers import MaskedAttention

    rng = np.random.default_rng(0)
    q = rng.normal(size=(1, 4, 4)).astype("float32")
    mask = np.array([[1, 1, 0, 0]], "float32")
    layer = MaskedAttention(num_heads=2)
    a = np.asarray(layer([q, q, mask]))
    changed = q.copy()
    changed[0, 2:] = rng.normal(size=(2, 4))
    b = np.asarray(layer([changed, changed, mask]))
    np.testing.assert_allclose(a[0, :2], b[0, :2], atol=1e-6)


def test_four_momentum_by_name_and_errors():
    names = {"parts": ["rel_eta", "px", "py", "pz", "energy", "log_pt"]}
    model = MODELS.get("transformer")({"parts": (8, 6)}, feature_names=names, **TINY)
    assert model.get_layer("parts_four_momentum").indices == [1, 2, 3, 4]
    assert model.get_layer("parts_particle_features").indices == [0, 5]
    with pytest.raises(ValueError, match="none of the features px"):
        MODELS.get("transformer")({"parts": (8, 2)}, feature_names={"parts": ["rel_eta", "rel_phi"]}, **TINY)
    MODELS.get("transformer")({"parts": (8, 2)}, feature_names={"parts": ["rel_eta", "rel_phi"]}, pair_features=False,
                              **TINY)


@pytest.mark.parametrize(("option", "value", "match"), [
    ("num_heads", 3, "divisible by num_heads"),
    ("pair_features", "yes", "expected true or false"),
    ("four_momentum", ["px", "py"], "list of 4 feature names"),
    ("num_layers", 0, "positive int"),
])
def test_bad_options_fail_at_config_load(option, value, match):
    with pytest.raises(ConfigError, match=f"model.{option}: .*{match}"):
        load_config({"model": {"name": "transformer", "embed_units": [8], option: value}})


def test_fused_transformer_trains():
    rng = np.random.default_rng(0)
    x, _ = jets()
    x = np.concatenate([x] * 10)
    jet = rng.normal(size=(60, 3)).astype("float32")
    y = (jet[:, 2] > 0).astype("float32")
    model = MODELS.get("transformer")({"parts": (10, 6), "jet": (3,)}, four_momentum=[2, 3, 4, 5], branch_units=8,
                                      **{**TINY, "num_layers": 1})
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    history = model.fit({"parts": x, "jet": jet}, y, epochs=20, batch_size=64, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0]


def test_save_reload_in_safe_mode(tmp_path):
    import hepnn.models

    model = build()
    x, _ = jets()
    model.save(tmp_path / "m.keras")
    reloaded = hepnn.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(predict(reloaded, "parts", x), predict(model, "parts", x), atol=1e-6)


@pytest.mark.slow
def test_end_to_end_train_evaluate_predict_explain_export(tmp_path_factory):
    files = generated_files(tmp_path_factory)
    config = config_for(files, {"name": "transformer", **TINY, "num_layers": 1},
                        ["rel_eta", "rel_phi", "log_pt", "px", "py", "pz", "energy"],
                        transforms={v: {"standardize": True} for v in ("rel_eta", "rel_phi", "log_pt")},
                        standardize=False, flat=True)
    result = end_to_end(files, tmp_path_factory.mktemp("transformer_run"), config)
    # angles of float32 momenta: XLA's and TensorFlow's atan2 differ in the last bit, which moves
    # ln Δ of close pairs by ~1e-4 and a score by up to ~2e-5
    check_end_to_end(result, atol=1e-4)
    assert sorted(result["onnx_meta"]["inputs"]) == ["jet", "parts"]
    # the trainer passed the feature names: the four-momenta were found by name, not by position
    from hepnn.models import load_model

    model = load_model(result["run"] / "model.keras")
    assert model.get_layer("parts_four_momentum").indices == [3, 4, 5, 6]
    assert model.get_layer("parts_particle_features").indices == [0, 1, 2]


def test_finite_under_mixed_precision():
    # -1e9 attention bias and ln(1e-8) overflow float16: those parts compute in float32
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build()
        x, _ = jets()
        y = predict(model, "parts", x)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert np.all(np.isfinite(y)) and model.get_layer("parts_pair_features").compute_dtype == "float32"
