"""Padding, sorting, linking, dR association and images against slow reference implementations."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hepnn.io.derived import wrap_phi
from hepnn.io.images import image_coordinates, jet_images
from hepnn.io.layouts import associate_by_dr, group_by_jet, link_to_jets
from hepnn.io.representations import REPRESENTATIONS, ElementRows, pad_sequences

FAST = settings(max_examples=40, deadline=None)

jagged = st.lists(st.lists(st.floats(-50, 50, allow_nan=False, width=32), max_size=8), min_size=0, max_size=8)


def _flat(lists):
    counts = np.array([len(x) for x in lists], dtype=np.int64)
    values = np.array([v for x in lists for v in x], dtype=np.float64)
    return counts, values


@FAST
@given(jagged, st.integers(1, 6), st.booleans(), st.booleans(), st.floats(-10, 10, allow_nan=False))
def test_pad_sequences_matches_reference(lists, max_length, do_sort, descending, pad):
    counts, values = _flat(lists)
    feats = np.stack([values, values * 2], axis=1)
    x, mask = pad_sequences(counts, feats, max_length, values if do_sort else None, descending, pad)
    for i, row in enumerate(lists):
        ref = list(row)
        if do_sort:  # stable sort
            ref = [v for _, v in sorted(enumerate(ref), key=lambda t: (-t[1] if descending else t[1], t[0]))]
        ref = ref[:max_length]
        n = len(ref)
        assert mask[i].tolist() == [True] * n + [False] * (max_length - n)
        np.testing.assert_allclose(x[i, :n, 0], np.float32(ref))
        np.testing.assert_allclose(x[i, :n, 1], np.float32(np.array(ref) * 2))
        assert (x[i, n:] == np.float32(pad)).all()


@FAST
@given(st.lists(st.integers(0, 3), min_size=1, max_size=6), st.data())
def test_link_and_group_match_reference(n_jets_list, data):
    n_jets = np.array(n_jets_list)
    n_el = data.draw(st.lists(st.integers(0, 5), min_size=len(n_jets), max_size=len(n_jets)))
    event = np.repeat(np.arange(len(n_jets)), n_el)
    link = np.array([data.draw(st.integers(-1, max(n_jets[e] - 1, -1))) for e in event], dtype=np.int64)
    value = np.arange(len(event), dtype=np.float64)
    jet_of = link_to_jets(link, event, n_jets, "link", "f.root", 0)
    el = group_by_jet(jet_of, {"v": value}, int(n_jets.sum()))
    g = 0
    for e in range(len(n_jets)):
        for j in range(n_jets[e]):
            ref = [value[k] for k in range(len(event)) if event[k] == e and link[k] == j]
            start = int(el.counts[:g].sum())
            assert el.arrays["v"][start:start + el.counts[g]].tolist() == ref
            g += 1


@FAST
@given(st.lists(st.integers(0, 3), min_size=1, max_size=5), st.data(), st.floats(0.1, 1.5))
def test_associate_by_dr_matches_reference(n_jets_list, data, radius):
    n_jets = np.array(n_jets_list)
    n_el = data.draw(st.lists(st.integers(0, 5), min_size=len(n_jets), max_size=len(n_jets)))
    event = np.repeat(np.arange(len(n_jets)), n_el)
    coords = st.floats(-2, 2, allow_nan=False)
    angles = st.floats(-3.14, 3.14, allow_nan=False)
    jet_eta = np.array([data.draw(coords) for _ in range(n_jets.sum())])
    jet_phi = np.array([data.draw(angles) for _ in range(n_jets.sum())])
    el_eta = np.array([data.draw(coords) for _ in event])
    el_phi = np.array([data.draw(angles) for _ in event])
    got = associate_by_dr(el_eta, el_phi, event, jet_eta, jet_phi, n_jets, radius)
    offsets = np.concatenate([[0], np.cumsum(n_jets)])
    for k, e in enumerate(event):
        best, best_dr = -1, radius
        for j in range(offsets[e], offsets[e + 1]):
            dphi = (el_phi[k] - jet_phi[j] + np.pi) % (2 * np.pi) - np.pi
            dr = np.hypot(el_eta[k] - jet_eta[j], dphi)
            if dr < best_dr:
                best, best_dr = j, dr
        if best != got[k]:  # only exact ties may differ
            assert got[k] >= 0 and np.isclose(np.hypot(el_eta[k] - jet_eta[got[k]], wrap_phi(el_phi[k] - jet_phi[got[k]])), best_dr)


def _reference_image(eta, phi, pt, pixels, extent, steps):
    """Slow one-jet reference: loop over elements."""
    x, y, w = np.array(eta, float), np.array(phi, float), np.array(pt, float)
    for step in steps:
        if step == "center" and w.sum() > 0:
            x, y = x - (w * x).sum() / w.sum(), y - (w * y).sum() / w.sum()
        elif step == "rotate":
            mx, my = ((w * x).sum() / w.sum(), (w * y).sum() / w.sum()) if w.sum() > 0 else (0, 0)
            cov = np.array([[(w * (x - mx) ** 2).sum(), (w * (x - mx) * (y - my)).sum()],
                            [(w * (x - mx) * (y - my)).sum(), (w * (y - my) ** 2).sum()]])
            a = 0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])
            t = np.pi / 2 - a
            x, y = np.cos(t) * x - np.sin(t) * y, np.sin(t) * x + np.cos(t) * y
        elif step == "flip":
            if (w * np.sign(x)).sum() < 0:
                x = -x
            if (w * np.sign(y)).sum() < 0:
                y = -y
    img = np.zeros((pixels, pixels))
    width = 2 * extent / pixels
    for xi, yi, wi in zip(x, y, w):
        i, j = int(np.floor((xi + extent) / width)), int(np.floor((yi + extent) / width))
        if 0 <= i < pixels and 0 <= j < pixels:
            img[i, j] += wi
    if "normalize" in steps and img.sum() > 0:
        img /= img.sum()
    return img


@FAST
@given(
    st.lists(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(0.1, 100)), max_size=6), min_size=1, max_size=4),
    st.sampled_from([(), ("center",), ("center", "rotate"), ("center", "rotate", "flip", "normalize"), ("flip", "normalize")]),
)
def test_images_match_reference(jets, steps):
    counts = np.array([len(j) for j in jets])
    eta = np.array([p[0] for j in jets for p in j])
    phi = np.array([p[1] for j in jets for p in j])
    pt = np.array([p[2] for j in jets for p in j])
    imgs = jet_images(counts, eta, phi, pt, pixels=9, extent=1.2, preprocess=steps)
    assert imgs.shape == (len(jets), 9, 9, 1)
    for i, j in enumerate(jets):
        ref = _reference_image([p[0] for p in j], [p[1] for p in j], [p[2] for p in j], 9, 1.2, steps)
        # points on a pixel boundary may fall either side after float rounding: compare sums and most pixels
        np.testing.assert_allclose(imgs[i, ..., 0].sum(), ref.sum(), rtol=1e-5)
        assert np.isclose(imgs[i, ..., 0], ref, atol=1e-4 * max(ref.max(), 1)).mean() > 0.95


def test_image_channels_and_centre():
    counts = np.array([3])
    eta, phi, pt, q = np.array([0.1, 0.3, -0.2]), np.array([0.0, 0.1, 0.0]), np.array([10.0, 5.0, 1.0]), np.array([1, 0, -1])
    img = jet_images(counts, eta, phi, pt, q, pixels=8, extent=1.0,
                     channels=["pt", "charged_pt", "neutral_pt", "multiplicity", "charged_multiplicity"], preprocess=())
    assert img[0, ..., 0].sum() == 16 and img[0, ..., 1].sum() == 11 and img[0, ..., 2].sum() == 5
    assert img[0, ..., 3].sum() == 3 and img[0, ..., 4].sum() == 2
    x, y = image_coordinates(counts, eta, phi, pt, ("center",))
    assert abs((pt * x).sum()) < 1e-9 and abs((pt * y).sum()) < 1e-9
    x, y = image_coordinates(counts, eta, phi, pt, ("center",), center="leading_subjet")
    assert abs(x[0] - (0.1 - (10 * 0.1 + 5 * 0.3 + 1 * -0.2) / 16)) > 0  # leading subjet differs from full centroid here
    img = jet_images(np.array([0, 2]), np.array([0.0, 0.1]), np.array([0.0, 0.0]), np.array([1.0, 1.0]), pixels=4, extent=0.5)
    assert img[0].sum() == 0 and np.isclose(img[1].sum(), 1)


def test_registries():
    assert REPRESENTATIONS.get("flat")().build.__qualname__ == "FlatKind.build"
    assert sorted(REPRESENTATIONS) == ["flat", "image", "sequence"]


def _slow_pad(counts, features, max_length, key, descending, pad_value):
    """Per-jet reference: stable sort (NaN last), truncate, pad."""
    x = np.full((len(counts), max_length, features.shape[1]), pad_value, np.float32)
    start = 0
    for i, n in enumerate(counts):
        rows, k = features[start:start + n], None if key is None else key[start:start + n]
        start += n
        if k is not None:
            kk = -k if descending else k
            rows = rows[np.argsort(np.where(np.isnan(kk), np.inf, kk), kind="stable")]
        x[i, :min(n, max_length)] = rows[:max_length]
    return x


@pytest.mark.parametrize("key_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("descending", [True, False])
def test_pad_sequences_matches_per_jet_reference(key_dtype, descending):
    from hepnn.io.representations import pad_sequences

    rng = np.random.default_rng(3)
    counts = rng.integers(0, 9, 300)
    n = int(counts.sum())
    features = rng.normal(size=(n, 3))
    # ties, signed zeros, NaN and infinities in the key; float64 keys that float32 cannot hold
    key = rng.choice([0.0, -0.0, 1.0, -1.0, 2.5, np.nan, np.inf, -np.inf], n).astype(np.float64)
    key = np.where(rng.random(n) < 0.3, rng.normal(size=n), key).astype(key_dtype)
    for k in (key, None):
        x, mask = pad_sequences(counts, features, 4, k, descending, pad_value=-7.0)
        np.testing.assert_array_equal(x, _slow_pad(counts, features, 4, k, descending, -7.0))
        np.testing.assert_array_equal(mask, np.arange(4)[None, :] < np.minimum(counts, 4)[:, None])


def test_image_intensity_power(tmp_path):
    from test_io_fixtures import make_per_jet

    import hepnn.io
    from hepnn.config import load_config

    config = make_per_jet(tmp_path, n=20)
    linear = hepnn.io.load(load_config(config), standardize=False)["image"]
    rooted = hepnn.io.load(load_config(config, ["data.inputs.image.intensity_power=0.5"]), standardize=False)["image"]
    np.testing.assert_allclose(rooted, np.sqrt(linear), rtol=1e-6)
    lit = (linear > 0) & (linear < 1)
    assert lit.any() and np.all(rooted[lit] > linear[lit])  # pixels below one get brighter: a less peaked image


@pytest.mark.parametrize("max_length", [100, 5])
def test_features_in_threads_equal_one_thread(tmp_path, monkeypatch, max_length):
    from test_io_fixtures import make_per_jet

    import hepnn.io
    import hepnn.io.representations as reps
    from hepnn.config import load_config

    config = load_config(make_per_jet(tmp_path, n=300), [f"data.inputs.particles.max_length={max_length}"])
    monkeypatch.setenv("HEPNN_READER_THREADS", "1")
    one = hepnn.io.load(config)
    monkeypatch.setattr(reps, "_MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setenv("HEPNN_READER_THREADS", "3")
    assert reps._threads(1000) == 3
    three = hepnn.io.load(config)
    for key in ("particles", "particles_mask", "highlevel", "image"):
        np.testing.assert_array_equal(three[key], one[key])
    assert three["particles"].tobytes() == one["particles"].tobytes()


def test_features_in_small_blocks_equal_one_block(tmp_path, monkeypatch):
    from test_io_fixtures import make_per_jet

    import hepnn.io
    import hepnn.io.representations as reps
    from hepnn.config import load_config

    config = load_config(make_per_jet(tmp_path, n=200), ["data.inputs.particles.max_length=8",
                                                         "data.inputs.particles.variables=[rel_eta, rel_phi, delta_r, log_pt_frac, log_e, part_px]"])
    monkeypatch.setattr(reps, "_FEATURE_BLOCK", 10**9)
    one = hepnn.io.load(config, standardize=False)["particles"]
    monkeypatch.setattr(reps, "_FEATURE_BLOCK", 7)  # blocks that cut jets
    for threads in ("1", "3"):
        monkeypatch.setenv("HEPNN_READER_THREADS", threads)
        blocks = hepnn.io.load(config, standardize=False)["particles"]
        assert one.tobytes() == blocks.tobytes() and np.abs(one).sum() > 0


@pytest.mark.parametrize("block", [10**9, 5])
def test_error_in_threads_names_every_bad_value(tmp_path, monkeypatch, block):
    from test_io_fixtures import make_per_jet, per_jet_data, write_tree

    import hepnn.io
    import hepnn.io.representations as reps
    from hepnn.config import load_config
    from hepnn.exceptions import InputDataError

    config = load_config(make_per_jet(tmp_path, n=50), ["data.inputs.particles.variables=[log_pt, log_e]"])
    data = per_jet_data(50, seed=1)
    energy = ak.to_numpy(ak.flatten(data["part_energy"]))
    energy[[0, -1]] = np.nan  # one in the first thread's slice, one in the last
    data["part_energy"] = ak.unflatten(energy, ak.num(data["part_energy"]))
    write_tree(tmp_path / "top.root", "jets", data)
    monkeypatch.setattr(reps, "_MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(reps, "_FEATURE_BLOCK", block)
    monkeypatch.setenv("HEPNN_READER_THREADS", "4")
    with pytest.raises(InputDataError, match=r"'log_e' \(used by data.inputs.particles\) has 2 NaN"):
        hepnn.io.load(config)


def test_images_in_small_blocks_equal_one_block(tmp_path, monkeypatch):
    from test_io_fixtures import make_per_jet

    import hepnn.io
    import hepnn.io.representations as reps
    from hepnn.config import load_config

    config = load_config(make_per_jet(tmp_path, n=40), ["data.inputs.image.charge=part_charge",
                                                        "data.inputs.image.channels=[pt, charged_pt, multiplicity]"])
    monkeypatch.setenv("HEPNN_READER_THREADS", "1")
    one = hepnn.io.load(config, standardize=False)["image"]
    monkeypatch.setattr(reps, "_JETS_PER_IMAGE_BLOCK", 1)  # 80 blocks of one jet
    blocks = hepnn.io.load(config, standardize=False)["image"]
    assert one.tobytes() == blocks.tobytes() and one.any()


def test_image_normalisation_in_place_equals_the_old_one():
    # empty images and images whose pixels sum to zero or less become zero, as before
    rng = np.random.default_rng(8)
    counts = np.array([3, 0, 2, 4])
    eta, phi = rng.uniform(-0.3, 0.3, 9), rng.uniform(-0.3, 0.3, 9)
    pt = np.array([1.0, 2.0, 3.0, 1.0, -1.0, -2.0, 5.0, 0.5, 0.25])
    got = jet_images(counts, eta, phi, pt, pixels=5, extent=0.4, preprocess=("normalize",))
    # the old normalisation, from the float64 pixel sums
    jet, width = np.repeat(np.arange(4), counts), 0.8 / 5
    ix, iy = np.floor((eta + 0.4) / width).astype(int), np.floor((phi + 0.4) / width).astype(int)
    raw = np.bincount((jet * 5 + ix) * 5 + iy, weights=pt, minlength=4 * 25).reshape(4, 5, 5, 1)
    total = raw.sum(axis=(1, 2), keepdims=True)
    expected = np.divide(raw, total, out=np.zeros_like(raw), where=total > 0).astype(np.float32)
    assert got.tobytes() == expected.tobytes()
    assert got[1].sum() == 0 and got[2].sum() == 0 and np.isclose(got[0].sum(), 1)  # empty, and summing to zero


@pytest.mark.parametrize("pad", [0.0, -1.0])
def test_element_rows_drop_rows_past_max_length_in_fit_rows_and_padding(pad):
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 9, 50)
    counts[:3] = [0, 8, 4]
    features = rng.normal(size=(int(counts.sum()), 3)).astype(np.float32)
    rows = ElementRows(features, counts, 4, pad)
    x, mask = rows.pad()
    ref_x, ref_mask = pad_sequences(counts, features, 4, None, True, pad)
    assert x.shape == ref_x.shape == (50, 4, 3) and x.flags.c_contiguous
    np.testing.assert_array_equal(x.view(np.uint32), ref_x.view(np.uint32))
    np.testing.assert_array_equal(mask, ref_mask)
    rank = np.arange(len(features)) - np.repeat(np.cumsum(counts) - counts, counts)
    np.testing.assert_array_equal(rows.dropped(), np.flatnonzero(rank >= 4))
    np.testing.assert_array_equal(rows.kept(), rank < 4)
    train = rng.random(50) < 0.5
    np.testing.assert_array_equal(rows.jet_rows(train), ref_x[ref_mask & train[:, None]])
    short = ElementRows(features[:4], [1, 0, 3], 4, pad)
    assert not len(short.dropped()) and short.kept() is None
    np.testing.assert_array_equal(short.pad()[0], pad_sequences([1, 0, 3], features[:4], 4, None, True, pad)[0])


def _in_order_jets(counts, max_length, rng):
    """Per-jet arrays with ``counts`` constituents stored by pT, and a config of five derived variables."""
    n = int(counts.sum())
    pt = rng.exponential(10.0, n) + 0.5
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for s, c in zip(starts, counts):  # pT-ordered within each jet, as files store them
        pt[s:s + c] = np.sort(pt[s:s + c])[::-1]
    eta, phi = rng.normal(0, 0.3, n), rng.uniform(-np.pi, np.pi, n)
    part = {"part_px": pt * np.cos(phi), "part_py": pt * np.sin(phi), "part_pz": pt * np.sinh(eta),
            "part_energy": pt * np.cosh(eta) * 1.01}
    arrays = {k: ak.unflatten(v.astype(np.float32), counts) for k, v in part.items()}
    arrays.update(jet_pt=np.full(len(counts), 100.0, np.float32), jet_eta=rng.normal(0, 0.1, len(counts)).astype(np.float32),
                  jet_phi=rng.uniform(-3, 3, len(counts)).astype(np.float32), jet_energy=np.full(len(counts), 150.0, np.float32))
    config = {"data": {
        "layout": "per_jet",
        "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
        "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
        "inputs": {"p": {"kind": "sequence", "max_length": max_length, "sort_by": {"variable": "log_pt"},
                         "variables": ["rel_eta", "rel_phi", "log_pt_frac", "log_e_frac", "delta_r"]}},
    }}
    return arrays, config


@pytest.mark.parametrize("max_length", [3, 9])
def test_in_order_elements_truncated_before_or_after_their_features_give_the_same_bits(monkeypatch, max_length):
    """Elements stored in order (constituents by pT): the kept ones gathered first, or all of them
    computed and the rest dropped by the padding, give bit-identical inputs."""
    import hepnn.io.representations as reps
    from hepnn.io.represent import represent

    rng = np.random.default_rng(3)
    counts = rng.integers(0, 12, 200)
    arrays, config = _in_order_jets(counts, max_length, rng)
    monkeypatch.setattr(reps, "_KEEP_ALL_ABOVE", 0.0)  # every element's features, the padding drops the rest
    all_then_drop = represent(config, arrays)
    monkeypatch.setattr(reps, "_KEEP_ALL_ABOVE", 2.0)  # the kept elements gathered first
    kept_first = represent(config, arrays)
    assert (counts > max_length).any()
    assert kept_first["p"].tobytes() == all_then_drop["p"].tobytes()
    np.testing.assert_array_equal(kept_first["p_mask"], all_then_drop["p_mask"])
    # and they are the first max_length constituents: log(pT / jet pT) of the leading one
    lead = counts > 0
    pt = np.hypot(ak.to_numpy(ak.firsts(arrays["part_px"][lead])), ak.to_numpy(ak.firsts(arrays["part_py"][lead])))
    np.testing.assert_allclose(kept_first["p"][lead, 0, 2], np.log(pt / 100.0), rtol=1e-5)


@pytest.mark.parametrize("max_length", [3, 9])
def test_jets_that_fill_every_slot_give_the_padded_values(max_length):
    """When every jet has at least max_length elements the rows are the padded array (no scatter):
    the same values as for the same jets next to a short one (which takes the scatter)."""
    from hepnn.io.represent import represent

    counts = np.append(np.random.default_rng(4).integers(max_length, 14, 50), 1)
    arrays, config = _in_order_jets(counts, max_length, np.random.default_rng(5))
    full = represent(config, {k: v[:50] for k, v in arrays.items()})
    mixed = represent(config, arrays)
    assert full["p"].shape == (50, max_length, 5) and full["p"].flags.writeable
    np.testing.assert_allclose(full["p"], mixed["p"][:50], rtol=1e-6, atol=1e-7)  # ulps: SIMD tails on other CPUs
    assert full["p_mask"].all() and not mixed["p_mask"][50, 1:].any()
