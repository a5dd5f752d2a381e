"""Analysis hooks and derived variables that fail: the error names the plugin and the hook.

A plugin's ``select``/``labels`` hook or ``plots`` hook that raises, and a registered derived
variable that raises or returns the wrong shape or dtype (a scalar would be broadcast to every
element), give a :class:`~hepnn.exceptions.PluginError` saying which, not a bare traceback.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from hepnn import Analysis
from hepnn.config import load_config
from hepnn.exceptions import InputDataError, PluginError
from hepnn.io import load
from hepnn.io.derived import DERIVED, register_derived
from hepnn.plotting.report import build_report
from hepnn.training import Trainer


def _files(tmp_path, n=40):
    rng = np.random.default_rng(1)
    paths = []
    for name, shift in (("sig", 1.0), ("bkg", 0.0)):
        counts = rng.integers(1, 5, n)
        m = int(counts.sum())
        path = tmp_path / f"{name}.root"
        with uproot.recreate(path) as f:
            f["jets"] = {
                "jet_pt": rng.uniform(400, 600, n) + 50 * shift, "jet_mass": rng.normal(80 + 90 * shift, 10, n),
                "jet_eta": rng.normal(0, 1, n), "jet_phi": rng.uniform(-3, 3, n),
                "part_pt": ak.unflatten(rng.uniform(1, 50, m), counts),
                "part_eta": ak.unflatten(rng.normal(0, 1, m), counts),
                "part_phi": ak.unflatten(rng.uniform(-3, 3, m), counts),
                "part_mass": ak.unflatten(np.zeros(m), counts),
            }
        paths.append(path)
    return paths


def _config(tmp_path, inputs=None):
    sig, bkg = _files(tmp_path)
    return load_config({
        "data": {
            "files": [{"path": str(sig), "tree": "jets", "label": 1}, {"path": str(bkg), "tree": "jets", "label": 0}],
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "mass": "jet_mass"},
            "constituents": {"pt": "part_pt", "eta": "part_eta", "phi": "part_phi", "mass": "part_mass"},
            "inputs": inputs or {"jet": {"kind": "flat", "variables": ["jet_pt", "jet_mass"]}},
            "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        },
        "model": {"name": "dense", "units": [4]},
        "training": {"epochs": 1, "batch_size": 16},
    })


class Broken(Analysis):
    name = "broken_plugin"


@pytest.mark.parametrize("hook", ["select", "labels"])
def test_a_raising_select_or_labels_hook_is_named(tmp_path, hook):
    config = _config(tmp_path)
    analysis = type("BrokenHook", (Broken,), {hook: lambda self, jets: jets["no_such_branch"]})(config=config)
    with pytest.raises(PluginError, match=rf"'broken_plugin' \(BrokenHook\): its {hook}\(jets\) hook raised KeyError"):
        load(config, analysis)


@pytest.mark.parametrize(("returns", "what"), [
    (lambda m: 1 / 0, "raised ZeroDivisionError"),
    (lambda m: np.float64(2.0), r"received dtype float64 and shape \(\)"),  # was broadcast to every element
    (lambda m: np.ones(1), r"shape \(1,\)"),  # was broadcast to every element
    (lambda m: np.ones(3), r"shape \(3,\)"),
    (lambda m: np.ones((len(m.pt), 2)), r"shape \(\d+, 2\)"),
    (lambda m: np.array(["x"] * len(m.pt)), "received dtype <U1"),
])
def test_a_bad_derived_variable_is_named(tmp_path, returns, what):
    register_derived("fuzz_bad_derived")(returns)
    try:
        config = _config(tmp_path, {"parts": {"kind": "sequence", "variables": ["rel_eta", "fuzz_bad_derived"],
                                              "max_length": 4}})
        with pytest.raises(PluginError, match=rf"data\.inputs\.parts: derived variable 'fuzz_bad_derived' .*{what}"):
            load(config)
    finally:
        DERIVED.unregister("fuzz_bad_derived")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("trained")
    config = _config(tmp_path)
    Trainer(config).fit(tmp_path / "run")
    return config, tmp_path / "run"


def test_a_raising_plots_hook_is_named(tmp_path, trained):
    config, run = trained

    class Plots(Broken):
        def plots(self, run_dir, results):
            return [results["no_such_run"]]

    hook = Plots(config=config).plots
    with pytest.raises(PluginError, match=r"analysis plugin Plots: its plots\(report_dir, results\) hook raised KeyError"):
        build_report(run, out=tmp_path / "report", hook=hook, progress=False)


def test_a_plots_hook_returning_one_path_shows_it(tmp_path, trained):
    _, run = trained

    def hook(report_dir, results):
        path = report_dir / "analysis" / "extra.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
        return str(path)  # one path, not a list: its characters were taken as paths and the plot dropped

    report = build_report(run, out=tmp_path / "report", hook=hook, progress=False)
    assert [f.files for f in report.figures if f.section == "analysis"] == [["analysis/extra.png"]]


def test_runs_of_the_same_name_in_different_folders_are_all_reported(tmp_path):
    # a list of runs named "run" in two folders: the first was silently dropped (keyed by folder name)
    first, second = tmp_path / "a" / "run", tmp_path / "b" / "run"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    with pytest.raises(InputDataError, match=r"a[/\\]run[/\\]config\.yaml"):
        build_report([first, second], out=tmp_path / "report", progress=False)


def test_a_build_model_hook_that_fails_is_named(tmp_path):
    class Broken:
        def build_model(self, config, input_shapes, n_outputs):
            return 1 / 0

    class Wrong:
        def build_model(self, config, input_shapes, n_outputs):
            return "dense"

    rng = np.random.default_rng(0)
    n = 120
    data = {"jet": rng.normal(size=(n, 2)).astype("float32"), "label": rng.integers(0, 2, n).astype("int32"),
            "weight": np.ones(n, "float32"), "split": np.zeros(n, "int8")}
    config = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}}},
              "model": {"name": "dense", "units": [4]}, "training": {"epochs": 1, "verbose": 0}}
    with pytest.raises(PluginError, match=r"Broken: its build_model\(.*\) hook raised ZeroDivisionError"):
        Trainer(config, analysis=Broken(), log=lambda _: None).fit(tmp_path / "a", data=data)
    with pytest.raises(PluginError, match="Wrong: its build_model.* returned str, not a keras.Model"):
        Trainer(config, analysis=Wrong(), log=lambda _: None).fit(tmp_path / "b", data=data)


@pytest.mark.parametrize("returned", [5, [1, 2]])
def test_a_plots_hook_returning_no_paths_is_named(tmp_path, trained, returned):
    """A plots hook returning 5 crashed the report with "'int' object is not iterable"."""
    _, run = trained

    def hook(report_dir, results):
        return returned

    with pytest.raises(PluginError, match=r"hook test_a_plots_hook_returning_no_paths_is_named.<locals>.hook: its "
                                          r"plots\(report_dir, results\) hook returned int.*return a path or a list"):
        build_report(run, out=tmp_path / "report", hook=hook, progress=False)
