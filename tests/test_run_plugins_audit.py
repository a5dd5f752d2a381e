"""Audit of `hepnn run` and analysis-plugin loading: entry points naming a package, names two
installed packages declare, a folder in the working directory named like an installed analysis,
and a `hepnn run` interrupted in its steps that resumes to the numbers of an uninterrupted run."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hepnn.exceptions import PluginError, UnknownNameError
from hepnn.plugins import find_analyses, load_analysis, portable_target

SELECT = ("from hepnn import Analysis\n\n"
          "class Tagging(Analysis):\n"
          "    def select(self, jets):\n"
          "        return jets['jet_pt'] > 600\n")


def _dist(site: Path, dist: str, entries: str) -> None:
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hepnn.analyses]\n{entries}\n")
    (info / "RECORD").write_text("")


def _package(site: Path, name: str, files: dict[str, str]) -> None:
    pkg = site / name
    pkg.mkdir(parents=True)
    (pkg / "config.yaml").write_text("training: {epochs: 4}\n")
    for file, text in files.items():
        (pkg / file).write_text(text)


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("HEPNN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return folder


def test_entry_point_naming_a_package_keeps_the_hooks_of_its_class(site):
    # the usual layout: the package's __init__ imports the class from a submodule; the hooks must not be lost
    _package(site, "audit_pkg_a", {"__init__.py": "from .analysis import Tagging\n", "analysis.py": SELECT})
    _dist(site, "audit-a", "audit_modpkg = audit_pkg_a")
    analysis = load_analysis("audit_modpkg")
    assert type(analysis).__name__ == "Tagging"
    assert analysis.record()["data_hooks"] == ["select"]
    assert analysis.select({"jet_pt": np.array([550.0, 650.0])}).tolist() == [False, True]


def test_entry_point_naming_a_package_with_two_classes_is_refused(site):
    two = SELECT + "\n\nclass Other(Tagging):\n    pass\n"
    _package(site, "audit_pkg_two", {"__init__.py": "from .analysis import Tagging, Other\n", "analysis.py": two})
    _dist(site, "audit-two", "audit_two = audit_pkg_two")
    with pytest.raises(PluginError, match=r"'audit_two' \(package audit-two 0.1\).*2 hepnn.Analysis subclasses"
                       r".*audit_pkg_two.analysis:Tagging, audit_pkg_two.analysis:Other.*point it at one class"):
        load_analysis("audit_two")


def test_entry_point_naming_a_package_without_class_uses_the_base_class(site):
    _package(site, "audit_pkg_plain", {"__init__.py": "x = 1\n"})
    _dist(site, "audit-plain", "audit_plain = audit_pkg_plain")
    analysis = load_analysis("audit_plain")
    assert type(analysis).__name__ == "Analysis" and analysis.config.training.epochs == 4


def test_a_name_two_packages_declare_is_refused_naming_both(site):
    _package(site, "audit_pkg_b", {"__init__.py": SELECT})
    _package(site, "audit_pkg_c", {"__init__.py": "x = 1\n"})
    _dist(site, "audit-b", "audit_dup = audit_pkg_b:Tagging")
    _dist(site, "audit-c", "audit_dup = audit_pkg_c")
    assert find_analyses()["audit_dup"].startswith("ambiguous: ")
    with pytest.raises(PluginError, match=r"'audit_dup': 2 installed packages") as err:
        load_analysis("audit_dup")
    assert "package audit-b 0.1" in str(err.value) and "package audit-c 0.1" in str(err.value)
    assert "uninstall all but one" in str(err.value)


def test_a_folder_without_config_does_not_hide_an_installed_analysis(site, tmp_path, monkeypatch):
    _package(site, "audit_pkg_d", {"__init__.py": SELECT})
    _dist(site, "audit-d", "audit_named = audit_pkg_d:Tagging")
    work = tmp_path / "work"
    (work / "audit_named").mkdir(parents=True)  # e.g. the folder of its data
    monkeypatch.chdir(work)
    analysis = load_analysis("audit_named")
    assert type(analysis).__name__ == "Tagging"
    # a run records the name (a later command loads the plugin again), and --jobs workers get the name too
    assert analysis.target == "audit_named" and analysis.record()["target"] == "audit_named"
    assert portable_target("audit_named") == "audit_named"
    assert portable_target(".") == str(work.resolve())



def test_an_unknown_name_points_at_the_analysis_folder_hepnn_list_shows(site, tmp_path, monkeypatch):
    (tmp_path / "work" / "analyses" / "demo_tagging").mkdir(parents=True)
    (tmp_path / "work" / "analyses" / "demo_tagging" / "config.yaml").write_text("training: {epochs: 2}\n")
    monkeypatch.chdir(tmp_path / "work")
    assert find_analyses([Path("analyses")])["demo_tagging"] == str(Path("analyses") / "demo_tagging")
    with pytest.raises(UnknownNameError, match=r"'demo_tagging'; did you mean 'analyses/demo_tagging'\?"):
        load_analysis("demo_tagging")
    assert load_analysis("analyses/demo_tagging").config.training.epochs == 2


def test_a_folder_with_a_dot_in_its_name_loads_a_plugin_whose_objects_pickle(tmp_path):
    folder = tmp_path / "tagging.v2"
    folder.mkdir()
    (folder / "config.yaml").write_text("training: {epochs: 2}\n")
    (folder / "analysis.py").write_text(
        "import dataclasses, pickle\nfrom hepnn import Analysis\n\n"
        "@dataclasses.dataclass\nclass Window:\n    lo: float = 550.0\n\n"
        "ROUND_TRIP = pickle.loads(pickle.dumps(Window(600.0)))\n\n"
        "class Tagging(Analysis):\n    pass\n")
    analysis = load_analysis(folder)
    module = sys.modules[type(analysis).__module__]
    assert "." not in module.__name__ and module.ROUND_TRIP.lo == 600.0



def test_the_command_in_results_md_pastes_back_into_a_shell():
    from hepnn.run import reproducing_command

    overrides = ["quick.generate.samples={top.root: {n_jets: 300}, qcd.root: {n_jets: 300}}", "training.epochs=3"]
    command = reproducing_command("my analyses/top tagging", True, overrides)
    assert shlex.split(command) == ["hepnn", "run", "my analyses/top tagging", "--quick",
                                    "--set", overrides[0], "--set", overrides[1]]
    assert reproducing_command("analyses/top_tagging", False, []) == "hepnn run analyses/top_tagging"


# --- `hepnn run` interrupted in its steps resumes to the numbers of an uninterrupted run -----------


class Killed(Exception):
    """What the fault hook raises: the process 'dies' there (the steps' files stay as they are)."""


def _write_root(path: Path, n: int, shift: float, seed: int) -> None:
    import uproot

    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        f["jets"] = {"jet_pt": rng.uniform(500, 700, n), "jet_mass": rng.normal(100 + 50 * shift, 40, n),
                     "jet_tau21": rng.normal(0.6 - 0.2 * shift, 0.2, n)}


@pytest.fixture(scope="module")
def small_analysis(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume") / "ana"
    folder.mkdir()
    _write_root(folder / "sig.root", 400, 1, 1)
    _write_root(folder / "bkg.root", 400, 0, 2)
    (folder / "config.yaml").write_text(textwrap.dedent("""
        name: resume_demo
        data:
          files: [{path: sig.root, tree: jets, label: 1}, {path: bkg.root, tree: jets, label: 0}]
          inputs: {hl: {kind: flat, variables: [jet_mass, jet_tau21]}}
        training: {epochs: 3, batch_size: 64, seed: 4}
        evaluation: {working_points: [0.5]}
        explain: {methods: [permutation], n_jets: 100}
        variants:
          small: {model: {name: dense, inputs: [hl], units: [8]}}
          wide: {model: {name: dense, inputs: [hl], units: [16]}}
        baseline: {inputs: [hl], max_iter: 10}
    """))
    return folder


def _numbers(out: Path) -> dict:
    found = {}
    for path in sorted(out.glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        found[path.parent.name] = (metrics["auc"], metrics["n_test"])
    for path in sorted(out.glob("*/explain/*/values.npz")):
        with np.load(path) as values:
            # every array but the explainer's run time
            found[str(path.relative_to(out))] = {k: values[k].tolist() for k in values.files if k != "extra_seconds"}
    return found


def _kill_at(point: str, when):
    def hook(name: str, info: dict) -> None:
        if name == point and when(info):
            raise Killed(f"{point} {info}")
    return hook


@pytest.fixture(scope="module")
def reference(small_analysis, tmp_path_factory) -> dict:
    from hepnn.run import run_analysis

    out = tmp_path_factory.mktemp("reference") / "out"
    run_analysis(small_analysis, out=out, steps="train,evaluate,explain", log=lambda s: None)
    numbers = _numbers(out)
    assert {"small", "wide", "bdt"} <= set(numbers) and any("values.npz" in k for k in numbers), numbers
    return {"out": out, "numbers": numbers}


@pytest.mark.parametrize("point, when", [
    ("epoch", lambda info: info["epoch"] == 2),          # in the training of the first variant
    ("run-step", lambda info: info["step"] == "evaluate"),  # every run trained, none evaluated
    ("explain-write", lambda info: True),                # one explainer's values written, not yet in place
], ids=["mid-training", "between-train-and-evaluate", "mid-explain"])
def test_a_run_killed_in_a_step_resumes_to_the_same_numbers(small_analysis, reference, tmp_path, monkeypatch,
                                                            point, when):
    from hepnn import _faults
    from hepnn.run import run_analysis

    out = tmp_path / "out"
    monkeypatch.setattr(_faults, "HOOK", _kill_at(point, when))
    with pytest.raises(Killed):
        run_analysis(small_analysis, out=out, steps="train,evaluate,explain", log=lambda s: None)
    monkeypatch.setattr(_faults, "HOOK", None)
    assert _numbers(out) != reference["numbers"]  # it was cut short
    run_analysis(small_analysis, out=out, steps="train,evaluate,explain", log=lambda s: None)
    assert _numbers(out) == reference["numbers"]


def test_a_rerun_with_one_variant_changed_refuses_it_by_name_and_keeps_the_others(small_analysis, reference,
                                                                                   tmp_path):
    import shutil

    from hepnn.exceptions import OutputDirError
    from hepnn.run import run_analysis

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    with pytest.raises(OutputDirError, match=r"wide is a finished run trained with a different config.*units"):
        run_analysis(small_analysis, out=out, steps="train,evaluate", log=lambda s: None,
                     overrides=["variants.wide.model.units=[32]"])
    assert _numbers(out) == reference["numbers"]  # nothing was overwritten


def test_steps_given_out_of_order_run_in_the_workflow_order(small_analysis, reference, tmp_path):
    from hepnn.run import run_analysis

    lines: list[str] = []
    out = tmp_path / "out"
    run_analysis(small_analysis, out=out, steps="explain,evaluate,train,evaluate", log=lines.append)
    started = [line.split()[2] for line in lines if line.startswith("[resume_demo] step ")]
    assert started == ["train", "evaluate", "explain"]
    assert _numbers(out) == reference["numbers"]


def test_set_overrides_win_over_the_quick_overlay(tmp_path):
    # --quick --set training.epochs=7 trained the overlay's 15 epochs: the overrides were applied before the
    # overlay, so a key both set silently kept the overlay's value (make demo DEMO_ARGS=..., results.md)
    import hepnn.run as run_module

    top = str(Path(__file__).resolve().parents[1] / "analyses" / "top_tagging")
    recipe = run_module._Recipe(target=top, overrides=("training.epochs=7", "quick.training.batch_size=64",
                                                        "data.inputs.particles.max_length=12"),
                                quick=True, out=str(tmp_path / "out"))
    config = recipe.analysis()[0].config
    assert config.training.epochs == 7  # the override, not the overlay's 15
    assert config.training.batch_size == 64  # an override of the overlay itself still reaches it
    assert config.data.inputs["particles"].max_length == 12  # not the overlay's 30
    assert config.training.optimizer.learning_rate == pytest.approx(0.002)  # the rest of the overlay applies
    assert not config.quick  # spent
    plain = run_module._Recipe(target=top, overrides=("training.epochs=7",), quick=False, out=str(tmp_path / "o2"))
    assert plain.analysis()[0].config.training.epochs == 7
