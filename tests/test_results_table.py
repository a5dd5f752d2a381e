"""The results table of `hepnn run` (OUT/results.md) and the README block it replaces."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hepnn.analysis import Analysis
from hepnn.exceptions import ConfigError
from hepnn.plotting.step import (
    RESULTS_BEGIN,
    RESULTS_END,
    replace_results_block,
    results_table,
    update_readme,
    write_results,
)

WPS = [0.3, 0.5]


def _binary(auc, rej30, rej50, n=100):
    return {"task": "binary", "auc": auc, "rejection": {"0.3": rej30, "0.5": rej50}, "n_test": n}


def _write(path: Path, metrics: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def analysis(tmp_path):
    folder = tmp_path / "ana"
    folder.mkdir()
    (folder / "config.yaml").write_text(textwrap.dedent("""
        name: fake
        generate:
          seed: 3
          samples:
            top.root: {sample: top, n_jets: 500}
            qcd.root: {sample: qcd, n_jets: 400}
        data:
          files: [{path: top.root, tree: jets, label: 1}, {path: qcd.root, tree: jets, label: 0}]
          inputs: {hl: {kind: flat, variables: [jet_mass]}, img: {kind: image, pixels: 8}}
        training: {epochs: 7, seed: 5}
        evaluation: {working_points: [0.3, 0.5]}
        variants:
          dense: {model: {name: dense, inputs: [hl]}}
          ae:
            model: {name: autoencoder, inputs: [img]}
            training: {train_classes: [qcd]}
            evaluation: {background: qcd}
        baseline: {inputs: [hl]}
    """))
    (folder / "README.md").write_text(f"# Fake\n\nintro\n\n{RESULTS_BEGIN}\nold numbers\n{RESULTS_END}\n\nafter\n")
    return Analysis(directory=folder)


def test_binary_table_rows_and_formatting():
    rows = {"dense": {"metrics": _binary(0.97654321, 512.345, None), "model": "dense on hl"},
            "BDT (baseline)": {"metrics": _binary(0.95, 2345.6, 41.23), "model": "HistGradientBoostingClassifier on hl"}}
    text = results_table(rows, WPS, command="hepnn run x", setup=["seed 1"])
    lines = text.splitlines()
    assert lines[0] == "| model | architecture | AUC | 1/εB @ 30% | 1/εB @ 50% | test jets |"
    assert lines[2] == "| dense | dense on hl | 0.9765 | 512 | ∞ | 100 |"
    assert lines[3] == "| BDT (baseline) | HistGradientBoostingClassifier on hl | 0.9500 | 2346 | 41.2 | 100 |"
    assert "Produced by `hepnn run x`." in text
    assert "- seed 1" in lines


def test_table_says_when_numbers_are_weighted_or_out_of_fold():
    # evaluation.weighted and k-fold runs gave the same table as unweighted test-split numbers
    plain = _binary(0.9, 10.0, 5.0)
    text = results_table({"dense": {"metrics": plain}}, WPS)
    assert "Weighted" not in text and "k-fold" not in text
    rows = {"dense": {"metrics": {**plain, "weighted": True}},
            "kfold": {"metrics": {**plain, "weighted": True, "scored_out_of_fold": True, "n_test": 500}}}
    text = results_table(rows, WPS)
    assert "Weighted by the jets' weights (`evaluation.weighted`" in text
    assert "k-fold (kfold): every jet scored by the fold model that did not train on it" in text


def test_multiclass_table_shows_b_and_c_rejections():
    disc = {"b_vs_light": {"auc": 0.9, "rejection": {"0.3": 100.0, "0.5": 20.0}},
            "c_vs_light": {"auc": 0.7, "rejection": {"0.3": 8.0, "0.5": 3.0}}}
    rows = {"gru": {"metrics": {"task": "multiclass", "accuracy": 0.8, "n_test": 50, "discriminants": disc}}}
    text = results_table(rows, WPS)
    assert "**b-tagging**" in text and "**c-tagging**" in text
    assert "| gru |  | 0.8000 | 0.9000 | 100 | 20 | 50 |" in text
    assert "| gru |  | 0.8000 | 0.7000 | 8 | 3 | 50 |" in text
    assert "1/εlight @ 30%" in text


def test_autoencoder_table_names_background_and_training_class():
    m = {"task": "autoencoder", "background": "qcd", "auc": 0.2, "rejection": {"0.3": 1.5, "0.5": 1.2}, "n_test": 9}
    text = results_table({"ae": {"metrics": m, "model": "autoencoder on img", "train_classes": ["qcd"]}}, WPS)
    assert "| ae | autoencoder on img | qcd | qcd | 0.2000 | 1.5 | 1.2 | 9 |" in text
    assert "AUC below 0.5" in text


def test_write_results_from_metrics_files(analysis, tmp_path):
    out = tmp_path / "out"
    _write(out / "dense", _binary(0.9, 50.0, 10.0, n=270))
    _write(out / "ae", {"task": "autoencoder", "background": "qcd", "auc": 0.6, "rejection": {"0.3": 2.0, "0.5": 1.5},
                        "n_test": 270})
    _write(out / "bdt", _binary(0.88, 40.0, 9.0, n=270))
    analysis.command = "hepnn run ana --set training.epochs=7"
    path = write_results(analysis, out)
    text = path.read_text()
    assert path == out / "results.md"
    assert text.startswith("# Results of `fake`")
    assert "| dense | dense on hl | 0.9000 | 50 | 10 | 270 |" in text
    assert "| BDT (baseline) | HistGradientBoostingClassifier on hl | 0.8800 | 40 | 9 | 270 |" in text
    assert "| ae | autoencoder on img | qcd | qcd | 0.6000 |" in text
    assert "`top.root` 500 top jets (seed 3); `qcd.root` 400 qcd jets (seed 4)" in text
    assert "up to 7 epochs" in text and "seed 5" in text
    assert "Produced by `hepnn run ana --set training.epochs=7`." in text


def test_update_readme_replaces_only_the_block(analysis, tmp_path):
    out = tmp_path / "out"
    _write(out / "dense", _binary(0.9, 50.0, 10.0))
    write_results(analysis, out)
    readme = update_readme(analysis, out)
    text = readme.read_text()
    assert text.startswith("# Fake\n\nintro\n\n" + RESULTS_BEGIN + "\n| model |")
    assert text.endswith(RESULTS_END + "\n\nafter\n")
    assert "old numbers" not in text and "# Results of" not in text
    # idempotent: a second update gives the same file
    update_readme(analysis, out)
    assert readme.read_text() == text
    assert not [p for p in readme.parent.iterdir() if p.name.startswith(".README")]  # no temporary left


def test_replace_results_block_needs_both_markers():
    with pytest.raises(ValueError, match="hepnn:results:end"):
        replace_results_block(f"{RESULTS_BEGIN}\nno end\n", "x\n")
    with pytest.raises(ValueError, match="add them"):
        replace_results_block(f"{RESULTS_END}\n{RESULTS_BEGIN}\n", "x\n")


def test_update_readme_errors(analysis, tmp_path):
    with pytest.raises(Exception, match="no results table"):
        update_readme(analysis, tmp_path / "empty")
    out = tmp_path / "out"
    _write(out / "dense", _binary(0.9, 50.0, 10.0))
    write_results(analysis, out)
    readme = tmp_path / "plain.md"
    readme.write_text("no markers\n")
    with pytest.raises(ConfigError, match="plain.md"):
        update_readme(analysis, out, readme=readme)
    assert readme.read_text() == "no markers\n"


def test_cli_run_has_update_readme_flag():
    from hepnn.cli import build_parser

    args = build_parser().parse_args(["run", "analyses/top_tagging", "--update-readme"])
    assert args.update_readme is True
    assert build_parser().parse_args(["run", "x"]).update_readme is False
