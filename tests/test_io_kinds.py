"""Input kinds are dispatched through their registry: a new kind is one registered class."""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
import pytest
import uproot

import hepnn.io
from hepnn.config import INPUT_CONFIGS, load_config
from hepnn.exceptions import ConfigError
from hepnn.io.representations import REPRESENTATIONS, InputKind, input_kind, register_input_kind


@dataclass(frozen=True)
class CountInput:
    """Number of constituents per jet, as one flat feature."""

    kind: str = "toy_count"
    branch: str = "part_pt"
    standardize: bool = False


class CountKind(InputKind):
    """A toy kind: counts the elements of ``branch`` in each jet (``(n_jets, 1)`` float32)."""

    config = CountInput
    elements = True

    def plan(self, group, inp, resolve, where):
        group.variables.append((inp.branch, resolve(inp.branch, f"{where}.branch")))

    def feature_names(self, inp):
        return ["n_constituents"]

    def build(self, name, inp, chunk):
        return {name: chunk.elements(name).counts.astype(np.float32)[:, None]}


@pytest.fixture
def count_kind():
    register_input_kind("toy_count")(CountKind)
    yield CountKind
    REPRESENTATIONS.unregister("toy_count")
    INPUT_CONFIGS.unregister("toy_count")


def _file(tmp_path):
    counts = np.array([3, 0, 5, 1, 2])
    pt = np.arange(1.0, counts.sum() + 1)
    path = tmp_path / "jets.root"
    with uproot.recreate(path) as f:
        f["jets"] = {
            "jet_pt": np.array([400.0, 500.0, 600.0, 700.0, 800.0]),
            "jet_eta": np.zeros(5), "jet_phi": np.zeros(5),
            "part_pt": ak.unflatten(pt, counts),
        }
    return path, counts


def test_a_registered_kind_is_read_through_load(tmp_path, count_kind):
    path, counts = _file(tmp_path)
    config = {"data": {"files": [{"path": str(path), "tree": "jets", "label": 0}],
                       "split": {"train": 1.0, "val": 0.0, "test": 0.0},
                       "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"], "standardize": False},
                                  "n": {"kind": "toy_count", "branch": "part_pt"}}}}
    data = hepnn.io.load(config)
    assert data["n"].dtype == np.float32 and data["n"].shape == (5, 1)
    np.testing.assert_array_equal(data["n"][:, 0], counts)
    np.testing.assert_array_equal(data["jet"][:, 0], [400, 500, 600, 700, 800])
    assert data.feature_names == {"jet": ["jet_pt"], "n": ["n_constituents"]}
    assert "n_mask" not in data
    assert isinstance(load_config(config).data.inputs["n"], CountInput)
    assert input_kind(load_config(config).data.inputs["n"]).tensors("n", CountInput()) == {"n": ((1,), "float32")}


def test_an_unregistered_kind_is_a_config_error(tmp_path):
    config = {"data": {"inputs": {"n": {"kind": "toy_count"}}}}
    with pytest.raises(ConfigError, match=r"data.inputs.n.kind: expected one of 'flat', 'sequence', 'image', received 'toy_count'"):
        load_config(config)


def test_register_input_kind_checks_its_argument():
    with pytest.raises(TypeError, match="subclass of InputKind"):
        register_input_kind("toy_bad")(object)
    with pytest.raises(ValueError, match="already registered"):
        register_input_kind("flat")(CountKind)


def test_builtin_kinds_describe_their_tensors():
    config = load_config({"data": {"inputs": {
        "t": {"kind": "sequence", "variables": ["a", "b"], "max_length": 7, "pad_value": -1},
        "i": {"kind": "image", "pixels": 5, "channels": ["pt", "multiplicity"]},
    }}})
    t, i = config.data.inputs["t"], config.data.inputs["i"]
    assert input_kind(t).tensors("t", t) == {"t": ((7, 2), "float32"), "t_mask": ((7,), "bool")}
    assert input_kind(t).pad_value(t) == -1.0
    assert input_kind(i).tensors("i", i) == {"i": ((5, 5, 2), "float32")}
    assert input_kind(i).feature_names(i) == ["pt", "multiplicity"]
