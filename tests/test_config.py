"""The strict config loader: errors name the full path, defaults round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from hepnn.config import Config, apply_overrides, dump_config, load_config, save_config
from hepnn.config.loader import safe_load_yaml
from hepnn.exceptions import ConfigError

PER_EVENT = """
data:
  layout: per_event
  files:
    - {path: "ttbar_*.root", tree: Events}
  jets: Jet
  cuts: [{variable: Jet_pt, min: 20}, {variable: Jet_eta, abs_max: 2.5}]
  label: {branch: Jet_hadronFlavour, classes: {light: 0, c: 4, b: 5}}
  inputs:
    jet: {kind: flat, variables: [Jet_pt, Jet_eta]}
    tracks:
      kind: sequence
      collection: Track
      link: Track_jetIdx
      variables: [Track_pt, Track_eta, Track_phi, Track_d0, Track_z0, Track_d0sig, Track_z0sig]
      sort_by: {variable: Track_d0sig, descending: true, absolute: true}
      max_length: 15
  split: {train: 0.7, val: 0.1, test: 0.2, seed: 42}
model:
  name: rnn
  inputs: [tracks, jet]
training:
  epochs: 10
  batch_size: 256
  optimizer: {name: adam, learning_rate: 0.001}
  early_stopping: {patience: 3}
  seed: 1
  deterministic: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_issue_example_loads(tmp_path):
    config = load_config(write(tmp_path, PER_EVENT))
    tracks = config.data.inputs["tracks"]
    assert tracks.kind == "sequence"
    assert tracks.max_length == 15
    assert tracks.sort_by.absolute is True
    assert config.data.label.classes == {"light": 0, "c": 4, "b": 5}
    assert list(config.data.label.classes) == ["light", "c", "b"]  # order is class index
    assert config.data.cuts[1].abs_max == 2.5
    assert config.model.inputs == ("tracks", "jet")
    assert config.training.optimizer.learning_rate == pytest.approx(1e-3)
    assert config.data.directory == str(tmp_path.resolve())


def test_defaults_live_in_dataclasses():
    config = load_config(None)
    assert isinstance(config, Config)
    assert config.training.epochs == 10
    assert config.data.split.train == pytest.approx(0.7)
    assert config.evaluation.working_points == (0.3, 0.5, 0.6, 0.7, 0.77, 0.85)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training: {epoch: 3}", "training.epoch: unknown key 'epoch'; did you mean 'epochs'?"),
        ("traning: {epochs: 3}", "traning: unknown key 'traning'; did you mean 'training'?"),
        (
            "data: {inputs: {tracks: {kind: sequence, variables: [a], max_length: ten}}}",
            "data.inputs.tracks.max_length: expected a positive int, received 'ten'",
        ),
        (
            "data: {inputs: {tracks: {kind: sequence, variables: [a], max_length: 0}}}",
            "data.inputs.tracks.max_length: expected a positive int, received 0",
        ),
        (
            "data: {inputs: {tracks: {kind: sequense, variables: [a]}}}",
            "data.inputs.tracks.kind: expected one of 'flat', 'sequence', 'image', received 'sequense'; did you mean 'sequence'?",
        ),
        (
            "data: {inputs: {x: {kind: flat, variables: [a], transforms: {a: {clipp: [0, 1]}}}}}",
            "data.inputs.x.transforms.a.clipp: unknown key 'clipp'; did you mean 'clip'?",
        ),
        ("training: {optimizer: {name: adamm}}", "training.optimizer.name: expected one of 'sgd'"),
        ("training: {epochs: 2.5}", "training.epochs: expected a positive int, received 2.5"),
        ("training: {deterministic: 1}", "training.deterministic: expected true or false, received 1"),
        ("data: {split: {train: 0.5, val: 0.1, test: 0.2}}", "data.split: train + val + test must be 1"),
        ("data: {cuts: [{variable: Jet_pt}]}", "data.cuts[0]: a cut needs at least one of"),
        ("data: {files: [a.root]}", "data.label: give data.label"),
        ("data: {label: {branch: x, classes: {}}}", "data.label.classes: expected a non-empty value"),
        ("data: [1, 2]", "data: expected a mapping, received [1, 2]"),
        ("model: {inputs: [tracks]}\ndata: {inputs: {jet: {variables: [pt]}}}", "data.inputs.jet: missing key 'kind'"),
        (
            "model: {inputs: [trakcs]}\ndata: {inputs: {tracks: {kind: sequence, variables: [pt]}}}",
            "model.inputs[0]: unknown input 'trakcs'; did you mean 'tracks'?",
        ),
    ],
)
def test_errors_name_the_full_path(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert str(info.value).startswith(message), str(info.value)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError, match="training.epochs"):
        load_config({"training": {"epochs": -1}})


def test_yaml_scientific_floats_and_no_object_construction(tmp_path):
    config = load_config(write(tmp_path, "training: {optimizer: {learning_rate: 1e-4}}"))
    assert config.training.optimizer.learning_rate == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "training: !!python/object/apply:os.system ['echo hacked']"))


def test_bad_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "training: {epochs: 3\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_round_trip_dump_and_reload_is_equal(tmp_path):
    config = load_config(write(tmp_path, PER_EVENT))
    again = load_config(write(tmp_path, dump_config(config)))
    assert again == config
    saved = save_config(config, tmp_path / "run" / "config.yaml")
    assert load_config(saved) == config
    defaults = load_config(None)
    assert load_config(safe_load_yaml("x", text=dump_config(defaults))) == defaults


def test_overrides_are_applied_before_validation(tmp_path):
    path = write(tmp_path, PER_EVENT)
    config = load_config(path, ["training.epochs=3", "data.inputs.tracks.max_length=7", "model.units=32"])
    assert config.training.epochs == 3
    assert config.data.inputs["tracks"].max_length == 7
    assert config.model.params == {"units": 32}
    with pytest.raises(ConfigError, match="training.epochs: expected a positive int, received 'three'"):
        load_config(path, ["training.epochs=three"])
    with pytest.raises(ConfigError, match="expected a dotted key, .=. and a value"):
        load_config(path, ["training.epochs"])
    with pytest.raises(ConfigError, match="training.epochs is 10, not a mapping"):
        apply_overrides({"training": {"epochs": 10}}, ["training.epochs.x=1"])


def test_model_options_pass_through_and_dump_flat(tmp_path):
    config = load_config({"model": {"name": "rnn", "cell": "gru", "units": 16}})
    assert config.model.params == {"cell": "gru", "units": 16}
    text = dump_config(config)
    assert "params" not in text
    assert load_config(safe_load_yaml("dump", text=text)) == config


def test_default_yaml_shipped_with_the_package_is_current():
    from importlib.resources import files

    shipped = files("hepnn.config").joinpath("default.yaml").read_text()
    assert load_config(safe_load_yaml("default.yaml", text=shipped)) == load_config(None)
    body = "".join(line for line in shipped.splitlines(keepends=True) if not line.startswith("#"))
    assert body == dump_config(load_config(None)), "regenerate hepnn/config/default.yaml"
