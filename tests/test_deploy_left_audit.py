"""Audit of deployment, scale-out and tuning: what an earlier audit left open.

Each test is a bug that gave wrong numbers or lost work, or a brute-force check of a guarantee:

- a run folder copied without ``preprocessing.json`` (and ``spec.json``) was loaded by ``Tagger`` and
  scored its inputs unstandardised, silently (a k-fold run also with ``spec.json`` present);
- ``predict_dask([a, a])`` scored the file once while ``predict_file([a, a])`` scored it twice;
- an autoencoder exported with ``--with-preprocessing`` took raw inputs but its anomaly score needed
  ``preprocessing.json`` outside the graph: the export now has an ``anomaly_score`` output;
- a retried ``hepnn tune`` trial (its worker was killed) trained again from scratch in a new folder
  and left the killed trial's folder behind; the dead-worker check read ``/proc`` once per trial;
- the flavour-tagging analysis' efficiency-vs-pT plot ignored the jets' weights;
- brute force: ``predict_file``, ``predict_dask`` and ``hepnn predict`` rows line up with the input
  jets (event, jet within the event) on files with jet cuts in the config and events without any
  jet passing them (or without jets), also for k-fold runs keyed by event number or by position.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.config import load_config
from hepnn.exceptions import HepnnError, InputDataError

pytest.importorskip("keras")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

from test_io_fixtures import per_event_data, write_tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def quiet(_):
    pass


def _config(path: Path, **extra) -> dict:
    """Per-event jets with cuts most events fail (pt > 40 and |eta| < 2), light vs b, log(pt)."""
    data = {
        "layout": "per_event", "files": [{"path": str(path), "tree": "Events"}], "jets": "Jet",
        "cuts": [{"variable": "Jet_pt", "min": 40}, {"variable": "Jet_eta", "abs_max": 2.0}],
        "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "b": 5}},
        "inputs": {"jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass"],
                           "transforms": {"Jet_pt": {"log": True}}}},
        "split": {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 3},
        **extra.pop("data", {}),
    }
    return {"data": data, "model": {"name": "dense", "units": [4], "dropout": 0.0},
            "training": {"epochs": 1, "batch_size": 32, "verbose": 0, **extra.pop("training", {})}, **extra}


def _train(config, out, data=None):
    from hepnn.training.trainer import Trainer

    Trainer(config, log=quiet).fit(out, data=hepnn.io.load(config) if data is None else data)
    return Path(out)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("deploy_left")
    write_tree(base / "events.root", "Events", per_event_data(400, seed=11, max_jets=5))
    # another file: the first 7 events and every third one have no jets at all
    other = per_event_data(90, seed=12, max_jets=5)
    keep = (np.arange(90) >= 7) & (np.arange(90) % 3 != 0)
    other["Jet"] = other["Jet"][ak.local_index(other["Jet"].pt) < np.where(keep, 99, 0)[:, None]]
    unlinked = ak.values_astype(other["Track"].jetIdx * 0 - 1, np.int32)  # their tracks belong to no jet
    other["Track"] = ak.with_field(other["Track"], ak.where(keep, other["Track"].jetIdx, unlinked), "jetIdx")
    write_tree(base / "other.root", "Events", other)
    return base


@pytest.fixture(scope="module")
def run(folder):
    return _train(load_config(_config(folder / "events.root")), folder / "run")


@pytest.fixture(scope="module")
def kfold_run(folder):
    return _train(load_config(_config(folder / "events.root", training={"folds": 3})), folder / "kfold")


@pytest.fixture(scope="module")
def kfold_event_run(folder):
    config = load_config(_config(folder / "events.root", data={"event_key": "event"}, training={"folds": 3}))
    return _train(config, folder / "kfold_event")


# --- 1. a run copied without preprocessing.json ----------------------------------------------------


def _copy(run, tmp_path, *drop):
    target = tmp_path / "copy"
    shutil.copytree(run, target)
    for name in drop:
        (target / name).unlink()
    return target


def test_run_copied_without_preprocessing_and_spec_is_refused_naming_both(run, tmp_path):
    copy = _copy(run, tmp_path, "preprocessing.json", "spec.json")
    with pytest.raises(InputDataError) as info:
        hepnn.Tagger.load(copy)
    message = str(info.value)
    assert f"{copy / 'preprocessing.json'}: missing, but the run was trained with it" in message
    assert "spec.json, which records it, is missing too" in message and "provenance.json says" in message
    assert f"Copy preprocessing.json and spec.json from the run's original folder into {copy}" in message


def test_run_copied_without_preprocessing_only_is_refused(run, tmp_path):
    with pytest.raises(InputDataError, match=r"preprocessing.json: missing, .*spec.json says so.*Copy preprocessing.json from"):
        hepnn.Tagger.load(_copy(run, tmp_path, "preprocessing.json"))


def test_kfold_run_copied_without_preprocessing_is_refused(kfold_run, tmp_path):
    # KFoldTagger.load read preprocessing.json only when present: the folds scored raw inputs
    with pytest.raises(InputDataError, match="preprocessing.json: missing"):
        hepnn.Tagger.load(_copy(kfold_run, tmp_path, "preprocessing.json"))
    with pytest.raises(InputDataError, match="Copy preprocessing.json and spec.json"):
        hepnn.Tagger.load(_copy(kfold_run, tmp_path / "b", "preprocessing.json", "spec.json"))
    # KFoldTagger.load itself (Dask workers rebuild k-fold taggers with it) checks too
    from hepnn.training.kfold import KFoldTagger

    with pytest.raises(InputDataError, match="preprocessing.json: missing"):
        KFoldTagger.load(_copy(kfold_run, tmp_path / "c", "preprocessing.json"))


def test_run_trained_on_hand_built_arrays_legitimately_has_no_preprocessing(run, folder, tmp_path):
    config = load_config(run / "config.yaml")
    data = dict(hepnn.io.load(config, standardize=False))  # plain arrays: no preprocessing is saved
    hand = _train(config, tmp_path / "hand", data=data)
    assert not (hand / "preprocessing.json").exists()
    (hand / "spec.json").unlink()  # and an older run without spec.json
    tagger = hepnn.Tagger.load(hand)
    assert tagger.preprocessing is None
    events = uproot.open(folder / "events.root")["Events"].arrays(filter_name=tagger.required_branches)
    raw = hepnn.io.represent(config, events)["jet"]
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(tagger.predict(events))),
                               tagger.model.predict({"jet": raw}, verbose=0).reshape(-1), rtol=1e-5, atol=1e-6)


def test_not_a_run_directory_lists_the_files_a_run_needs(tmp_path):
    (tmp_path / "config.yaml").write_text("{}")
    with pytest.raises(HepnnError) as info:
        hepnn.Tagger.load(tmp_path)
    message = str(info.value)
    assert "model.keras missing" in message
    assert all(name in message for name in ("config.yaml", "model.keras", "spec.json", "preprocessing.json"))


# --- 2. and 6. rows line up with the input jets ---------------------------------------------------


def _reference(run_dir: Path, path: Path, fold_of=None) -> tuple[np.ndarray, list]:
    """Brute force: every jet of every event, one at a time, through the saved standardisation and
    the model (k-fold: the model of the fold ``fold_of(path, events, entries, jets)`` gives each jet)."""
    from hepnn.models import load_model
    from hepnn.preprocessing import Preprocessor

    prep = Preprocessor.load(run_dir / "preprocessing.json")
    mean, scale = prep.mean_["jet"], prep.scale_["jet"]
    if fold_of is None:
        models = [load_model(run_dir / "model.keras")]
    else:
        models = [load_model(p) for p in sorted((run_dir / "folds").glob("*/model.keras"))]
    tree = uproot.open(path)["Events"]
    pt, eta, mass = (tree[f"Jet_{v}"].array(library="np") for v in ("pt", "eta", "mass"))  # one array per event
    number = tree["event"].array(library="np")
    rows, x, which = [], [], []
    for entry in range(len(pt)):
        for j in range(len(pt[entry])):
            raw = [np.log(float(pt[entry][j])), float(eta[entry][j]), float(mass[entry][j])]
            x.append((np.asarray(raw) - mean) / scale)
            rows.append((entry, j))
    x = np.asarray(x, dtype=np.float32)
    per_model = [m.predict({"jet": x}, verbose=0).reshape(-1) for m in models]
    entries, jets = (np.array([r[i] for r in rows], dtype=np.int64) for i in (0, 1))
    which = np.zeros(len(rows), np.int64) if fold_of is None else fold_of(path, number[entries], entries, jets)
    return np.choose(which, per_model), rows


def _by_position(run_dir):
    from hepnn.io.split import assign_fold, fold_key

    seed = load_config(run_dir / "config.yaml").data.split.seed
    return lambda path, event, entry, jet: assign_fold(fold_key(path.name, entry, jet, seed), 3).astype(np.int64)


def _by_event(run_dir):
    from hepnn.io.split import assign_fold, event_fold_key

    seed = load_config(run_dir / "config.yaml").data.split.seed
    return lambda path, event, entry, jet: assign_fold(event_fold_key(event, seed), 3).astype(np.int64)


def _rows(scores) -> list:
    counts = ak.to_numpy(ak.num(scores))
    return [(e, j) for e, n in enumerate(counts) for j in range(n)]


@pytest.mark.parametrize("which", ["plain", "kfold by position",
                                   pytest.param("kfold by event", marks=pytest.mark.slow)])  # slow: same code path
def test_file_drivers_line_up_with_a_brute_force_loop(which, request, folder, tmp_path):
    pytest.importorskip("dask_awkward")
    from hepnn.scale import predict_files

    fixture, rule = {"plain": ("run", None), "kfold by position": ("kfold_run", _by_position),
                     "kfold by event": ("kfold_event_run", _by_event)}[which]
    run_dir = request.getfixturevalue(fixture)
    fold_of = rule(run_dir) if rule else None
    tagger = hepnn.Tagger.load(run_dir)
    for path, small in ((folder / "events.root", 97), (folder / "other.root", 7)):  # chunks of 7: some hold no jet
        expected, rows = _reference(run_dir, path, fold_of)
        n_jets = ak.to_numpy(uproot.open(path)["Events"]["nJet"].array())
        for step in (small, "100 MB"):
            scores = tagger.predict_file(path, step_size=step)
            assert ak.to_numpy(ak.num(scores)).tolist() == n_jets.tolist() and _rows(scores) == rows
            np.testing.assert_allclose(ak.to_numpy(ak.flatten(scores)), expected, rtol=1e-5, atol=1e-6)
        lazy = tagger.predict_dask([path], step_size=small).compute()
        assert ak.to_numpy(ak.num(lazy)).tolist() == n_jets.tolist()
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(lazy)), expected, rtol=1e-5, atol=1e-6)
        out = tmp_path / path.stem
        friend = uproot.open(predict_files(run_dir, [path], out, step_size=small, log=quiet)[str(path)])["Events"].arrays()
        assert ak.to_numpy(friend["nJet"]).tolist() == n_jets.tolist()
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(friend["Jet_hepnnScore"])), expected, rtol=1e-5, atol=1e-6)
    assert (n_jets == 0).any()  # other.root has events without jets; events.root has events without any passing the cuts


@pytest.mark.parametrize("which", ["plain", "kfold by position"])
def test_predict_dask_scores_a_file_listed_twice_twice(which, run, kfold_run, folder):
    pytest.importorskip("dask_awkward")
    tagger = hepnn.Tagger.load(run if which == "plain" else kfold_run)
    a, b = folder / "events.root", folder / "other.root"
    eager = tagger.predict_file([a, b, a], step_size=50)
    assert len(eager) == 3
    lazy = tagger.predict_dask([a, b, a], step_size=50).compute()
    whole = ak.concatenate(eager)
    assert len(lazy) == len(whole) == 2 * 400 + 90
    assert ak.to_numpy(ak.num(lazy)).tolist() == ak.to_numpy(ak.num(whole)).tolist()
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(lazy)), ak.to_numpy(ak.flatten(whole)), rtol=1e-6, atol=1e-7)


# --- 3. an autoencoder's ONNX export gives the Tagger's anomaly score ------------------------------


@pytest.mark.parametrize("kind", ["flat", pytest.param("sequence", marks=pytest.mark.slow)])  # slow: a second export
def test_autoencoder_onnx_export_has_the_taggers_anomaly_score(kind, folder, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    from hepnn.training.export import export_onnx

    inputs = ({"jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass"],
                       "transforms": {"Jet_pt": {"log": True}}}} if kind == "flat" else
              {"tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx", "max_length": 5,
                          "pad_value": -999.0, "variables": ["Track_pt", "Track_d0sig"],
                          "transforms": {"Track_pt": {"log": True}}}})
    config = load_config(_config(folder / "events.root", data={"inputs": inputs, "cuts": []},
                                 model={"name": "autoencoder", "units": [4], "latent_dim": 2},
                                 training={"train_classes": ["light"]}, evaluation={"background": "light"}))
    run_dir = _train(config, tmp_path / "ae")
    tagger = hepnn.Tagger.load(run_dir)
    events = uproot.open(folder / "other.root")["Events"].arrays(filter_name=tagger.required_branches)
    expected = ak.to_numpy(ak.flatten(tagger.predict(events)))
    name = tagger.inputs[0]
    for in_graph in (True, False):
        path = export_onnx(run_dir, out=tmp_path / f"export_{in_graph}", with_preprocessing=in_graph)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()][1:] == ["anomaly_score"]
        feed = tagger.represent(events)[name] if in_graph else tagger.tensors(events)[name]  # raw, or standardised
        got = session.run(["anomaly_score"], {name: np.asarray(feed, np.float32)})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert json.loads((path.parent / "metadata.json").read_text())["output"].startswith("output 0: reconstruction")
    if kind == "sequence":  # jets without tracks score 0 (no real slot), the others their mean over real slots
        assert (expected == 0).any() and (expected > 0).any()


# --- 4. hepnn tune: a retried trial resumes the killed trial's run ---------------------------------


def test_retried_tune_trial_resumes_the_killed_trials_run(run, monkeypatch, tmp_path):
    optuna = pytest.importorskip("optuna")
    from hepnn import _faults
    from hepnn.tune.objective import TrainingObjective
    from hepnn.tune.space import load_space
    from hepnn.tune.study import fill_queue, make_storage, open_study, run_worker, storage_url

    base = load_config(run / "config.yaml", ["training.epochs=3", "data.cuts=[]"])
    data = hepnn.io.load(base)
    space = load_space({"model.units": [[4]]})
    lines: list[str] = []
    objective = TrainingObjective(base, space, tmp_path, data=data, log=lines.append)
    study = open_study("retry", make_storage(storage_url(tmp_path), heartbeat_interval=None), "minimize", "random", 0)
    fill_queue(study, 1, space, "random", log=quiet)
    trained: list[int] = []

    def crash(point, info):
        if point == "epoch":
            trained.append(info["epoch"])
            if info["epoch"] == 2 and len(trained) == 2:
                raise KeyboardInterrupt  # the worker dies after the checkpoint of epoch 2
    monkeypatch.setattr(_faults, "HOOK", crash)
    with pytest.raises(KeyboardInterrupt):
        run_worker(study, objective, log=quiet)
    killed = study.trials[0]
    first = (tmp_path / "trials" / "0" / "history.csv").read_text()
    assert killed.state == optuna.trial.TrialState.FAIL and len(first.splitlines()) == 3
    study.enqueue_trial(dict(killed.params), user_attrs={"retry_of": killed.number}, skip_if_exists=False)
    assert run_worker(study, objective, log=quiet) == 1
    retry = study.trials[1]
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.user_attrs["retry_of"] == 0
    assert trained == [1, 2, 3], "the retry trains epoch 3 only"
    assert not (tmp_path / "trials" / "0").exists()
    history = (tmp_path / "trials" / "1" / "history.csv").read_text().splitlines()
    assert history[:3] == first.splitlines() and len(history) == 4
    assert any("resuming the run of killed trial 0" in line for line in lines)
    # trials.csv shows the killed trial's folder where it is now (the retry's)
    from hepnn.tune.study import write_results

    write_results(study, tmp_path / "results", plots=False, log=quiet)
    import csv

    with open(tmp_path / "results" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["number"], r["state"], r["retry_of"]) for r in rows] == [("0", "FAIL", ""), ("1", "COMPLETE", "0")]
    assert rows[0]["run_dir"] == rows[1]["run_dir"] and rows[1]["run_dir"].endswith(str(Path("trials", "1")))


def test_killed_trial_without_a_checkpoint_leaves_no_folder(tmp_path):
    pytest.importorskip("optuna")
    from hepnn.tune.objective import TrainingObjective

    from hepnn.tune.space import load_space

    objective = TrainingObjective(_config(tmp_path / "x.root"), load_space({"model.units": [[4]]}), tmp_path, log=quiet)
    (tmp_path / "trials" / "0" / "checkpoints").mkdir(parents=True)
    (tmp_path / "trials" / "0" / "config.yaml").write_text("{}")

    class Trial:
        number, user_attrs = 1, {"retry_of": 0}

    objective._take_over_killed_run(Trial(), objective.run_dir(1))
    assert not (tmp_path / "trials" / "0").exists() and not (tmp_path / "trials" / "1").exists()


def test_dead_worker_check_reads_proc_once_per_pass(tmp_path, monkeypatch):
    optuna = pytest.importorskip("optuna")
    from hepnn.tune import study as study_module

    storage = study_module.make_storage(study_module.storage_url(tmp_path), heartbeat_interval=None)
    study = study_module.open_study("proc", storage, "minimize", "random", 0)
    study_module.fill_queue(study, 4, log=quiet)
    for _ in range(4):
        trial_id = study_module._claim_waiting_trial(study)
        storage.set_trial_system_attr(trial_id, "hepnn_worker", {"host": "elsewhere", "pid": 1})
    calls = []
    real = study_module._this_process
    monkeypatch.setattr(study_module, "_this_process", lambda: calls.append(1) or real())
    study_module._fail_dead_local_trials(study)
    assert len(calls) == 1
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING] * 4


# --- 5. flavour tagging: the efficiency-vs-pT plot honours the weights -----------------------------


def _flavour_module():
    from hepnn.plugins import load_analysis

    return load_analysis(ROOT / "analyses" / "flavour_tagging")


def test_efficiency_vs_pt_weighs_the_jets_like_a_brute_force_count():
    analysis = _flavour_module()
    module = __import__(type(analysis).__module__, fromlist=["efficiency_vs_pt"])
    rng = np.random.default_rng(3)
    n = 3000
    labels = rng.choice([0, 1, 2], n)
    probs = rng.dirichlet([1, 1, 1], n)
    probs[labels == 2, 2] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    pt = rng.uniform(20, 250, n)
    weights = rng.uniform(0.1, 3.0, n) * np.where(pt > 100, 4.0, 1.0)
    eff = module.efficiency_vs_pt(probs, labels, ["light", "c", "b"], pt, 0.7, weights=weights)
    from hepnn.training.evaluate import flavour_discriminant

    disc = flavour_discriminant(probs, ["light", "c", "b"], "b")
    b = labels == 2
    assert np.sum(weights[b & (disc >= eff["cut"])]) / np.sum(weights[b]) == pytest.approx(0.7, abs=0.002)
    edges = eff["edges"]
    for name, label in (("b", 2), ("c", 1), ("light", 0)):
        for i in range(len(edges) - 1):
            sel = (labels == label) & (pt >= edges[i]) & (pt < edges[i + 1])
            w = weights[sel]
            rate = np.sum(w * (disc[sel] >= eff["cut"])) / np.sum(w)
            n_eff = np.sum(w) ** 2 / np.sum(w**2)
            assert eff[name][0, i] == pytest.approx(rate, rel=1e-9)
            assert eff[name][1, i] == pytest.approx(np.sqrt(max(rate * (1 - rate), 1 / n_eff) / n_eff), rel=1e-9)
    unweighted = module.efficiency_vs_pt(probs, labels, ["light", "c", "b"], pt, 0.7)
    assert not np.allclose(unweighted["b"][0], eff["b"][0]), "the weights must change the rates"


def test_flavour_plot_hook_passes_the_weights_of_a_weighted_evaluation(monkeypatch, tmp_path):
    analysis = _flavour_module()
    module = __import__(type(analysis).__module__, fromlist=["efficiency_vs_pt"])
    seen = []
    real = module.efficiency_vs_pt
    monkeypatch.setattr(module, "efficiency_vs_pt", lambda *a, **k: seen.append(k.get("weights")) or real(*a, **k))
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.choice([0, 1, 2], n)
    weights = rng.uniform(0.5, 2.0, n)
    for weighted in (True, False):
        config = load_config(_config(tmp_path / "x.root", evaluation={"weighted": weighted}))
        test = {"task": "multiclass", "classes": ["light", "c", "b"], "outputs": rng.dirichlet([1, 1, 1], n),
                "label": labels, "weight": weights, "config": config, "data": {"spec_Jet_pt": rng.uniform(20, 200, n)}}
        written = analysis.plots(tmp_path / "report", {"gru": {"test": test}})
        assert [p.name for p in written] == ["btag_efficiency_pt_gru.png"]
    assert seen[0] is not None and np.array_equal(seen[0], weights) and seen[1] is None
