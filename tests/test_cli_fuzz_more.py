"""Less-used paths found by a new-user pass: predict on k-fold runs, tune resumed with another search, job scripts."""

from __future__ import annotations

import json
import shlex
import subprocess

import numpy as np
import pytest
import uproot

import hepnn
from hepnn.cli import main
from hepnn.config import load_config
from hepnn.exceptions import ConfigError
from hepnn.io.split import assign_fold, fold_key
from hepnn.models import load_model
from hepnn.scale.predict import predict_files
from hepnn.training.kfold import fold_dirs
from hepnn.training.trainer import Trainer

KFOLD = """
data:
  layout: per_jet
  files:
    - {path: sig.root, tree: jets, label: 1}
    - {path: bkg.root, tree: jets, label: 0}
  inputs:
    jet: {kind: flat, variables: [a, b]}
  split: {train: 0.6, val: 0.2, test: 0.2, seed: 11}
model: {name: dense, units: [4], dropout: 0.0}
training: {epochs: 1, batch_size: 64, folds: 3, verbose: 0}
"""


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kfold_predict")
    rng = np.random.default_rng(3)
    for name, shift in (("sig", 1.0), ("bkg", -1.0)):
        with uproot.recreate(folder / f"{name}.root") as f:
            f["jets"] = {"a": rng.normal(shift, 1, 150).astype(np.float32),
                         "b": rng.normal(0, 1, 150).astype(np.float32)}
    (folder / "config.yaml").write_text(KFOLD)
    Trainer(load_config(folder / "config.yaml"), log=lambda s: None).fit(folder / "run")
    return folder


def _out_of_fold(folder, name):
    """Each jet of ``name`` scored by the fold model that never trained on it, as training assigned folds."""
    x = uproot.open(folder / name)["jets"].arrays(["a", "b"], library="np")
    tagger = hepnn.Tagger.load(folder / "run")
    jet = tagger.preprocessing.transform({"jet": np.stack([x["a"], x["b"]], axis=1)})["jet"]
    per_model = [load_model(p / "model.keras").predict({"jet": jet}, verbose=0).reshape(-1)
                 for p in fold_dirs(folder / "run", 3)]
    n = len(jet)
    fold = assign_fold(fold_key(name, np.arange(n), np.zeros(n, np.int64), 11), 3)
    return np.choose(fold, per_model)


def test_kfold_scores_do_not_depend_on_chunks_or_blocks(kfold_run):
    # entries were numbered from 0 in every chunk (and block), so jets after the first chunk got
    # the fold key of another jet: many were scored by a model that had trained on them
    expected = _out_of_fold(kfold_run, "sig.root")
    tagger = hepnn.Tagger.load(kfold_run / "run")
    np.testing.assert_allclose(tagger.predict_file(kfold_run / "sig.root", step_size=40), expected, rtol=1e-5, atol=1e-6)
    tagger.block_entries = 16
    np.testing.assert_allclose(tagger.predict_file(kfold_run / "sig.root"), expected, rtol=1e-5, atol=1e-6)


def test_predict_dask_and_predict_chunk_score_a_kfold_run_out_of_fold(kfold_run):
    # predict_dask scored every partition without its file position: a hash-keyed k-fold tagger
    # averaged all folds, two of three of which had trained on each jet
    pytest.importorskip("dask_awkward")
    import awkward as ak

    expected = {name: _out_of_fold(kfold_run, name) for name in ("sig.root", "bkg.root")}
    tagger = hepnn.Tagger.load(kfold_run / "run")
    assert tagger.keyed_by_position  # no data.event_key
    lazy = tagger.predict_dask([kfold_run / "sig.root", kfold_run / "bkg.root"], step_size=40)
    assert lazy.npartitions == 8
    scores = ak.to_numpy(lazy.compute(scheduler="sync"))
    np.testing.assert_allclose(scores, np.r_[expected["sig.root"], expected["bkg.root"]], rtol=1e-5, atol=1e-6)
    events = uproot.open(kfold_run / "bkg.root")["jets"].arrays(["a", "b"], entry_start=70, entry_stop=130)
    np.testing.assert_allclose(tagger.predict_chunk(events, kfold_run / "bkg.root", 70), expected["bkg.root"][70:130],
                               rtol=1e-5, atol=1e-6)
    averaged = tagger.predict(events)  # without the position: the mean of the fold models
    assert not np.allclose(averaged, expected["bkg.root"][70:130], rtol=1e-5, atol=1e-6)


def test_predict_command_scores_a_kfold_run_out_of_fold(kfold_run, tmp_path):
    # `hepnn predict` refused a k-fold run ("not a trained run directory (no model.keras)")
    result = predict_files(kfold_run / "run", [kfold_run / "sig.root"], tmp_path / "scores", step_size=40)
    assert not result.failed
    scores = uproot.open(tmp_path / "scores" / "sig_scores.root")["jets"]["hepnn_score"].array(library="np")
    np.testing.assert_allclose(scores, _out_of_fold(kfold_run, "sig.root"), rtol=1e-5, atol=1e-6)


def test_predict_redoes_files_when_a_fold_model_changes(kfold_run, tmp_path):
    from hepnn.scale.files import run_fingerprint

    before = run_fingerprint(kfold_run / "run")
    model = kfold_run / "run" / "folds" / "1" / "model.keras"
    saved = model.read_bytes()
    try:
        model.write_bytes(saved + b"\0")
        assert run_fingerprint(kfold_run / "run") != before
    finally:
        model.write_bytes(saved)


# --- hepnn tune ------------------------------------------------------------------------------

def _toy(trial):
    return float(trial.params.get("training.epochs", 1))


def test_tune_refuses_to_resume_with_another_space_or_base_config(tmp_path):
    pytest.importorskip("optuna")
    from hepnn.tune.study import tune

    base = {"model": {"name": "dense"}}
    space = {"training.epochs": {"int": [1, 3]}}
    tune(base, space, tmp_path, n_trials=1, objective=_toy, plots=False, log=lambda s: None)
    # the same search resumes
    tune(base, space, tmp_path, n_trials=2, objective=_toy, plots=False, log=lambda s: None)
    # best_config.yaml is the current base config plus the best trial's values: with another base or
    # space it described a model no trial trained (and trials of both were ranked together)
    with pytest.raises(ConfigError, match="another search space"):
        tune(base, {"training.batch_size": [32, 64]}, tmp_path, n_trials=3, objective=_toy, plots=False,
             log=lambda s: None)
    with pytest.raises(ConfigError, match="another base config"):
        tune(base, space, tmp_path, n_trials=3, objective=_toy, overrides=["training.batch_size=32"], plots=False,
             log=lambda s: None)


# --- hepnn jobs ------------------------------------------------------------------------------

def test_slurm_predict_script_quotes_each_file_and_keeps_globs(tmp_path, capsys):
    (tmp_path / "my data").mkdir()
    for name in ("x.root", "y.root"):
        (tmp_path / "my data" / name).write_bytes(b"")
    assert main(["jobs", "slurm-predict", "--run-dir", "run", "--out", "scores",
                 "--files", "my data/x.root", "my data/*.root", "a$b.root"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("hepnn predict"))
    command = line.rsplit("&", 1)[0]
    # what bash passes to hepnn (the glob expanded in the job's folder, `$b` not expanded)
    shown = subprocess.run(["bash", "-c", f"RUN_DIR=run; OUT=scores; set -- {command}; printf '%s\\n' \"$@\""], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown == ["hepnn", "predict", "--out=scores", "--workers=1", "--", "run", "my data/x.root", "my data/x.root",
                     "my data/y.root", "a$b.root"]
    assert shlex.split(command)[6] == "my data/x.root"


def test_hepnn_run_of_a_kfold_analysis_explains_and_reports_each_fold(kfold_run, tmp_path):
    # the explain step stopped with "model file not found: .../model.keras" and the report step called
    # the k-fold run untrained
    from hepnn.explain import Explanation
    from hepnn.run import run_analysis

    analysis = tmp_path / "analysis"
    analysis.mkdir()
    for name in ("sig.root", "bkg.root"):
        (analysis / name).write_bytes((kfold_run / name).read_bytes())
    (analysis / "config.yaml").write_text("name: kfold_analysis\n" + KFOLD + "explain: {methods: [permutation], n_jets: 30}\n")
    out = run_analysis(analysis, out=tmp_path / "out", log=lambda s: None)
    folds = fold_dirs(out / "model", 3)
    sizes = json.loads((out / "model" / "folds.json").read_text())["jets_per_fold"]
    for k, path in enumerate(folds):
        expl = Explanation.load(path / "explain" / "permutation")
        assert expl.n_jets == min(30, sizes[k])
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert set(manifest["runs"]) == {"model/fold0", "model/fold1", "model/fold2"}
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    assert metrics["scored_out_of_fold"] and f"{metrics['auc']:.4f}" in (out / "results.md").read_text()
