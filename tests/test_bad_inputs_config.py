"""Bad inputs, config and labels: each case exits 2 with one line that names the culprit,
and no file outside the output folder changes.

Categories (issue 12): non-finite numbers, duplicate YAML keys, alias bombs and huge values,
label problems, explain names and options. Every case goes through the command line
(``hepnn config check``, ``hepnn convert`` or ``hepnn train``, in process).
"""

from __future__ import annotations

import hashlib
import logging
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

import hepnn
from hepnn.cli import main
from hepnn.exceptions import InputDataError
from test_io_fixtures import PER_EVENT_YAML, make_per_event, per_jet_data, write_tree

FLAT_YAML = """
data:
  files:
    - {path: top.root, tree: jets, label: 1}
    - {path: qcd.root, tree: jets, label: 0}
  inputs:
    highlevel: {kind: flat, variables: [jet_mass, jet_tau21]}
model: {name: dense, units: [4]}
training: {epochs: 1, batch_size: 16, verbose: 0}
"""


def _tree_digest(root: Path, skip: Path | None = None) -> dict[str, str]:
    """sha256 of every file under ``root`` (not under ``skip``)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (skip is not None and skip in path.parents):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _per_jet_files(tmp_path: Path, n: int = 40) -> None:
    write_tree(tmp_path / "top.root", "jets", per_jet_data(n, seed=1))
    write_tree(tmp_path / "qcd.root", "jets", per_jet_data(n, seed=2))


def _run(tmp_path: Path, capsys, argv: list[str]) -> tuple[int, str]:
    """Run the CLI; check that nothing outside tmp_path/out changed; return (exit code, stderr)."""
    before = _tree_digest(tmp_path, skip=tmp_path / "out")
    code = main(argv)
    err = capsys.readouterr().err
    assert _tree_digest(tmp_path, skip=tmp_path / "out") == before
    return code, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("hepnn: error: ")
    return lines[0]


# --- config check: the whole table ---------------------------------------------------------

BILLION_LAUGHS = "".join(
    [
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        *(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi")
        ),
    ]
)

CONFIG_CASES = {
    # non-finite numbers, where a positive number or any number is required
    "nan_extent": (
        "data: {inputs: {jet_image: {kind: image, extent: .nan}}}",
        [],
        ["data.inputs.jet_image.extent: .nan is not a finite number"],
    ),
    "inf_learning_rate": (
        "training: {optimizer: {learning_rate: .inf}}",
        [],
        ["training.optimizer.learning_rate: .inf is not a finite number"],
    ),
    "minus_inf_nan_value": ("data: {nan_value: -.inf}", [], ["data.nan_value: -.inf is not a finite number"]),
    "nan_model_option": ("model: {name: dense, dropout: .nan}", [], ["model.dropout: .nan is not a finite number"]),
    "nan_by_override": ("{}", ["--set", "training.early_stopping.min_delta=.nan"],
                        ["training.early_stopping.min_delta: .nan"]),
    "zero_positive": ("training: {optimizer: {learning_rate: 0}}", [],
                      ["training.optimizer.learning_rate: expected a positive number, received 0"]),
    # duplicate keys: key, line and file
    "duplicate_key_block": (
        "training:\n  epochs: 3\n  batch_size: 8\n  epochs: 5\n",
        [],
        ["config.yaml: line 4: duplicate key 'epochs' (first at line 2)"],
    ),
    "duplicate_key_flow": (
        "data:\n  inputs:\n    jet: {kind: flat, variables: [a], kind: sequence}\n",
        [],
        ["config.yaml: line 3: duplicate key 'kind' (first at line 3)"],
    ),
    "duplicate_section": (
        "model: {name: dense}\ntraining: {epochs: 2}\nmodel: {name: cnn}\n",
        [],
        ["config.yaml: line 3: duplicate key 'model' (first at line 1)"],
    ),
    # alias bombs and values too long to echo
    "billion_laughs": (BILLION_LAUGHS, [], ["config.yaml: line", "nested aliases"]),
    "billion_laughs_in_a_key": (
        BILLION_LAUGHS.replace("i: &i", "training:\n  epochs: &i"), [], ["config.yaml: line", "nested aliases"]
    ),
    "recursive_alias": ("model: &m {name: dense, units: *m}\n", [], ["config.yaml: line 1: recursive alias"]),
    "huge_value": ("training: {epochs: " + "x" * 200_000 + "}\n", [],
                   ["training.epochs: expected a positive int, received 'xxx", "(200002 characters)"]),
    # labels the config can tell wrong
    "negative_label": (
        "data: {files: [{path: top.root, label: 1}, {path: qcd.root, label: -1}]}",
        [],
        ["data.files[1].label: expected a non-negative int, received -1"],
    ),
    "labels_0_2": (
        "data: {files: [{path: top.root, label: 2}, {path: qcd.root, label: 0}]}",
        [],
        ["data.files:", "received [0, 2]", "class(es) [1] would have no jets", "renumber"],
    ),
    "same_file_two_labels": (
        "data: {files: [{path: top.root, label: 1}, {path: qcd.root, label: 0}, {path: top.root, label: 0}]}",
        [],
        ["data.files[2].path: 'top.root' is listed twice", "data.files[0] with label 1"],
    ),
    # explain: names and options
    "unknown_explainer": (
        "explain: {methods: [permutaton]}", [], ["explain.methods[0]: unknown explainer 'permutaton'",
                                                  "did you mean 'permutation'"]
    ),
    "unknown_explainer_by_override": (
        "{}", ["--set", "explain.methods=[shap, gradcamm]"], ["explain.methods[1]: unknown explainer 'gradcamm'",
                                                               "'gradcam'"]
    ),
    "unknown_explainer_in_options": (
        "explain: {options: {shapp: {n_samples: 5}}}", [], ["explain.options.shapp: unknown explainer 'shapp'"]
    ),
    "unknown_explainer_option": (
        "explain: {options: {permutation: {n_repeat: 3}}}",
        [],
        ["explain.options.permutation.n_repeat: unknown option", "did you mean 'n_repeats'"],
    ),
    # early stopping: a quantity training logs, a known direction
    "unknown_monitor_by_override": (
        "{}", ["--set", "training.early_stopping.monitor=val_auc_typo"],
        ["training.early_stopping.monitor: unknown quantity 'val_auc_typo'", "did you mean 'val_auc'",
         "valid names: loss", "val_<name>"],
    ),
    "unknown_monitor_mode": (
        "training: {early_stopping: {monitor: val_auc, mode: maximum}}", [],
        ["training.early_stopping.mode:", "'maximum'", "did you mean 'max'"],
    ),
    "unknown_shap_option": (
        "explain: {methods: [shap], options: {shap: {backgroundsize: 3}}}",
        [],
        ["explain.options.shap.backgroundsize: unknown option", "'background_size'"],
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_check_rejects(tmp_path, capsys, case):
    text, extra, expected = CONFIG_CASES[case]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    start = time.process_time()  # CPU time: a busy or stalled machine does not count
    code, err = _run(tmp_path, capsys, ["config", "check", str(config), *extra])
    cpu_seconds = time.process_time() - start
    assert code == 2, err
    line = _one_error_line(err)
    for part in expected:
        assert part in line, (part, line)
    assert len(line) < 700, len(line)  # never echo a whole value (a bomb once gave a 600 MB message)
    # no expansion of an alias bomb: expanding BILLION_LAUGHS (9**9 nodes) takes minutes of CPU
    assert cpu_seconds < 30


def test_merge_keys_may_override_and_small_aliases_still_load(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent("""
        training: &base {epochs: 3, batch_size: 8}
        variants:
          long:
            training:
              <<: *base
              epochs: 5
          same: {training: *base}
        """))
    loaded = hepnn.load_config(config)
    assert loaded.training.epochs == 3
    assert loaded.variants["long"]["training"] == {"epochs": 5, "batch_size": 8}
    assert loaded.variants["same"]["training"] == {"epochs": 3, "batch_size": 8}


def test_finite_numbers_still_accepted():
    config = hepnn.load_config({"training": {"optimizer": {"learning_rate": 3e-4}},
                                "data": {"nan_value": -1.0e30}})
    assert config.training.optimizer.learning_rate == pytest.approx(3e-4)
    assert config.data.nan_value == -1.0e30


def test_training_with_inf_learning_rate_is_rejected_at_load(tmp_path, capsys):
    _per_jet_files(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(FLAT_YAML).replace("training: {", "training: {optimizer: {learning_rate: .inf}, "))
    code, err = _run(tmp_path, capsys, ["train", str(config), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "training.optimizer.learning_rate: .inf is not a finite number" in _one_error_line(err)
    assert not (tmp_path / "out" / "model.keras").exists()
    assert not (tmp_path / "out" / "config.yaml").exists()


# --- labels the data tell wrong (hepnn convert reads the files) --------------------------------

DATA_CASES = {
    "group_empty_after_cuts": (
        FLAT_YAML.replace("  inputs:", "  cuts: [{variable: jet_mass, min: 0}]\n  inputs:"),
        lambda tmp: write_tree(tmp / "qcd.root", "jets", {**per_jet_data(40, seed=2),
                                                           "jet_mass": np.full(40, -1.0)}),
        ["data.files[1] ('qcd.root': qcd.root): no jets left after data.cuts", "remove the group"],
    ),
    "same_file_through_two_globs": (
        FLAT_YAML.replace("{path: qcd.root,", "{path: 'q*.root',").replace(
            "    - {path: top.root, tree: jets, label: 1}",
            "    - {path: top.root, tree: jets, label: 1}\n    - {path: '*cd.root', tree: jets, label: 1}"),
        None,
        ["qcd.root (tree 'jets'): matched by data.files[1] ('*cd.root', label 1) and by data.files[2] "
         "('q*.root', label 0)"],
    ),
    "class_value_absent": (
        PER_EVENT_YAML.replace("classes: {light: 0, c: 4, b: 5}", "classes: {light: 0, b: 5, tau: 15}"),
        "per_event",
        ["data.label.classes.tau: no jets with Jet_hadronFlavour == 15", "values dropped as not in classes: {4:"],
    ),
    "class_value_absent_after_cuts": (
        PER_EVENT_YAML.replace("{variable: Jet_pt, min: 20}", "{variable: Jet_hadronFlavour, max: 5}"),
        "per_event",
        ["data.label.classes.b: no jets with Jet_hadronFlavour == 5 after data.cuts"],
    ),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_convert_rejects_label_problems(tmp_path, capsys, case):
    text, make, expected = DATA_CASES[case]
    if make == "per_event":
        config = make_per_event(tmp_path, n_files=1, yaml_text=text)
    else:
        _per_jet_files(tmp_path)
        if make is not None:
            make(tmp_path)
        config = tmp_path / "config.yaml"
        config.write_text(textwrap.dedent(text))
    code, err = _run(tmp_path, capsys, ["convert", str(config), "--out", str(tmp_path / "out")])
    assert code == 2, err
    line = _one_error_line(err)
    for part in expected:
        assert part in line, (part, line)
    assert not (tmp_path / "out" / "train.npz").exists()


def test_dropped_label_values_are_counted_and_logged(tmp_path, caplog):
    text = PER_EVENT_YAML.replace("classes: {light: 0, c: 4, b: 5}", "classes: {light: 0, b: 5}")
    config = make_per_event(tmp_path, n_files=2, yaml_text=text)
    # the count, independently: jets passing the cuts with flavour 4
    expected = 0
    for path in sorted(tmp_path.glob("ttbar_*.root")):
        jets = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_eta", "Jet_hadronFlavour"], library="np")
        pt, eta, flav = (np.concatenate(jets[k]) for k in ("Jet_pt", "Jet_eta", "Jet_hadronFlavour"))
        expected += int(np.sum((pt >= 20) & (np.abs(eta) < 2.5) & (flav == 4)))
    assert expected > 0
    with caplog.at_level(logging.WARNING, logger="hepnn.io"):
        data = hepnn.io.load(config)
    assert data.summary["dropped_labels"] == {4: expected}
    assert set(np.unique(data["label"]).tolist()) == {0, 1}
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1
    assert f"dropped {expected} jets whose Jet_hadronFlavour is not in data.label.classes" in lines[0]
    assert f"4: {expected}" in lines[0]
    # a streaming run's pass over the training split (preprocessing fit) logs that split's count
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hepnn.io"):
        hepnn.io.fit_preprocessing(hepnn.load_config(config))
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1 and " training jets whose Jet_hadronFlavour" in lines[0]
    n_train = int(lines[0].split("dropped ")[1].split(" ")[0])
    assert 0 < n_train < expected


def test_nothing_dropped_means_an_empty_count_and_no_log(tmp_path, caplog):
    config = make_per_event(tmp_path, n_files=1)
    with caplog.at_level(logging.WARNING, logger="hepnn.io"):
        data = hepnn.io.load(config)
    assert data.summary["dropped_labels"] == {}
    assert not [r for r in caplog.records if "dropped" in r.getMessage()]


def test_negative_labels_from_an_analysis_are_an_error(tmp_path):
    _per_jet_files(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(FLAT_YAML))

    class Relabel:
        def labels(self, jets):
            return np.where(jets["jet_mass"] > 100, 1, -1)

    with pytest.raises(InputDataError, match=r"top\.root: Relabel\.labels: class indices must be 0, 1, \.\.\.; "
                                             r"received -1 for \d+ jet\(s\)"):
        hepnn.io.load(config, Relabel())


def test_training_records_dropped_labels_in_provenance(tmp_path):
    import json

    from hepnn.training.trainer import Trainer

    text = PER_EVENT_YAML.replace("classes: {light: 0, c: 4, b: 5}", "classes: {light: 0, b: 5}")
    text += "model: {name: dense, inputs: [jet], units: [4]}\ntraining: {epochs: 1, batch_size: 32, verbose: 0}\n"
    config = make_per_event(tmp_path, n_files=2, yaml_text=text)
    data = hepnn.io.load(config)
    Trainer(hepnn.load_config(config), log=lambda *_: None).fit(tmp_path / "run", data=data)
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["dropped_labels"] == {"4": data.summary["dropped_labels"][4]}
    assert provenance["dropped_labels"]["4"] > 0


# --- the other YAML hepnn reads: search spaces, generator options --------------------------------


def test_search_space_with_a_duplicate_key_names_file_and_line(tmp_path):
    from hepnn.exceptions import ConfigError
    from hepnn.tune.space import load_space

    space = tmp_path / "space.yaml"
    space.write_text("training.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2]}\n"
                     "training.batch_size: {choice: [32, 64]}\n"
                     "training.optimizer.learning_rate: {float: [1.0e-3, 1.0e-1]}\n")
    with pytest.raises(ConfigError, match=r"space\.yaml: line 3: duplicate key "
                                          r"'training\.optimizer\.learning_rate' \(first at line 1\)"):
        load_space(space)


def test_generate_option_alias_bomb_is_refused(tmp_path, capsys):
    bomb = "[" + ", ".join(["x"] * 9) + "]"
    value = f"{{a: &a {bomb}, " + ", ".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefg", "bcdefgh")) + "}"
    code, err = _run(tmp_path, capsys, ["generate", "qcd", "--n-jets", "3", "--out", str(tmp_path / "out" / "q.root"),
                                        "--option", f"pt_min={value}"])
    assert code == 2
    line = _one_error_line(err)
    assert "--option pt_min" in line and "nested aliases" in line
    assert len(line) < 700


@pytest.mark.parametrize("hook, returned, message", [
    ("select", lambda jets: np.ones(len(jets["jet_mass"]), dtype=np.int8), r"its select\(jets\) hook must return a boolean mask"),
    ("labels", lambda jets: np.zeros(3, dtype=int), r"its labels\(jets\) hook must return \(\d+,\) ints"),
    ("labels", lambda jets: jets["jet_mass"] / 1000.0, r"class indices must be whole numbers.*its labels\(jets\) hook"),
])
def test_a_hook_returning_the_wrong_thing_is_a_plugin_error_naming_the_hook(tmp_path, hook, returned, message):
    """select/labels hooks of the wrong shape or type were InputDataErrors naming only the class; the
    docs promise a PluginError naming plugin and hook (still an InputDataError, as before)."""
    from hepnn.exceptions import PluginError

    _per_jet_files(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(FLAT_YAML))
    analysis = type("Tagging", (), {hook: staticmethod(returned)})()
    with pytest.raises(PluginError, match=r"top\.root: .*" + message) as err:
        hepnn.io.load(config, analysis)
    assert isinstance(err.value, InputDataError)
    assert "analysis plugin Tagging" in str(err.value)


def test_a_hook_reading_a_branch_the_config_does_not_read_says_to_list_it(tmp_path):
    from hepnn.exceptions import PluginError

    _per_jet_files(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(FLAT_YAML))

    class Tagging:
        def select(self, jets):
            return jets["no_such_branch"] > 0

    with pytest.raises(PluginError, match=r"its select\(jets\) hook raised KeyError.*list a branch the hook needs in "
                                          r"data\.spectators"):
        hepnn.io.load(config, Tagging())
