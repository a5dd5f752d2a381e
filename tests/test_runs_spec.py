"""The run specification: computed once, saved as spec.json, read back by every stage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepnn.config import load_config
from hepnn.exceptions import ConfigError
from hepnn.runs import RunSpec, load_spec


def _config(**data):
    base = {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]},
                       "parts": {"kind": "sequence", "variables": ["pt", "eta", "phi"], "max_length": 5,
                                 "pad_value": -1.0}}}
    return load_config({"data": {**base, **data}, "model": {"name": "dense"}})


def test_spec_from_config_names_classes_kinds_and_pad_value():
    cfg = _config(files=[{"path": "q*.root", "label": 0}, {"path": "top.root", "label": 1}])
    spec = RunSpec.from_config(cfg, input_shapes={"jet": (2,), "parts": (5, 3)})
    assert spec.task == "binary" and spec.classes == ("q", "top") and spec.n_outputs == 1
    assert spec.names == ("jet", "parts") and spec.mask_value == -1.0
    assert spec.input("parts").kind == "sequence" and spec.input("parts").shape == (5, 3)
    assert spec.feature_names == {"jet": ["a", "b"], "parts": ["pt", "eta", "phi"]}
    assert spec.input("jet").pad_value is None
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_spec_classes_follow_the_data_labels_beyond_two():
    spec = RunSpec.from_config(_config(), {"label": np.array([0, 2, 1])})
    assert spec.classes == ("class_0", "class_1", "class_2") and spec.task == "multiclass" and spec.n_outputs == 3
    assert RunSpec.from_config(_config()).classes == ("background", "signal")


def test_spec_refuses_sequences_with_different_pad_values():
    cfg = load_config({"data": {"inputs": {
        "a": {"kind": "sequence", "variables": ["x"], "pad_value": 0.0},
        "b": {"kind": "sequence", "variables": ["y"], "pad_value": -9.0}}}})
    with pytest.raises(ConfigError, match=r"share pad_value, received \[-9.0, 0.0\]"):
        RunSpec.from_config(cfg)


def test_run_writes_spec_and_old_runs_without_it_still_load(tmp_path):
    from hepnn.training import Tagger, predict_split
    from hepnn.training.trainer import Trainer

    from test_training_trainer import toy_config, toy_data

    data = toy_data(n=300)
    Trainer(toy_config(epochs=1), log=lambda _: None).fit(tmp_path / "run", data=data)
    saved = json.loads((tmp_path / "run" / "spec.json").read_text())
    assert saved["task"] == "binary" and saved["classes"] == ["background", "signal"]
    assert saved["inputs"] == [{"name": "jet", "kind": "flat", "shape": [4], "feature_names": ["a", "b", "c", "d"],
                                "pad_value": None}]
    spec = load_spec(tmp_path / "run")
    tagger = Tagger.load(tmp_path / "run")
    assert tagger.spec == spec and tagger.classes == ["background", "signal"] and tagger.inputs == ["jet"]
    scores = predict_split(tmp_path / "run", "test", data=data)["outputs"]

    (tmp_path / "run" / "spec.json").unlink()  # a run written before spec.json existed
    old = load_spec(tmp_path / "run")
    assert (old.task, old.classes, old.names, old.mask_value) == (spec.task, spec.classes, spec.names, 0.0)
    assert Tagger.load(tmp_path / "run").classes == ["background", "signal"]
    np.testing.assert_array_equal(predict_split(tmp_path / "run", "test", data=data)["outputs"], scores)
