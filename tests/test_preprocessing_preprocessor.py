"""The Preprocessor estimator: transforms, standardisation without padding, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepnn.exceptions import InputDataError
from hepnn.preprocessing import Preprocessor

SPEC = {
    "jet": {"kind": "flat", "variables": ["a", "b"], "standardize": True,
            "transforms": {"a": {"abs": True, "log": True, "clip": [0.0, 2.0]}}},
    "seq": {"kind": "sequence", "variables": ["x"], "standardize": True, "pad_value": -1.0, "transforms": {}},
    "img": {"kind": "image", "variables": []},
}


def _data(rng):
    x = rng.normal(5, 2, (50, 4, 1))
    mask = rng.random((50, 4)) < 0.6
    x[~mask] = -1.0
    return {"jet": rng.normal(3, 1, (50, 2)), "seq": x, "seq_mask": mask, "img": np.ones((50, 2, 2, 1))}


def test_fit_excludes_padding_and_restores_pad_value():
    rng = np.random.default_rng(0)
    data = _data(rng)
    p = Preprocessor(SPEC).fit(data)
    assert p.n_samples_["seq"] == data["seq_mask"].sum()
    np.testing.assert_allclose(p.mean_["seq"][0], data["seq"][data["seq_mask"]].mean())
    out = p.transform(data)
    assert (out["seq"][~data["seq_mask"]] == -1.0).all()
    np.testing.assert_allclose(out["seq"][data["seq_mask"]].mean(), 0, atol=1e-5)
    np.testing.assert_allclose(out["jet"][:, 1].std(), 1, atol=1e-4)
    assert out["img"] is data["img"] and out["jet"].dtype == np.float32
    a = np.clip(np.log(np.abs(data["jet"][:, 0])), 0, 2)
    np.testing.assert_allclose(out["jet"][:, 0], (a - a.mean()) / a.std(), rtol=1e-4, atol=1e-5)


def test_partial_fit_equals_fit():
    rng = np.random.default_rng(1)
    data = _data(rng)
    full = Preprocessor(SPEC).fit(data)
    parts = Preprocessor(SPEC)
    for sl in (slice(0, 7), slice(7, 30), slice(30, 50)):
        parts.partial_fit({k: v[sl] for k, v in data.items()})
    for name in ("jet", "seq"):
        np.testing.assert_allclose(parts.mean_[name], full.mean_[name])
        np.testing.assert_allclose(parts.scale_[name], full.scale_[name])


def test_json_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    data = _data(rng)
    p = Preprocessor(SPEC).fit(data)
    q = Preprocessor.load(p.save(tmp_path / "pre.json"))
    np.testing.assert_array_equal(p.transform(data)["seq"], q.transform(data)["seq"])
    assert "fitted" in repr(q)


def test_log_of_non_positive_is_an_error():
    p = Preprocessor({"jet": {"kind": "flat", "variables": ["a"], "transforms": {"a": {"log": True}}}})
    with pytest.raises(InputDataError, match="transforms.a: log of 1 non-positive"):
        p.fit({"jet": np.array([[1.0], [0.0]])})


def test_unfitted_transform_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        Preprocessor(SPEC).transform(_data(np.random.default_rng(0)))


def _images(n, seed):
    """Images whose pixels have different means and spreads; one corner pixel always empty."""
    rng = np.random.default_rng(seed)
    centre = np.linspace(0.0, 3.0, 4 * 4 * 2).reshape(4, 4, 2)
    spread = np.linspace(0.5, 2.0, 4 * 4 * 2).reshape(4, 4, 2)
    x = centre + spread * rng.normal(size=(n, 4, 4, 2))
    x[:, 0, 0, :] = 0.0
    return x.astype(np.float32)


def test_image_standardisation_is_per_pixel_and_streams():
    spec = {"image": {"kind": "image", "variables": [], "standardize": True, "transforms": {}}}
    train = _images(4000, 0)
    pre = Preprocessor(spec).fit({"image": train})
    out = pre.transform({"image": _images(4000, 1)})["image"]
    assert out.shape == (4000, 4, 4, 2) and out.dtype == np.float32
    mean, std = out.mean(axis=0), out.std(axis=0)
    np.testing.assert_allclose(mean[1:, 1:], 0.0, atol=0.1)  # every pixel and channel on its own
    np.testing.assert_allclose(std[1:, 1:], 1.0, atol=0.1)
    assert np.all(out[:, 0, 0, :] == 0.0)  # never-filled pixel: scale 1, stays 0
    # fitted on training values, saved per pixel, streamed fit equal to the one-shot fit
    np.testing.assert_allclose(np.reshape(pre.mean_["image"], (4, 4, 2)), train.mean(axis=0), rtol=1e-5, atol=1e-6)
    parts = Preprocessor(spec)
    parts.reset()
    for chunk in np.array_split(train, 7):
        parts.partial_fit({"image": chunk})
    np.testing.assert_allclose(parts.scale_["image"], pre.scale_["image"], rtol=1e-6)
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(again.transform({"image": train})["image"], pre.transform({"image": train})["image"])
    # a different image size than fitted: a clear error
    with pytest.raises(InputDataError, match="fitted on 32 values per jet"):
        pre.transform({"image": np.zeros((2, 5, 5, 2), np.float32)})
    # without standardize images pass through untouched
    plain = Preprocessor({"image": {**spec["image"], "standardize": False}}).fit({"image": train})
    assert plain.transform({"image": train})["image"] is train


def test_image_standardize_from_the_config(tmp_path):
    from test_io_fixtures import make_per_jet

    import hepnn
    import hepnn.io

    config = make_per_jet(tmp_path, n=60)
    cfg = hepnn.load_config(config, ["data.inputs.image.standardize=true", "data.inputs.image.pixels=9"])
    data = hepnn.io.load(cfg)
    raw = hepnn.io.load(cfg, standardize=False)
    train = raw.split("train")["image"].reshape(-1, 81)
    mean, std = train.mean(axis=0), train.std(axis=0)
    expected = (raw["image"].reshape(len(raw["image"]), -1) - mean) / np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(data["image"].reshape(len(expected), -1), expected, rtol=1e-4, atol=1e-4)


def _old_transform(p, data):
    """The transform as it was before the fast paths: everything in float64, padding overwritten."""
    out = dict(data)
    for name, spec in p._active():
        x = np.asarray(data[name])
        real = p._real(data, name, x, spec)
        values = p._stateless(name, spec, x, real)
        values = values.reshape(len(values), -1) if spec.get("kind") == "image" else values
        mean, scale = p.standardisation(name, spec, values.shape[-1], x.shape)
        values = ((values - mean) / scale).reshape(x.shape)
        if real is not None:
            values[~real] = spec.get("pad_value", 0.0)
        out[name] = values.astype(np.float32)
    return out


def _old_fit(p, data):
    """Mean and M2 as the fit computed them before: float64 copy of everything, then the real rows."""
    out = {}
    for name, spec in p._active():
        x = np.asarray(data[name])
        real = p._real(data, name, x, spec)
        values = p._stateless(name, spec, x, real)
        values = values.reshape(len(values), -1) if spec.get("kind") == "image" else values
        rows = values[real] if real is not None else values.reshape(-1, values.shape[-1])
        mean = rows.mean(axis=0)
        out[name] = ([float(v) for v in mean], ((rows - mean) ** 2).sum(axis=0))
    return out


FAST_SPEC = {
    **SPEC,
    "img": {"kind": "image", "variables": [], "standardize": True},
    "raw": {"kind": "sequence", "variables": ["u", "v"], "standardize": False, "pad_value": 0.0, "transforms": {}},
    "part": {"kind": "sequence", "variables": ["u", "v"], "standardize": False, "pad_value": -1.0,
             "transforms": {"v": {"standardize": True}}},
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_paths_are_bit_identical_to_the_float64_transform(dtype):
    rng = np.random.default_rng(4)
    data = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in _data(rng).items()}
    data["img"] = rng.random((50, 2, 2, 1)).astype(dtype)
    for seq in ("raw", "part"):
        x = rng.normal(0, 3, (50, 5, 2)).astype(dtype)
        mask = np.arange(5)[None, :] < rng.integers(0, 6, 50)[:, None]
        x[~mask] = FAST_SPEC[seq]["pad_value"]
        data[seq], data[f"{seq}_mask"] = x, mask
    data["raw"][3, -1, 0] = -0.0  # a padded slot that is not bit for bit the pad value 0.0
    data["raw"][0, 0, 1] = -0.0  # a real -0.0 stays -0.0
    p = Preprocessor(FAST_SPEC).fit(data)
    mean_m2 = _old_fit(p, data)
    assert not p.fits("raw") and "raw" not in p.mean_  # nothing to standardise: not fitted at all
    for name, (mean, m2) in mean_m2.items():
        if name == "raw":
            continue
        assert p.mean_[name] == mean
        np.testing.assert_array_equal(p._m2_[name], m2)
    new, old = p.transform(data), _old_transform(p, data)
    for name in FAST_SPEC:
        assert new[name].dtype == np.float32
        np.testing.assert_array_equal(new[name].view(np.uint32), old[name].view(np.uint32))
    # reader output (float32, padding at the pad value) with nothing to do is passed through uncopied
    data["raw"][3, -1, 0] = 0.0
    same = Preprocessor(FAST_SPEC).fit(data).transform(data)
    assert (same["raw"] is data["raw"]) == (dtype == np.float32)
    np.testing.assert_array_equal(same["raw"].view(np.uint32), _old_transform(p, data)["raw"].view(np.uint32))


def test_is_identity_only_when_transform_changes_nothing():
    raw = {"raw": FAST_SPEC["raw"], "img": {"kind": "image", "variables": []}}
    assert Preprocessor(raw).is_identity()
    for name in ("jet", "seq", "part"):
        assert not Preprocessor({**raw, name: FAST_SPEC[name]}).is_identity()
    assert not Preprocessor({**raw, "img": FAST_SPEC["img"]}).is_identity()


@pytest.mark.parametrize("threads", ["1", "3"])
def test_sequence_transform_in_blocks_is_bit_identical(monkeypatch, threads):
    import hepnn.preprocessing.preprocessor as module

    monkeypatch.setattr(module, "_JETS_PER_BLOCK", 7)
    monkeypatch.setattr(module, "_MIN_VALUES_PER_THREAD", 10)
    monkeypatch.setenv("HEPNN_READER_THREADS", threads)
    rng = np.random.default_rng(6)
    spec = {"seq": {"kind": "sequence", "variables": ["u", "v", "w"], "standardize": True, "pad_value": -2.0,
                    "transforms": {"u": {"log": True}, "w": {"abs": True, "clip": [0.0, 1.5]}}}}
    x = rng.normal(0, 1, (50, 6, 3)).astype(np.float32)
    x[..., 0] = np.abs(x[..., 0]) + 0.1
    mask = np.arange(6)[None, :] < rng.integers(0, 7, 50)[:, None]
    x[~mask] = rng.choice([-2.0, 0.0, -1.0], (~mask).sum())[:, None]  # padding not (all) at the pad value, -1: log of it
    data = {"seq": x, "seq_mask": mask}
    p = Preprocessor(spec).fit(data)
    np.testing.assert_array_equal(p.transform(data)["seq"].view(np.uint32), _old_transform(p, data)["seq"].view(np.uint32))
    x[3, 0, 0], x[40, 0, 0] = -1.0, 0.0  # two real non-positive values in different blocks
    mask[3, 0] = mask[40, 0] = True
    with pytest.raises(InputDataError, match="log of 2 non-positive values"):
        p.transform(data)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_transform_elements_equals_the_padded_transform(monkeypatch, threads):
    import hepnn.preprocessing.preprocessor as module

    monkeypatch.setattr(module, "_ROWS_PER_BLOCK", 11)
    monkeypatch.setattr(module, "_MIN_VALUES_PER_THREAD", 10)
    monkeypatch.setenv("HEPNN_READER_THREADS", threads)
    rng = np.random.default_rng(8)
    spec = {"seq": {"kind": "sequence", "variables": ["u", "v", "w"], "standardize": False, "pad_value": -2.0,
                    "transforms": {"u": {"log1p": True, "standardize": True}, "v": {"standardize": True},
                                   "w": {"abs": True, "clip": [0.0, 1.5]}}},
            "raw": {"kind": "sequence", "variables": ["u"], "standardize": False, "pad_value": 0.0, "transforms": {}}}
    x = rng.normal(0, 1, (40, 6, 3)).astype(np.float32)
    x[..., 0] = np.abs(x[..., 0])
    mask = np.arange(6)[None, :] < rng.integers(0, 7, 40)[:, None]
    x[~mask] = -2.0
    data = {"seq": x, "seq_mask": mask, "raw": x[..., :1] * mask[..., None], "raw_mask": mask}
    p = Preprocessor(spec).fit(data)
    padded = p.transform(data)
    rows = p.transform_elements("seq", x[mask])
    assert rows.dtype == np.float32 and rows.shape == (mask.sum(), 3)
    np.testing.assert_array_equal(rows.view(np.uint32), padded["seq"][mask].view(np.uint32))
    assert abs(rows[:, 1].mean()) < 1e-6 and (rows[:, 2] >= 0).all() and rows[:, 2].max() == 1.5  # standardised / clipped
    raw = data["raw"][mask]
    assert p.transform_elements("raw", raw) is raw  # nothing to do: passed through
    x[2, 0, 0], x[30, 0, 0] = -1.5, -3.0  # two log1p of non-positive values, in different blocks
    with pytest.raises(InputDataError, match=r"transforms.u: log1p of 2 values at or below -1 \(e.g. -1.5\)"):
        p.transform_elements("seq", x[mask])
    # rows the caller drops (real False) are transformed unchecked; the real ones as before
    real = np.ones(int(mask.sum()), dtype=bool)
    real[np.flatnonzero(x[mask][:, 0] < 0)[1]] = False
    with pytest.raises(InputDataError, match="transforms.u: log1p of 1 values at or below -1"):
        p.transform_elements("seq", x[mask], real)
    real[np.flatnonzero(x[mask][:, 0] < 0)] = False
    np.testing.assert_array_equal(p.transform_elements("seq", x[mask], real)[real].view(np.uint32),
                                  padded["seq"][mask][real].view(np.uint32))


# --- numbers against independent references ------------------------------------------------

AUDIT_SPEC = {
    "jet": {"kind": "flat", "variables": ["pt", "eta", "m", "q"], "standardize": False,
            "transforms": {"pt": {"log": True, "standardize": True}, "eta": {"abs": True, "standardize": True},
                           "m": {"log1p": True, "clip": [0.0, 4.0], "standardize": True}}},
    "seq": {"kind": "sequence", "variables": ["e", "d"], "standardize": True, "pad_value": -9.0,
            "transforms": {"e": {"log": True}}},
    "img": {"kind": "image", "variables": [], "standardize": True},
}


def _audit_data(rng, n=40):
    seq = rng.exponential(3.0, (n, 5, 2)) + 0.1
    mask = rng.random((n, 5)) < 0.6
    seq[~mask] = rng.normal(0, 100, ((~mask).sum(), 2))  # garbage (even negative) in padded slots
    jet = np.c_[rng.exponential(50, n) + 1, rng.normal(0, 2, n), rng.exponential(20, n), rng.normal(7, 3, n)]
    return {"jet": jet, "seq": seq, "seq_mask": mask, "img": rng.exponential(1.0, (n, 3, 3, 2))}


def _reference(data):
    """Brute-force means/stds (numpy, float64) of the transformed real values."""
    jet = data["jet"]
    cols = np.c_[np.log(jet[:, 0]), np.abs(jet[:, 1]), np.clip(np.log1p(jet[:, 2]), 0, 4), jet[:, 3]]
    real = [data["seq"][i, j] for i in range(len(data["seq"])) for j in range(5) if data["seq_mask"][i, j]]
    real = np.array(real)
    real[:, 0] = np.log(real[:, 0])
    img = data["img"].reshape(len(data["img"]), -1)
    return {"jet": (cols, [True, True, True, False]), "seq": (real, [True, True]), "img": (img, [True] * 18)}


def test_fit_and_transform_match_a_brute_force_reference():
    rng = np.random.default_rng(11)
    data = _audit_data(rng)
    p = Preprocessor(AUDIT_SPEC).fit(data)
    out = p.transform(data)
    ref = _reference(data)
    for name, (values, used) in ref.items():
        np.testing.assert_allclose(p.mean_[name], values.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(p.scale_[name], values.std(axis=0), rtol=1e-12)
        assert p.n_samples_[name] == len(values)
        mean, std = values.mean(axis=0), values.std(axis=0)
        expected = np.where(used, (values - mean) / std, values)
        got = out[name][data["seq_mask"]] if name == "seq" else out[name].reshape(len(values), -1)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert (out["seq"][~data["seq_mask"]] == -9.0).all()  # padding back at pad_value, every feature
    assert out["img"].shape == data["img"].shape


def test_fit_in_parts_equals_the_fit_of_the_concatenation():
    rng = np.random.default_rng(12)
    data = _audit_data(rng, 60)
    full = Preprocessor(AUDIT_SPEC).fit(data)
    cuts = [(0, 1), (1, 17), (17, 60)]
    chunks = [{k: v[a:b] for k, v in data.items()} for a, b in cuts]
    streamed = Preprocessor(AUDIT_SPEC)
    for chunk in chunks:
        streamed.partial_fit(chunk)
    joined = Preprocessor(AUDIT_SPEC).fit_parts(chunks)
    for name in ("jet", "seq", "img"):
        for other in (streamed, joined):
            np.testing.assert_allclose(other.mean_[name], full.mean_[name], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(other.scale_[name], full.scale_[name], rtol=1e-12)
            assert other.n_samples_[name] == full.n_samples_[name]


@pytest.mark.parametrize("value", [0.1, 91.1876, -3.3, 0.0])
def test_a_constant_feature_gets_scale_one(value):
    # 0.1 is not a binary fraction: its mean over 1000 copies is off by ~1e-15, and before the fix
    # that rounding was taken as the std (scale 1.4e-15): the constant column became 1.0 and a
    # value of 0.2 became 7e13
    rng = np.random.default_rng(13)
    spec = {"j": {"kind": "flat", "variables": ["c", "x"], "standardize": True}}
    x = np.c_[np.full(1000, value), rng.normal(size=1000)]
    p = Preprocessor(spec).fit({"j": x})
    assert p.scale_["j"][0] == 1.0
    out = p.transform({"j": np.r_[x[:3], [[value + 0.1, 0.0]]]})["j"]
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:3, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[3, 0], 0.1, rtol=1e-5)


def test_a_resumed_fit_after_load_equals_the_uninterrupted_fit(tmp_path):
    # before the fix the loaded sums of squares were scale**2 * n: n (not 0) for a constant column,
    # whose scale then became sqrt(1/2) = 0.707 after one more chunk instead of 1
    rng = np.random.default_rng(14)
    spec = {"j": {"kind": "flat", "variables": ["c", "x"], "standardize": True}}
    a = {"j": np.c_[np.zeros(200), rng.normal(size=200)]}
    b = {"j": np.c_[np.zeros(300), rng.normal(2, 3, size=300)]}
    direct = Preprocessor(spec).partial_fit(a).partial_fit(b)
    resumed = Preprocessor.load(Preprocessor(spec).fit(a).save(tmp_path / "p.json")).partial_fit(b)
    assert resumed.scale_["j"][0] == 1.0
    np.testing.assert_allclose(resumed.mean_["j"], direct.mean_["j"], rtol=1e-12)
    np.testing.assert_allclose(resumed.scale_["j"], direct.scale_["j"], rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_in_a_standardised_feature_are_an_error_naming_it(bad):
    # before the fix the mean became NaN (and the scale 1) silently
    spec = {"j": {"kind": "flat", "variables": ["pt", "eta"], "standardize": True}}
    x = np.random.default_rng(15).normal(size=(20, 2))
    x[4, 1] = bad
    with pytest.raises(InputDataError, match=r"'j'.*'eta'"):
        Preprocessor(spec).fit({"j": x})
    seq = {"s": {"kind": "sequence", "variables": ["e"], "standardize": True, "pad_value": 0.0}}
    values, mask = np.ones((3, 4, 1)), np.ones((3, 4), bool)
    values[1, 2, 0], mask[1, 2] = bad, False  # a padded slot may hold anything
    Preprocessor(seq).fit({"s": values, "s_mask": mask})
    mask[1, 2] = True
    with pytest.raises(InputDataError, match=r"'s'.*'e'"):
        Preprocessor(seq).fit({"s": values, "s_mask": mask})


def test_a_changed_number_of_features_is_an_error_naming_the_input():
    spec = {"j": {"kind": "flat", "variables": ["pt", "eta"], "standardize": True}}
    p = Preprocessor(spec).fit({"j": np.random.default_rng(16).normal(size=(10, 2))})
    with pytest.raises(InputDataError, match=r"'j'.*fitted on 2 values per jet, received 3"):
        p.transform({"j": np.zeros((4, 3))})
