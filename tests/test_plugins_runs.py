"""A run trained with an analysis plugin's data hooks is read again with them.

The plugin's ``select``/``labels`` hooks chose the run's jets; ``hepnn evaluate``, ``report`` and
``explain`` on the run alone must not silently score other jets.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

pytest.importorskip("keras")
pytest.importorskip("uproot")

import hepnn.io  # noqa: E402
from hepnn.cli import main  # noqa: E402
from hepnn.exceptions import ConfigError  # noqa: E402
from hepnn.plugins import load_analysis  # noqa: E402
from hepnn.training.evaluate import evaluate_run, recorded_analysis  # noqa: E402
from hepnn.training.rundir import RunDirectory, read_json  # noqa: E402
from test_io_fixtures import write_top_qcd  # noqa: E402

ANALYSIS_PY = '''
import numpy as np
from hepnn import Analysis

class LowTau21(Analysis):
    def select(self, jets):
        return np.asarray(jets["jet_tau21"]) < 0.6
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dense run trained by ``hepnn train --analysis`` with a plugin whose select() keeps 60% of the jets."""
    root = tmp_path_factory.mktemp("plugin_runs")
    write_top_qcd(root, 400)
    folder = root / "low_tau21"
    folder.mkdir()
    (folder / "analysis.py").write_text(ANALYSIS_PY)
    config = {
        "name": "plugin-runs",
        "data": {
            "layout": "per_jet",
            "files": [{"path": str(root / "top.root"), "tree": "jets", "label": 1},
                      {"path": str(root / "qcd.root"), "tree": "jets", "label": 0}],
            "inputs": {"jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau21", "jet_nparticles"]}},
        },
        "model": {"name": "dense", "units": [8]},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    run = root / "run"
    assert main(["train", str(folder / "config.yaml"), "--out", str(run), "--analysis", str(folder), "-q"]) == 0
    return {"root": root, "folder": folder, "run": run, "config": folder / "config.yaml"}


def test_the_run_records_the_plugin_and_its_data_hooks(trained):
    record = read_json(RunDirectory(trained["run"]).provenance)["analysis"]
    assert record["data_hooks"] == ["select"]
    assert record["target"] == str(trained["folder"].resolve())
    assert record["class"].endswith(".LowTau21") and record["name"] == "plugin-runs"
    assert recorded_analysis(trained["run"]) == record


def test_reading_the_run_without_the_plugin_is_refused(trained):
    with pytest.raises(ConfigError, match=r"LowTau21.*select\(\).*--analysis .*low_tau21"):
        evaluate_run(trained["run"])


def test_the_cli_scores_the_jets_the_run_was_trained_on(trained, capsys):
    analysis = load_analysis(trained["folder"])
    expected = evaluate_run(trained["run"], analysis=analysis)
    # the plugin kept fewer test jets than the files hold: without it the numbers would be of other jets
    every = hepnn.io.load(hepnn.config.load_config(trained["config"]))
    kept = hepnn.io.load(hepnn.config.load_config(trained["config"]), analysis=analysis)
    assert len(kept["label"]) < 0.7 * len(every["label"])
    assert expected["n_test"] == int(np.sum(np.asarray(kept["split"]) == 2))

    capsys.readouterr()
    assert main(["evaluate", str(trained["run"])]) == 0  # the recorded plugin, found where it was
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["n_test"] == expected["n_test"]
    assert printed["auc"] == pytest.approx(expected["auc"], abs=1e-12)

    assert main(["evaluate", str(trained["run"]), "--analysis", str(trained["folder"])]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["n_test"] == expected["n_test"]


def test_a_moved_plugin_is_named_with_the_fix(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    moved = tmp_path / "elsewhere"
    shutil.copytree(trained["folder"], moved)
    record_path = RunDirectory(run).provenance
    prov = read_json(record_path)
    prov["analysis"]["target"] = str(tmp_path / "gone")
    record_path.write_text(json.dumps(prov))
    capsys.readouterr()
    assert main(["evaluate", str(run), "-q"]) == 2
    err = capsys.readouterr().err
    assert "gone" in err and "cannot be loaded" in err and "--analysis" in err
    assert main(["evaluate", str(run), "--analysis", str(moved), "-q"]) == 0


def test_report_and_explain_read_the_run_with_its_plugin(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    expected = evaluate_run(run, analysis=load_analysis(trained["folder"]))
    RunDirectory(run).metrics.unlink()  # the report computes them again, from the data it reads
    assert main(["explain", str(run), "--method", "permutation", "--n-jets", "50", "-q"]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "report"), "--no-progress", "-q"]) == 0
    metrics = read_json(tmp_path / "report" / "metrics.json")
    assert metrics["n_test"] == expected["n_test"]
    assert metrics["auc"] == pytest.approx(expected["auc"], abs=1e-12)
