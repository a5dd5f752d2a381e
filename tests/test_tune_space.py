"""hepnn.tune.space: parsing SPACE.yaml strictly and checking its keys against the config."""

from __future__ import annotations

import pytest

from hepnn.exceptions import ConfigError
from hepnn.tune.space import Dimension, load_space

BASE = {"model": {"name": "dense", "units": [8]}, "training": {"epochs": 1}}


def test_parses_ranges_and_choices(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "model.units: [[16, 16], [64, 64]]\n"
        "training.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}\n"
        "training.batch_size: {int: [32, 128], step: 32}\n"
        "model.activation: [relu, tanh]\n"
    )
    space = load_space(path)
    assert space.keys == ["model.units", "training.optimizer.learning_rate", "training.batch_size", "model.activation"]
    units, lr, batch, act = space.dimensions
    assert units.kind == "categorical" and units.encoded and units.choices == ([16, 16], [64, 64])
    assert lr == Dimension("training.optimizer.learning_rate", "float", 1e-4, 1e-2, log=True)
    assert batch.grid() == [32, 64, 96, 128]
    assert not act.encoded and act.grid() == ["relu", "tanh"]
    assert units.decode(units.grid()[1]) == [64, 64]
    assert space.overrides({"model.units": [64, 64], "model.activation": "tanh"}) == [
        "model.units=[64, 64]", 'model.activation="tanh"']
    space.validate(BASE)  # every edge value loads


@pytest.mark.parametrize(("spec", "match"), [
    ({"model.units": {"int": [256, 16]}}, "model.units: low 256 is above high 16"),
    ({"model.units": {"int": [16, 256], "logg": True}}, "model.units: unknown key 'logg'; did you mean 'log'"),
    ({"training.optimizer.learning_rate": {"float": [0, 1], "log": True}}, "needs low > 0"),
    ({"model.units": {"int": [1.5, 3]}}, r"expected int: \[low, high\]"),
    ({"model.units": []}, "empty list of choices"),
    ({"model.units": 8}, "expected a list of choices"),
    ({"model.units": {"int": [1, 2], "float": [1, 2]}}, "exactly one of 'int' or 'float'"),
    ({"model..units": [1]}, "dotted config path"),
    ({}, "expected a mapping"),
])
def test_bad_space_is_rejected_naming_the_key(spec, match):
    with pytest.raises(ConfigError, match=match):
        load_space(spec)


@pytest.mark.parametrize(("key", "match"), [
    ("training.optimizer.learning_rat", "training.optimizer.learning_rat: unknown key 'learning_rat'; did you mean 'learning_rate'"),
    ("model.unitz", "model.unitz: unknown option 'unitz' of model 'dense'; did you mean 'units'"),
    ("trainin.epochs", "did you mean 'training'"),
])
def test_key_typo_fails_before_any_trial(key, match):
    space = load_space({key: {"float": [0.001, 0.01]}})
    with pytest.raises(ConfigError, match=f"search space key '{key}'") as info:
        space.validate(BASE)
    assert info.match(match)


def test_bad_value_type_fails_naming_the_key():
    space = load_space({"training.epochs": ["one", "two"]})
    with pytest.raises(ConfigError, match="search space key 'training.epochs' \\(value 'one'\\)"):
        space.validate(BASE)


def test_missing_space_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_space(tmp_path / "nope.yaml")
