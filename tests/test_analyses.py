"""The example analyses in analyses/: configs validate, load by path and as an installed plugin,
and one cheap end-to-end `hepnn run --quick`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hepnn.cli import main
from hepnn.config import quick
from hepnn.plotting.step import RESULTS_BEGIN, RESULTS_END
from hepnn.plugins import load_analysis

ROOT = Path(__file__).resolve().parents[1]
ANALYSES = ROOT / "analyses"
NAMES = ["top_tagging", "flavour_tagging", "anomaly_detection"]


def test_every_analysis_is_listed():
    assert sorted(p.name for p in ANALYSES.iterdir() if (p / "config.yaml").is_file()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_checks(name, capsys):
    assert main(["config", "check", str(ANALYSES / name / "config.yaml")]) == 0
    assert ": ok" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_loads_by_path_with_quick_overlay(name):
    analysis = load_analysis(ANALYSES / name)
    assert analysis.name == name
    assert analysis.config.variants and analysis.config.generate is not None
    small = quick(analysis.config)
    full_jets = sum(s.n_jets for s in analysis.config.generate.samples.values())
    quick_jets = sum(s.n_jets for s in small.generate.samples.values())
    # fewer jets; epochs: at most the full run's (top_tagging's quick mode trains longer on its
    # small sample, with early stopping, so that each network shows its honest best)
    assert quick_jets < full_jets and small.training.epochs <= analysis.config.training.epochs
    assert set(small.variants) == set(analysis.config.variants)


@pytest.mark.parametrize("name", NAMES)
def test_readme_has_results_block(name):
    text = (ANALYSES / name / "README.md").read_text()
    assert text.count(RESULTS_BEGIN) == 1 and text.count(RESULTS_END) == 1
    assert text.index(RESULTS_BEGIN) < text.index(RESULTS_END)


def test_flavour_tagging_config_contract():
    config = load_analysis(ANALYSES / "flavour_tagging").config
    assert config.data.layout == "per_event"
    assert dict(config.data.label.classes) == {"light": 0, "c": 4, "b": 5}
    tracks = config.data.inputs["tracks"]
    assert tracks.sort_by.variable == "Track_d0sig" and tracks.sort_by.absolute and tracks.sort_by.descending
    assert tuple(config.evaluation.working_points) == (0.6, 0.7, 0.77, 0.85)
    assert config.baseline is not None
    sample = next(iter(config.generate.samples.values()))
    assert (sample.sample, sample.layout) == ("ttbar", "per_event")


def test_anomaly_detection_trains_both_directions():
    config = load_analysis(ANALYSES / "anomaly_detection").config
    directions = {(tuple(v["training"]["train_classes"]), v["evaluation"]["background"])
                  for v in config.variants.values()}
    assert directions == {(("qcd",), "qcd"), (("top",), "top")}


def test_flavour_tagging_by_path_has_plots_hook():
    analysis = load_analysis(ANALYSES / "flavour_tagging")
    assert type(analysis).__name__ == "FlavourTagging"


def test_flavour_tagging_installs_as_plugin(tmp_path):
    """`pip install` the analysis folder into a target and load it by name in a fresh interpreter."""
    src = tmp_path / "src"
    shutil.copytree(ANALYSES / "flavour_tagging", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(src)],
        check=True, capture_output=True,
    )
    assert (site / "hepnn_flavour_tagging" / "config.yaml").is_file()
    code = (
        "from hepnn.plugins import load_analysis, find_analyses\n"
        "a = load_analysis('flavour_tagging')\n"
        "print(type(a).__name__, a.name, a.config.data.layout, "
        "'hepnn-flavour-tagging 0.1.0' in find_analyses()['flavour_tagging'])"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("HEPNN_DISABLE_PLUGIN_AUTOLOAD", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.split() == ["FlavourTagging", "flavour_tagging", "per_event", "True"]


def test_top_tagging_quick_end_to_end(tmp_path):
    """The cheapest full chain: generate -> train -> evaluate -> explain -> report, in a subprocess."""
    out = tmp_path / "run"
    steps = "generate,train,evaluate,report"  # explain is covered by tests/test_explain_run.py
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "hepnn", "run", str(ANALYSES / "top_tagging"), "--quick", "--out", str(out),
         "--steps", steps,
         # smaller still, and only the dense network (the --quick overlay is applied after --set)
         "--set", "quick.generate.samples={top.root: {n_jets: 800}, qcd.root: {n_jets: 800}}",
         "--set", "quick.variants={dense: {model: {name: dense, inputs: [highlevel]}}}",
         "--set", "variants={dense: {model: {name: dense, inputs: [highlevel]}}}"],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report" / "index.html").is_file()
    dense = json.loads((out / "dense" / "metrics.json").read_text())
    bdt = json.loads((out / "bdt" / "metrics.json").read_text())
    assert dense["auc"] > 0.85 and bdt["auc"] > 0.85
    results = (out / "results.md").read_text()
    assert f"| dense | dense on highlevel | {dense['auc']:.4f} |" in results
    assert f"| BDT (baseline) | HistGradientBoostingClassifier on highlevel | {bdt['auc']:.4f} |" in results
    assert "Produced by `hepnn run" in results and "--quick" in results


def test_top_tagging_quick_mode_shows_every_tagger():
    """The demo (`make demo`): every network kind in the quick overlay, one fused model, the BDT."""
    from hepnn.config import variant

    config = quick(load_analysis(ANALYSES / "top_tagging").config)
    variants = {name: variant(config, name) for name in config.variants}
    models = {name: (v.model.name, tuple(v.model.inputs)) for name, v in variants.items()}
    kinds = {m for m, _ in models.values()}
    assert {"dense", "cnn", "rnn", "deepsets", "pfn", "efn", "particlenet", "transformer", "autoencoder"} <= kinds
    fused = [n for n, (_, inputs) in models.items() if "highlevel" in inputs and len(inputs) > 1]
    assert len(fused) == 1
    assert config.baseline is not None
    # the cheap set networks train to the end of a cosine schedule (no early stop on a noisy 400-jet loss)
    for name in ("deepsets", "pfn", "efn"):
        training = variants[name].training
        assert training.early_stopping is None and training.schedule.name == "cosine"
        assert training.schedule.decay_epochs == training.epochs >= 2 * config.training.epochs
    sizes = [s.n_jets for s in config.generate.samples.values()]
    assert sizes == [2000, 2000]  # the demo's time budget (3 minutes on 2 CPU cores) is measured at this size
