"""Input a new user gets wrong fails early and clearly (found by a new-user pass over the CLI)."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.config import load_config
from hepnn.config.schema import step_size_problem
from hepnn.exceptions import ConfigError, InputDataError
from hepnn.training.trainer import Trainer, sample_weights

SEQ = {"kind": "sequence", "variables": ["a", "b"]}


def toy_data(n=400, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n) if labels is None else np.full(n, labels)
    return {
        "jet": (rng.normal(size=(n, 2)) + y[:, None]).astype("float32"),
        "label": y.astype("int32"),
        "weight": np.ones(n, "float32"),
        "split": rng.choice([0, 1, 2], n, p=[0.7, 0.15, 0.15]).astype("int8"),
    }


def toy_config(**sections):
    base = {
        "data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}}},
        "model": {"name": "dense", "units": [4]},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return base


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"data": {"inputs": {"jet": {"kind": "flat", "variables": ["jet_mass"], "transforms": {"jet_mas": {"log": True}}}}}},
         "data.inputs.jet.transforms.jet_mas: 'jet_mas' is not a variable of this input; did you mean 'jet_mass'?"),
        ({"data": {"inputs": {"c": {**SEQ, "transforms": {"c": {"log": True}}}}}},
         "data.inputs.c.transforms.c: 'c' is not a variable of this input"),
        ({"data": {"step_size": "100 MBB"}}, "data.step_size: expected a positive number of entries or a size like '100 MB'"),
        ({"data": {"step_size": "abc"}}, "data.step_size: expected a positive number"),
        ({"data": {"step_size": 0}}, "data.step_size: expected a positive number"),
        ({"training": {"folds": 1}}, "training.folds: expected an int of 2 or more, received 1"),
        ({"model": {"inputs": []}}, "model.inputs: empty: list the data inputs that feed the model (data.inputs defines jet)"),
        ({"model": {"name": "cnn"}}, "model.inputs: model 'cnn' needs at least one image input; its inputs are jet (flat)"),
        ({"model": {"name": "deepsets"}}, "model.inputs: model 'deepsets' needs at least one sequence input"),
        ({"explain": {"options": {"permutation": {"n_repeats": 0}}}},
         "explain.options.permutation.n_repeats: expected a positive int, received 0"),
        ({"explain": {"options": {"integrated_gradients": {"baseline": "ones"}}}},
         "explain.options.integrated_gradients.baseline: expected 'zero' or 'mean', received 'ones'"),
        ({"explain": {"options": {"occlusion": {"stride": "2"}}}}, "explain.options.occlusion.stride: expected a positive int"),
    ],
)
def test_config_check_catches_what_a_later_command_would_reject(overlay, message):
    config = toy_config()
    for section, value in overlay.items():  # a model section replaces the toy dense network's
        config[section] = {**config[section], **value} if section in ("data", "training") else value
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value).startswith(message), str(info.value)


def test_valid_settings_still_load():
    load_config(toy_config(data={"step_size": "1.5 MiB"}, training={"folds": 2},
                           explain={"options": {"surrogate": {"max_depth": None}}}))
    load_config(toy_config(data={"inputs": {"jet": {"kind": "flat", "variables": ["a"], "transforms": {"a": {"log": True}}}}}))
    assert step_size_problem(5000) is None and step_size_problem("100 MB") is None
    assert step_size_problem(True) and step_size_problem(-1) and step_size_problem("0 MB")


def test_a_tagger_on_one_class_is_refused_before_training(tmp_path):
    with pytest.raises(InputDataError, match="the training split holds jets of 1 class"):
        Trainer(toy_config(), log=lambda _: None).fit(tmp_path / "run", data=toy_data(labels=0))
    assert not (tmp_path / "run" / "model.keras").exists()
    files = {"files": [{"path": "top.root", "label": 0}, {"path": "qcd.root", "label": 0}]}
    with pytest.raises(ConfigError, match="every file group has label 0.*label the background files 0"):
        Trainer(toy_config(data=files), log=lambda _: None).fit(tmp_path / "run2", data=toy_data(labels=0))
    branch = {"label": {"branch": "flavour", "classes": {"b": 5}}}
    with pytest.raises(ConfigError, match=r"data.label.classes: one class \(b: 5\)"):
        Trainer(toy_config(data=branch), log=lambda _: None).fit(tmp_path / "run3", data=toy_data(labels=0))


def with_sequence(data, n_slots=3, seed=1):
    rng = np.random.default_rng(seed)
    n = len(data["label"])
    mask = np.arange(n_slots)[None, :] < rng.integers(1, n_slots + 1, n)[:, None]
    return {**data, "seq": (rng.normal(size=(n, n_slots, 2)) * mask[..., None]).astype("float32"), "seq_mask": mask}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {"label": np.where(np.arange(len(d["label"])) < 5, -1, d["label"]).astype("int32")},
         "5 of 400 jets have label -1, not a class index 0-1 of background, signal"),
        (lambda d: {"label": d["label"] + np.float32(0.5)}, "'label' array holds non-integer values"),
        (lambda d: {"jet": d["jet"][:100]}, "different numbers of jets: {'jet': 100, 'seq': 400"),
        (lambda d: {"split": np.where(np.arange(len(d["split"])) < 3, 7, d["split"]).astype("int8")},
         "3 jets have split code(s) 7, expected 0 (train), 1 (val), 2 (test)"),
        (lambda d: {"seq_mask": d["seq_mask"][:, :2]}, "'seq_mask' array has shape (400, 2), but 'seq' has (400, 3, 2)"),
        (lambda d: {"seq": np.where(np.arange(len(d["seq"]))[:, None, None] == 7, np.nan, d["seq"])},
         "'seq' array has 6 NaN or infinite values (the first in jet 7)"),
    ],
)
def test_hand_built_training_arrays_are_checked_before_training(tmp_path, change, message):
    """Trainer.fit(data=...) with arrays built by hand: refused before training, never trained on."""
    config = {**toy_config(data={"inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}, "seq": SEQ}}),
              "model": {"name": "deepsets", "phi_units": [4], "dense_units": [4]}}
    data = with_sequence(toy_data())
    with pytest.raises(InputDataError) as err:
        Trainer(config, log=lambda _: None).fit(tmp_path / "run", data={**data, **change(data)})
    assert message in str(err.value)
    assert not (tmp_path / "run" / "history.csv").exists()


def test_evaluation_classes_are_checked_before_training(tmp_path):
    files = {"files": [{"path": "qcd.root", "label": 0}, {"path": "top.root", "label": 1}]}
    with pytest.raises(ConfigError, match="evaluation.signal: unknown class 'tpo'; did you mean 'top'"):
        Trainer(toy_config(data=files, evaluation={"signal": "tpo"}), log=lambda _: None).fit(
            tmp_path / "run", data=toy_data())
    assert not (tmp_path / "run" / "history.csv").exists()


def test_weights_the_network_cannot_learn_from_are_an_error():
    config = load_config(toy_config(data={"weight": "jet_w"}))
    data = toy_data()
    assert sample_weights(config, data, ["background", "signal"]).sum() == pytest.approx(len(data["label"]))
    data["weight"] = np.where(data["label"] == 0, 0.0, 1.0).astype("float32")
    with pytest.raises(InputDataError, match=r"data.weight \('jet_w'\): the weights of the \d+ 'background' jets sum to 0"):
        sample_weights(config, data, ["background", "signal"])
    data["weight"] = np.ones_like(data["weight"])
    data["weight"][3] = np.nan
    with pytest.raises(InputDataError, match="1 of 400 jets have a NaN or infinite weight"):
        sample_weights(config, data, ["background", "signal"])
    data["weight"][3] = -0.5  # negative weights (NLO samples) are fine while each class sums above 0
    sample_weights(config, data, ["background", "signal"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "RUN", "--method", "permutation", "--n-jets", "-5"], "argument --n-jets: expected a positive int, received '-5'"),
        (["explain", "RUN", "--method", "permutation", "--n-jets", "0"], "argument --n-jets: expected a positive int"),
        (["predict", "RUN", "a.root", "--out", "o", "--step-size", "0"], "argument --step-size: expected a positive number"),
        (["predict", "RUN", "a.root", "--out", "o", "--step-size", "100 MBB"], "argument --step-size: expected a positive"),
        (["predict", "RUN", "a.root", "--out", "o", "--workers", "0"], "argument --workers: expected a positive int"),
    ],
)
def test_cli_counts_and_sizes_are_checked_by_the_parser(capsys, argv, message):
    from hepnn.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_explain_refuses_settings_it_would_ignore(capsys):
    from hepnn.cli import main

    code = main(["explain", "RUN", "--method", "permutation", "--set", "model.name=cnn"])
    err = capsys.readouterr().err
    assert code == 2 and "--set model.name=cnn: `hepnn explain` takes explain.* settings only" in err


def test_evaluate_on_other_data_checks_classes_and_inputs_and_keeps_the_runs_metrics(tmp_path, capsys):
    import json

    from hepnn.cli import main
    from test_bad_inputs_outputs import YAML
    from test_io_fixtures import make_per_jet

    yaml_text = YAML  # the dense tagger on jet features of tests/test_bad_inputs_outputs.py
    config = make_per_jet(tmp_path, n=60, yaml_text=yaml_text)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    assert main(["evaluate", str(run)]) == 0
    own = (run / "metrics.json").read_bytes()
    capsys.readouterr()

    def other(text):
        path = tmp_path / "other.yaml"
        path.write_text(text)
        return main(["evaluate", str(run), "--data", str(path)]), capsys.readouterr().err

    swapped = yaml_text.replace("label: 1}", "label: X}").replace("label: 0}", "label: 1}").replace("label: X}", "label: 0}")
    code, err = other(swapped)
    assert code == 2 and "its classes are top, qcd, the run's qcd, top (in this order)" in err
    code, err = other(yaml_text.replace("jet_tau21, jet_tau32", "jet_tau32, jet_tau21"))
    assert code == 2 and "data.inputs.highlevel differs from the run's (variables:" in err
    code, err = other(yaml_text.replace("highlevel:", "jet:"))
    assert code == 2 and "data.inputs has no 'highlevel', an input of the model (it defines jet)" in err
    code, err = other(yaml_text)  # the same data under another file name: evaluated, written beside
    assert code == 0, err
    assert (run / "metrics.json").read_bytes() == own
    assert json.loads((run / "metrics_other.json").read_text())["auc"] == json.loads(own)["auc"]


def test_config_paths_that_are_not_config_files_say_what_they_are(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "data.root").write_bytes(b"root\x00\xff\xfe binary")
    (tmp_path / "c.yaml").write_text("training: {epochs: 1}\n")
    cases = {
        tmp_path / "folder": "a folder, not a config file; give its config file (a .yaml)",
        tmp_path / "data.root": "not a text file; a config is a YAML file",
        tmp_path / "c.yaml" / "config.yaml": "c.yaml is a file, not a folder",
        tmp_path / "nothere" / "config.yaml": f"config file not found (the folder {tmp_path / 'nothere'} does not exist)",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value).startswith(str(path)) and message in str(info.value), str(info.value)


def test_set_errors_name_the_override():
    with pytest.raises(ConfigError, match=r"--set training.epochs: not valid YAML"):
        load_config(None, ["training.epochs=[1"])
    with pytest.raises(ConfigError, match=r"--set 'noequals': expected a dotted key, '=' and a value"):
        load_config(None, ["noequals"])


def test_damaged_json_files_of_a_run_are_named(tmp_path):
    from hepnn.preprocessing import Preprocessor
    from hepnn.training.rundir import read_json

    (tmp_path / "metrics.json").write_text('{"auc": 0.9, ')
    with pytest.raises(InputDataError, match=r"metrics.json: damaged JSON file"):
        read_json(tmp_path / "metrics.json")
    (tmp_path / "preprocessing.json").write_text('{"x": 1}')
    with pytest.raises(InputDataError, match=r"preprocessing.json: damaged or not a hepnn preprocessing file"):
        Preprocessor.load(tmp_path / "preprocessing.json")


def test_run_force_never_claims_a_variants_run_folder(tmp_path, capsys):
    from hepnn.cli import main
    from test_io_fixtures import make_per_jet

    config = make_per_jet(tmp_path, n=20, yaml_text="""
data:
  files: [{path: top.root, tree: jets, label: 1}, {path: qcd.root, tree: jets, label: 0}]
  inputs: {highlevel: {kind: flat, variables: [jet_mass]}}
training: {epochs: 1, verbose: 0}
""")
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "notes.txt").write_text("mine\n")
    assert main(["run", str(config), "--out", str(out), "--force", "-q"]) == 2
    err = capsys.readouterr().err
    assert "the run folder of variant 'model'" in err and "(notes.txt)" in err and "--force claims the output folder only" in err
    assert (out / "model" / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in (out / "model").iterdir()) == ["notes.txt"]


def test_an_interrupted_kfold_run_keeps_its_config(tmp_path):
    from hepnn.exceptions import OutputDirError

    data = toy_data(n=300)
    data["fold_key"] = np.arange(300, dtype=np.uint64)
    config = toy_config(training={"folds": 2})
    Trainer(config, log=lambda _: None).fit(tmp_path / "run", data=data)
    saved = (tmp_path / "run" / "config.yaml").read_text()
    (tmp_path / "run" / "folds.json").unlink()  # killed while the last fold trained
    (tmp_path / "run" / "folds" / "1" / "model.keras").unlink()
    other = toy_config(training={"folds": 2, "batch_size": 32})
    with pytest.raises(OutputDirError, match="interrupted run trained with a different config.*training.batch_size"):
        Trainer(other, log=lambda _: None).fit(tmp_path / "run", data=data)
    assert (tmp_path / "run" / "config.yaml").read_text() == saved
    Trainer(config, log=lambda _: None).fit(tmp_path / "run", data=data)  # its own config resumes
    assert (tmp_path / "run" / "folds.json").is_file()


def test_set_finds_keys_with_dots_and_suggests_for_a_misspelt_entry():
    config = {"generate": {"samples": {"top.root": {"sample": "top", "n_jets": 10}}},
              "data": {"inputs": {"particles": {**SEQ}}}}
    loaded = load_config(config, ["generate.samples.top.root.n_jets=5"])
    assert loaded.generate.samples["top.root"].n_jets == 5
    with pytest.raises(ConfigError, match="data.inputs.partcles: missing key 'kind'.*did you mean 'particles'"):
        load_config(config, ["data.inputs.partcles.max_length=30"])


def test_a_missing_data_directory_is_named(tmp_path):
    from hepnn.io.sources import resolve_files

    config = load_config({"data": {"directory": str(tmp_path / "nothere"), "files": [{"path": "top.root", "label": 0}]}})
    with pytest.raises(InputDataError, match=r"'top.root' is relative to data.directory, .*nothere, which does not exist"):
        resolve_files(config.data)


def test_the_cli_shows_hepnns_warnings_as_one_line(capsys):
    import warnings

    from hepnn.cli import _plain_warnings
    from hepnn.io.sources import BadFileWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with _plain_warnings(debug=False):
            warnings.warn("skipping bad file: x.root", BadFileWarning, stacklevel=1)
            warnings.warn("someone else's", DeprecationWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "hepnn: warning: skipping bad file: x.root\n" in err
    assert "BadFileWarning" not in err and "hepnn: warning: someone else's" not in err  # others: Python's way


def test_analysis_code_mistakes_in_the_python_api_are_named(tmp_path):

    import awkward as ak

    from hepnn.io.layouts import flatten_jagged
    from hepnn.models.inference import check_batch_size
    from hepnn.training.rundir import RunDirectory, missing_preprocessing

    # events selected with ak.mask (None events) crashed the process in np.repeat
    events = ak.Array({"Jet_pt": [[1.0, 2.0], [], [3.0]]})
    masked = ak.mask(events, ak.Array([True, False, True]))
    with pytest.raises(InputDataError, match=r"branch 'Jet_pt' \(jets\) holds None \(missing\) entries"):
        flatten_jagged(masked, ["Jet_pt"], "events", "jets", 0)
    with pytest.raises(InputDataError, match="holds None"):
        flatten_jagged({"Jet_pt": ak.mask(events.Jet_pt, events.Jet_pt > 1.5)}, ["Jet_pt"], "events", "jets", 0)
    counts, flat = flatten_jagged(events, ["Jet_pt"], "events", "jets", 0)
    assert counts.tolist() == [2, 0, 1] and flat["Jet_pt"].tolist() == [1.0, 2.0, 3.0]

    for bad in (0, -1, 2.5, "64", True):
        with pytest.raises(ConfigError, match="batch_size: expected a positive int"):
            check_batch_size(bad)
    assert check_batch_size(np.int64(64)) == 64

    # a run trained with a preprocessing file that is gone would be scored on raw inputs
    run = RunDirectory(tmp_path)
    assert "preprocessing.json: missing, but the run was trained with it" in missing_preprocessing(
        run, "preprocessing.json")
    (tmp_path / "preprocessing.json").write_text("{}")
    assert missing_preprocessing(run, "preprocessing.json") is None
    (tmp_path / "preprocessing.json").unlink()
    assert missing_preprocessing(run, None) is None


def test_link_indices_must_be_whole_and_the_jet_axis_jagged():
    from hepnn.io.layouts import link_to_jets
    from hepnn.io.represent import Plan, jets_per_entry

    event, n_jets = np.array([0, 0, 1]), np.array([2, 1])
    assert link_to_jets(np.array([1.0, -1.0, 0.0], np.float32), event, n_jets, "Muon_jetIdx", "f", 0).tolist() == \
        link_to_jets(np.array([1, -1, 0]), event, n_jets, "Muon_jetIdx", "f", 0).tolist()
    for bad in (0.9, np.nan):
        with pytest.raises(InputDataError, match="link branch 'Muon_jetIdx' must hold whole jet indices"):
            link_to_jets(np.array([1.0, bad, 0.0], np.float32), event, n_jets, "Muon_jetIdx", "f", 10)
    # -1 written into an unsigned branch is its largest value: "no jet" too, for every width
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        unsigned = np.array([1, np.iinfo(dtype).max, 0], dtype=dtype)
        assert link_to_jets(unsigned, event, n_jets, "Muon_jetIdx", "f", 0).tolist() == [1, -1, 2]
    with pytest.raises(InputDataError, match="index 7 with 1 jets"):
        link_to_jets(np.array([1, 0, 7], np.uint32), event, n_jets, "Muon_jetIdx", "f", 0)
    plan = Plan.__new__(Plan)
    plan.layout, plan.jet_branches, plan.axis = "per_event", {"Jet_pt": None}, {}
    with pytest.raises(InputDataError, match="'Jet_pt' \\(the jet collection\\) should hold one list per entry"):
        jets_per_entry(plan, {"Jet_pt": np.ones(3)})
