"""Audit of the model families against brute-force and first-principles references.

Tiny models with random weights (inference only), float32 tolerances:

* padding: a jet's output does not depend on the pad value stored in its padded slots
  (same weights, ``mask_value`` 0 vs a huge one) nor on how many slots are padded, and a
  jet without real elements gives a finite output;
* permutation invariance of the set / graph / attention models;
* EFN infrared and collinear safety;
* ParticleNet's k nearest neighbours against a numpy brute force, at any coordinate scale;
* ParT's pair features against a numpy reference (masked pairs, garbage in padded slots);
* batch independence of :func:`hepnn.models.inference.predict`;
* every registered builder's defaults save and reload to the same predictions.
"""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.models import MODELS

keras = pytest.importorskip("keras")

N_FEATURES = 5  # column 0: a generic feature; columns 1-4: (px, py, pz, E) for ParT

# (builder, options): every sequence / set / graph / attention family, tiny
SEQUENCE_MODELS = {
    "lstm": ("rnn", dict(units=[4], dense_units=[8])),
    "gru_bidirectional": ("rnn", dict(cell="gru", units=[4, 4], bidirectional=True, dense_units=[8])),
    "deepsets_sum": ("deepsets", dict(phi_units=[32, 32], dense_units=[8])),
    "deepsets_mean": ("deepsets", dict(phi_units=[8], pooling="mean", dense_units=[8])),
    "deepsets_max": ("deepsets", dict(phi_units=[8], pooling="max", dense_units=[8])),
    "pfn": ("pfn", dict(phi_units=[8], dense_units=[8])),
    "efn": ("efn", dict(phi_units=[32, 32], dense_units=[8])),
    "particlenet": ("particlenet", dict(k=3, channels=[[8, 8], [8]], dense_units=[8])),
    "transformer": ("transformer", dict(embed_units=[8], num_heads=2, num_layers=2, num_class_layers=1,
                                        pair_units=[4], four_momentum=[1, 2, 3, 4])),
    "transformer_plain": ("transformer", dict(embed_units=[8], num_heads=2, num_layers=1, num_class_layers=1,
                                              pair_features=False)),
    "dense_fusion": ("dense", dict(units=[8])),
}
SET_MODELS = [key for key, (name, _) in SEQUENCE_MODELS.items() if name != "rnn"]
# a pad value no real feature has; large enough that a padded slot's features overflow
# float32 in the first products (0 * inf would be NaN)
GARBAGE = 1e38


def jets(n_jets=48, max_length=10, seed=0, pad=0.0):
    """Random jets: physical four-momenta in columns 1-4, 0 to max_length//2 real particles
    (jet 0 has none, jet 1 has max_length//2), the rest padded with ``pad``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_jets, max_length, N_FEATURES))
    px, py, pz = rng.normal(size=(3, n_jets, max_length)) * 10
    mass = np.abs(rng.normal(size=(n_jets, max_length)))
    x[..., 1:] = np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)], axis=-1)
    n_real = rng.integers(0, max_length // 2 + 1, size=n_jets)
    n_real[0], n_real[1] = 0, max_length // 2
    x = x.astype("float32")
    return repad(x, n_real, max_length, pad), n_real


def repad(x, n_real, max_length, pad):
    out = np.full((len(x), max_length, x.shape[2]), pad, dtype="float32")
    for i, n in enumerate(n_real):
        out[i, :n] = x[i, :n]
    return out


def scores(model, x):
    return np.asarray(model({"parts": x}, training=False))


def build(key, max_length=10, mask_value=0.0, weights=None):
    name, options = SEQUENCE_MODELS[key]
    keras.utils.set_random_seed(3)
    model = MODELS.get(name)({"parts": (max_length, N_FEATURES)}, mask_value=mask_value, **options)
    if weights is not None:
        model.set_weights(weights)
    return model


@pytest.mark.parametrize("key", list(SEQUENCE_MODELS))
def test_output_ignores_the_pad_value_and_the_amount_of_padding(key):
    model = build(key)
    x, n_real = jets()
    y = scores(model, x)
    assert np.all(np.isfinite(y)), "a jet without real elements must give a finite output too"
    # the same weights with a garbage pad value: the padded slots must never reach the output
    garbage = build(key, mask_value=GARBAGE, weights=model.get_weights())
    y_garbage = scores(garbage, repad(x, n_real, 10, GARBAGE))
    assert np.all(np.isfinite(y_garbage))
    np.testing.assert_allclose(y_garbage, y, rtol=0, atol=1e-6)
    # the same jets padded to 30 slots
    longer = build(key, max_length=30, weights=model.get_weights())
    np.testing.assert_allclose(scores(longer, repad(x, n_real, 30, 0.0)), y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["dense", "autoencoder"])
def test_flattening_models_ignore_the_pad_value(name):
    # the TopoDNN-style dense network and the dense autoencoder see every slot (Flatten)
    from hepnn.models.autoencoder import anomaly_score

    options = dict(units=[8], flatten_sequences=True) if name == "dense" else dict(units=[8], latent_dim=2)
    keras.utils.set_random_seed(5)
    model = MODELS.get(name)({"parts": (10, N_FEATURES)}, **options)
    x, n_real = jets(seed=4)
    y = scores(model, x)
    for pad in (-999.0, GARBAGE):
        other = MODELS.get(name)({"parts": (10, N_FEATURES)}, mask_value=pad, **options)
        other.set_weights(model.get_weights())
        x_pad = repad(x, n_real, 10, pad)
        y_pad = scores(other, x_pad)
        if name == "autoencoder":
            real = x != 0
            np.testing.assert_allclose(y_pad[real], y[real], rtol=0, atol=1e-6)
            assert np.all(y_pad[x_pad == pad] == pad), "padded slots are reconstructed as the pad value"
            np.testing.assert_allclose(anomaly_score(other, x_pad), anomaly_score(model, x), rtol=1e-6, atol=1e-9)
        else:
            np.testing.assert_allclose(y_pad, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("key", SET_MODELS)
def test_set_models_are_permutation_invariant(key):
    model = build(key)
    x, n_real = jets(seed=1)
    rng = np.random.default_rng(2)
    shuffled = x.copy()
    for i, n in enumerate(n_real):
        shuffled[i, :n] = x[i, rng.permutation(n)]
    np.testing.assert_allclose(scores(model, shuffled), scores(model, x), rtol=0, atol=2e-6)


def test_efn_is_infrared_and_collinear_safe():
    # columns: rel_eta, rel_phi, pt_frac (the EFN's fallback columns 0, 1, 2)
    keras.utils.set_random_seed(4)
    model = MODELS.get("efn")({"parts": (12, 3)}, phi_units=[16, 8], dense_units=[8])
    rng = np.random.default_rng(5)
    x = np.zeros((8, 12, 3), dtype="float32")
    x[:, :6, :2] = rng.normal(scale=0.3, size=(8, 6, 2))
    x[:, :6, 2] = rng.dirichlet(np.ones(6), size=8)
    y = scores(model, x)
    soft = x.copy()
    soft[:, 6, :2] = rng.normal(scale=0.3, size=(8, 2))  # a real particle with z = 0
    np.testing.assert_allclose(scores(model, soft), y, rtol=0, atol=1e-6)
    split = x.copy()
    split[:, 6] = x[:, 0]  # particle 0 split into two collinear halves
    split[:, [0, 6], 2] = x[:, [0], 2] / 2
    np.testing.assert_allclose(scores(model, split), y, rtol=0, atol=1e-6)


# --- ParticleNet: k nearest neighbours --------------------------------------------------------


def knn_brute_force(coords, mask, k):
    """For each real point, the set of its k nearest other real points (float64, stable ties)."""
    out = []
    for c, m in zip(coords.astype("float64"), mask):
        real = np.flatnonzero(m > 0)
        rows = []
        for i in range(len(c)):
            others = real[real != i]
            if m[i] == 0 or len(others) == 0:
                rows.append(set())
                continue
            distance = ((c[others] - c[i]) ** 2).sum(axis=-1)
            rows.append(set(others[np.argsort(distance, kind="stable")[:k]].tolist()))
        out.append(rows)
    return out


def knn_of_layer(coords, mask, k):
    from hepnn.models.particle_layers import KNNEdges

    n_jets, n_points, _ = coords.shape
    own_index = np.broadcast_to(np.arange(n_points, dtype="float32")[None, :, None], (n_jets, n_points, 1))
    edges, edge_mask = KNNEdges(k)([coords, np.ascontiguousarray(own_index), mask])
    edges, edge_mask = np.asarray(edges), np.asarray(edge_mask)
    neighbour = np.rint(edges[..., 0] + edges[..., 1]).astype(int)  # x_i + (x_j - x_i) = j
    return [[set(neighbour[b, i][edge_mask[b, i] > 0].tolist()) for i in range(n_points)] for b in range(n_jets)]


@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (1e5, 0.0), (1.0, 1e3)],
                         ids=["unit", "momenta_in_MeV", "far_from_origin"])
def test_knn_neighbours_equal_the_brute_force_ones(scale, offset):
    rng = np.random.default_rng(6)
    n_jets, n_points, k = 16, 20, 5
    mask = np.zeros((n_jets, n_points), dtype="float32")
    for b in range(n_jets):
        mask[b, : rng.integers(0, n_points + 1)] = 1.0
    mask[0] = 0.0  # no real point
    mask[1] = 0.0
    mask[1, :3] = 1.0  # fewer real points than k
    coords = (rng.normal(size=(n_jets, n_points, 2)) * scale + offset).astype("float32") * mask[..., None]
    assert knn_of_layer(coords, mask, k) == knn_brute_force(coords, mask, k)


def test_particlenet_neighbours_do_not_depend_on_the_padding_at_any_scale():
    # kNN in (px, py) given in MeV: squared distances ~1e10, beyond any fixed "far away" offset
    keras.utils.set_random_seed(6)
    model = MODELS.get("particlenet")({"parts": (10, N_FEATURES)}, k=3, channels=[[8, 8]], dense_units=[8],
                                      coordinates=[1, 2])
    x, _ = jets(seed=5)
    x[..., 1:] *= 1e4
    x[:, :, :] = x[:, :1, :]  # every slot real: copies of the first particle ...
    x[:, :, 1:3] += np.random.default_rng(6).normal(scale=1e5, size=(len(x), 10, 2))  # ... spread in (px, py)
    full = np.full(len(x), 10)
    longer = MODELS.get("particlenet")({"parts": (30, N_FEATURES)}, k=3, channels=[[8, 8]], dense_units=[8],
                                       coordinates=[1, 2])
    longer.set_weights(model.get_weights())
    # the pooled particle features (the sigmoid output saturates at these scales)
    pooled = [keras.Model(m.inputs, m.get_layer("parts_pool").output) for m in (model, longer)]
    expected = scores(pooled[0], x)
    np.testing.assert_allclose(scores(pooled[1], repad(x, full, 30, 0.0)), expected, rtol=1e-5,
                               atol=1e-6 * np.abs(expected).max())


# --- ParT: pair features ----------------------------------------------------------------------


def pair_features_numpy(p4, mask, eps=1e-8):
    """ln Δ, ln kT, ln z, ln m² of every pair (arXiv:2202.03772), float64, definitions as written."""
    px, py, pz, energy = np.moveaxis(p4.astype("float64"), -1, 0)
    pt = np.hypot(px, py)
    rapidity = 0.5 * np.log(np.maximum(energy + pz, eps) / np.maximum(energy - pz, eps))
    phi = np.arctan2(py, px)

    def a(t):
        return t[:, :, None]

    def b(t):
        return t[:, None, :]

    dphi = (a(phi) - b(phi) + np.pi) % (2 * np.pi) - np.pi
    delta = np.hypot(a(rapidity) - b(rapidity), dphi)
    pt_min = np.minimum(a(pt), b(pt))
    m2 = (a(energy) + b(energy)) ** 2 - (a(px) + b(px)) ** 2 - (a(py) + b(py)) ** 2 - (a(pz) + b(pz)) ** 2
    out = np.stack([
        np.log(np.maximum(delta, eps)),
        np.log(np.maximum(pt_min * delta, eps)),
        np.log(np.maximum(pt_min / np.maximum(a(pt) + b(pt), eps), eps)),
        np.log(np.maximum(m2, eps)),
    ], axis=-1)
    return out * (a(mask) * b(mask))[..., None]


@pytest.mark.parametrize("pad", [0.0, -999.0, GARBAGE])
def test_pair_features_equal_the_numpy_reference(pad):
    from hepnn.models.particle_layers import PairFeatures

    rng = np.random.default_rng(7)
    n_jets, n_points = 8, 12
    pt = np.exp(rng.normal(2.0, 1.0, size=(n_jets, n_points)))
    eta = rng.normal(size=(n_jets, n_points))
    phi = rng.uniform(-np.pi, np.pi, size=(n_jets, n_points))
    mass = pt * np.cosh(eta) * rng.uniform(0.05, 0.3, size=(n_jets, n_points))  # m/E > 1 %: own masses resolved
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    p4 = np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)], axis=-1)
    mask = np.zeros((n_jets, n_points))
    for i in range(n_jets):
        mask[i, : rng.integers(0, n_points + 1)] = 1.0
    expected = pair_features_numpy(p4, mask)
    padded = np.where(mask[..., None] > 0, p4, pad).astype("float32")
    got = np.asarray(PairFeatures()([padded, mask.astype("float32")]))
    assert np.all(np.isfinite(got))
    off_diagonal = ~np.eye(n_points, dtype=bool)
    np.testing.assert_allclose(got[:, off_diagonal], expected[:, off_diagonal], rtol=0, atol=2e-3)
    # a particle with itself: Δ = kT = 0 (floored), z = 1/2, m² = 4 m²
    np.testing.assert_allclose(got[:, ~off_diagonal], expected[:, ~off_diagonal], rtol=0, atol=2e-3)
    assert np.all(got[mask[:, :, None] * mask[:, None, :] == 0] == 0), "pairs with a padded slot must be 0"


# --- batch independence, save and reload -------------------------------------------------------


@pytest.mark.parametrize("key", ["deepsets_sum", "particlenet", "transformer"])
def test_a_jet_scores_the_same_alone_and_in_a_batch_of_256(key):
    from hepnn.models.inference import predict

    model = build(key)
    x, _ = jets(n_jets=256, seed=8)
    together = predict(model, {"parts": x}, batch_size=256)
    alone = np.concatenate([predict(model, {"parts": x[i:i + 1]}, batch_size=1) for i in range(4)])
    np.testing.assert_allclose(alone, together[:4], rtol=0, atol=1e-6)


DEFAULT_SHAPES = {"dense": {"jet": (5,)}, "cnn": {"image": (16, 16, 1)}, "resnet": {"image": (16, 16, 1)}}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS.names())
def test_defaults_save_and_reload_to_the_same_predictions(name, tmp_path):
    import hepnn.models

    shapes = DEFAULT_SHAPES.get(name, {"parts": (8, N_FEATURES)})
    keras.utils.set_random_seed(9)
    model = MODELS.get(name)(shapes)
    rng = np.random.default_rng(9)
    x = {key: np.abs(rng.normal(size=(4, *shape))).astype("float32") for key, shape in shapes.items()}
    if "parts" in x:
        x["parts"][:, 5:] = 0.0
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = hepnn.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), np.asarray(model(x, training=False)))


def test_valid_convolutions_that_no_longer_fit_the_image_name_the_option():
    # 8x8 image: two 3x3 'valid' convolutions -> 4x4, pooled -> 2x2: block 1 has no room
    with pytest.raises(ValueError, match=r"model\.padding: .*'image' has shrunk to 2x2 pixels before convolution 0 "
                                         r"of block 1, smaller than kernel_size=3"):
        MODELS.get("cnn")({"image": (8, 8, 1)}, filters=[4, 4], padding="valid", dense_units=[8])
    model = MODELS.get("cnn")({"image": (16, 16, 1)}, filters=[4, 4], padding="valid", dense_units=[8])
    assert model.get_layer("image_block1_conv1").output.shape[1:3] == (2, 2)  # 16-2-2=12, /2=6, -2-2=2


@pytest.fixture
def mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_padding_mask_compares_in_float32_under_mixed_precision(mixed_precision):
    """Under mixed_float16 the padding mask compared float16 copies of the inputs, so a real slot
    whose features round to the pad value in float16 (1e-8 against 0) counted as padding."""
    from hepnn.models.layers import PaddingMask

    x = np.array([[[1e-8, 2e-8], [0.0, 0.0], [3.0, 0.0]]], dtype="float32")
    assert np.asarray(PaddingMask()(x)).tolist() == [[1.0, 0.0, 1.0]]


@pytest.mark.parametrize("key", ["deepsets_sum", "efn", "particlenet", "transformer", "dense_fusion"])
def test_set_models_build_and_score_under_mixed_precision(mixed_precision, key):
    x, n_real = jets()
    y = scores(build(key), x).astype("float64")
    assert np.all(np.isfinite(y))
    # a jet's padded slots still change nothing (the float32 mask meets float16 features)
    x_more = repad(x, n_real, 16, 0.0)
    np.testing.assert_allclose(scores(build(key, max_length=16), x_more).astype("float64")[1:], y[1:], atol=2e-2)
