"""The Preprocessor estimator: transforms, standardisation without padding, JSON round trip."""

from __future__ import annotations

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
    with pytest.raises(InputDataError, match="'a'.*1 non-positive"):
        p.fit({"jet": np.array([[1.0], [0.0]])})


def test_unfitted_transform_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        Preprocessor(SPEC).transform(_data(np.random.default_rng(0)))
