"""Explanation container, registry and option validation (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.exceptions import ConfigError, UnknownNameError
from hepnn.explain import EXPLAINERS, Explanation
from hepnn.explain.registry import check_options

NAMES = ["shap", "permutation", "occlusion", "track_dropping", "saliency", "integrated_gradients", "gradcam",
         "activation_maximization", "surrogate", "feature_maps"]


def make(n=6):
    rng = np.random.default_rng(1)
    return Explanation(
        "demo", {"jet": rng.normal(size=(n, 3)), "tracks": rng.normal(size=(n, 4, 2))},
        {"jet": rng.normal(size=(n, 3)), "tracks": rng.normal(size=(n, 4, 2))},
        {"jet": ["pt", "eta", "mass"], "tracks": ["d0", "z0"]},
        base_values=np.full(n, 0.5), outputs=rng.random(n), labels=np.array([0, 1] * (n // 2)),
        extra={"importance_jet": np.array([1.0, 2.0, 3.0]), "rules": "|--- pt <= 1"},
    )


def test_registry_has_every_method():
    assert sorted(NAMES) == EXPLAINERS.names()


def test_unknown_method_and_option_name_the_valid_ones():
    with pytest.raises(UnknownNameError, match="did you mean 'shap'"):
        EXPLAINERS.get("shapp")
    with pytest.raises(ConfigError, match=r"explain\.options\.occlusion\.patch: .*patch_size"):
        check_options("occlusion", {"patch": 3})
    check_options("occlusion", {"patch_size": 3, "stride": 1})


def test_save_load_roundtrip_without_pickles(tmp_path):
    e = make()
    path = e.save(tmp_path / "out")
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        assert f["values_jet"].shape == (6, 3) and f["inputs_tracks"].shape == (6, 4, 2)
        assert list(f["feature_names_jet"]) == ["pt", "eta", "mass"]
    assert {"values_jet", "values_tracks", "inputs_jet", "feature_names_tracks", "base_values"} <= keys
    assert "values" not in keys  # two inputs: one values_<input> array each
    back = Explanation.load(tmp_path / "out")
    np.testing.assert_array_equal(back.values["tracks"], e.values["tracks"])
    np.testing.assert_array_equal(back.extra["importance_jet"], [1.0, 2.0, 3.0])
    assert back.feature_names == e.feature_names and back.method == "demo"


def test_single_input_also_writes_plain_values(tmp_path):
    e = Explanation("x", {"jet": np.ones((2, 3))}, {"jet": np.zeros((2, 3))}, {"jet": ["a", "b", "c"]})
    with np.load(e.save(tmp_path), allow_pickle=False) as f:
        assert f["values"].shape == (2, 3)


def test_split_by_class_and_by_bin():
    e = make(6)
    parts = e.by_class()
    assert sorted(parts) == [0, 1] and parts[1].n_jets == 3
    np.testing.assert_array_equal(parts[1].values["jet"], e.values["jet"][1::2])
    pt = np.array([100, 200, 300, 400, 500, 600.0])
    bins = e.by_bin(pt, [0, 250, 700])
    assert [b.n_jets for b in bins.values()] == [2, 4]
    np.testing.assert_allclose(bins[(0.0, 250.0)].mean_abs()["jet"], np.abs(e.values["jet"][:2]).mean(axis=0))
    with pytest.raises(ValueError, match="increasing"):
        e.by_bin(pt, [5, 1])
