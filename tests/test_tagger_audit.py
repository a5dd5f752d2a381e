"""Audit of the deployment API: a trained tagger used from analysis code gives the scores of its run.

Each test is a bug that gave wrong scores or an unclear error:

- a k-fold tagger keyed by ``data.event_key`` left the event branch out of ``required_branches``:
  ``predict_dask`` (which reads only those) and the documented
  ``tree.arrays(filter_name=tagger.required_branches)`` scored every jet with the mean of the fold
  models, including the ones trained on its event;
- a k-fold tagger keeps per-call state (which model, whether fold keys apply): a call made between
  two chunks of ``iter_file``, or from another thread, changed the scores of the other call;
- a ``preprocessing.json`` that does not describe the run's inputs as ``config.yaml`` does (an input
  missing, no fitted mean, other variables or transforms) was applied silently;
- an ONNX export with the preprocessing in the graph failed with "disagrees with Keras" and no reason
  when real sequence elements sit at the pad value in every feature (neutral candidates);
- ``tagger.predict(events.Jet)`` of a k-fold tagger (coffea NanoEvents, eager or dask) ignored the
  parent's event numbers: the fold mean;
- a Dask worker kept a run's tagger by directory only: a run trained again in place was scored with
  the old models;
- an opset the converter lacks was reported as a layer without an ONNX conversion;
- with the preprocessing in the graph, a run trained with ``data.on_nan: replace`` returned NaN for a
  NaN input where the Tagger replaces it by ``data.nan_value``.
"""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.config import load_config
from hepnn.exceptions import HepnnError, InputDataError

pytest.importorskip("keras")
pytest.importorskip("pythia8mc")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

from test_tagger_collections import train  # noqa: E402


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from hepnn.datasets import generate

    folder = tmp_path_factory.mktemp("audit_data")
    return generate("ttbar", 150, seed=5, out=folder / "ttbar.root", layout="per_event", progress=False)


@pytest.fixture(scope="module")
def kfold_run(sample, tmp_path_factory):
    config = load_config({
        "data": {
            "layout": "per_event", "files": [{"path": str(sample), "tree": "Events"}], "jets": "Jet",
            "event_key": "event",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "b": 5}},
            "inputs": {"jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_nConstituents"],
                               "transforms": {"Jet_pt": {"log": True}}}},
            "split": {"train": 0.7, "val": 0.15, "test": 0.15, "seed": 3},
        },
        "model": {"name": "dense", "units": [8], "dropout": 0.0},
        "training": {"epochs": 1, "batch_size": 32, "folds": 3, "verbose": 0},
    })
    return train(config, tmp_path_factory.mktemp("audit_runs") / "kfold")


def flat(scores):
    return ak.to_numpy(ak.flatten(scores))


def fold_expected(run, events):
    """Each jet scored by the model of its event's fold (the rule in folds.json), and the fold mean."""
    from hepnn.io.split import assign_fold, event_fold_key
    from hepnn.models import load_model
    from hepnn.preprocessing import Preprocessor
    from hepnn.training.kfold import fold_dirs

    config = load_config(run / "config.yaml")
    raw = hepnn.io.represent(config, events)
    x = {"jet": Preprocessor.load(run / "preprocessing.json").transform(raw)["jet"]}
    per_model = [load_model(p / "model.keras").predict(x, verbose=0).reshape(-1) for p in fold_dirs(run, 3)]
    event_of_jet = np.repeat(ak.to_numpy(events["event"]), ak.to_numpy(ak.num(events["Jet_pt"])))
    fold = assign_fold(event_fold_key(event_of_jet, config.data.split.seed), 3)
    return np.choose(fold, per_model), np.mean(per_model, axis=0)


def test_kfold_required_branches_carry_the_event_key(kfold_run, sample):
    # before: ['Jet_pt', 'Jet_eta', 'Jet_mass', 'Jet_nConstituents']; reading only those (predict_dask,
    # the documented filter_name=tagger.required_branches) gave the mean of the 3 fold models
    tagger = hepnn.Tagger.load(kfold_run)
    assert tagger.required_branches == ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_nConstituents", "event"]
    tree = uproot.open(sample)["Events"]
    own_fold, mean = fold_expected(kfold_run, tree.arrays())
    assert np.max(np.abs(own_fold - mean)) > 1e-4, "the fold models must differ for this test to mean anything"
    selected = flat(tagger.predict(tree.arrays(filter_name=tagger.required_branches)))
    np.testing.assert_allclose(selected, own_fold, rtol=0, atol=1e-6)
    pytest.importorskip("dask_awkward")
    lazy = flat(tagger.predict_dask(sample, step_size=7).compute(scheduler="sync"))
    np.testing.assert_allclose(lazy, own_fold, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(lazy, flat(tagger.predict_file(sample, step_size=7)))


def test_kfold_tagger_calls_do_not_share_their_fold_state(kfold_run, sample):
    tagger = hepnn.Tagger.load(kfold_run)
    events = uproot.open(sample)["Events"].arrays()
    no_key = events[[f for f in events.fields if f != "event"]]
    own_fold, mean = fold_expected(kfold_run, events)
    # a call between two chunks of iter_file: the later chunks were scored with the fold mean (max |diff| ~ 5e-3)
    parts = []
    for _, scores in tagger.iter_file(sample, step_size=7):
        parts.append(scores)
        tagger.predict(no_key[:3])
    assert len(parts) > 1
    np.testing.assert_allclose(flat(ak.concatenate(parts)), own_fold, rtol=0, atol=1e-6)
    # two threads, one with the event numbers and one without: each gets its own answer
    out: dict = {}

    def run(name, arrays):
        out[name] = [flat(tagger.predict(arrays, batch_size=16)) for _ in range(4)]

    threads = [threading.Thread(target=run, args=("keyed", events)), threading.Thread(target=run, args=("mean", no_key))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for scores in out["keyed"]:
        np.testing.assert_allclose(scores, own_fold, rtol=0, atol=1e-6)
    for scores in out["mean"]:
        np.testing.assert_allclose(scores, mean, rtol=0, atol=1e-6)


@pytest.mark.parametrize("change, message", [
    (lambda d: (d["mean_"].pop("jet"), d["scale_"].pop("jet")), "no fitted mean and scale for input 'jet'"),
    (lambda d: d["inputs"].pop("jet"), "no entry for input 'jet'"),
    (lambda d: d["inputs"]["jet"].update(transforms={}), r"transforms: \{\} there"),
    (lambda d: d["inputs"]["jet"]["variables"].reverse(), "variables: .'Jet_nConstituents'"),
    (lambda d: d["inputs"]["jet"].pop("standardize"), "standardize: False there, True in config.yaml"),
])
def test_preprocessing_that_disagrees_with_the_config_is_named(kfold_run, sample, tmp_path, change, message):
    # before: loaded, and the scores moved by up to ~1 (raw or mis-ordered inputs fed to the model)
    run = tmp_path / "run"
    shutil.copytree(kfold_run, run)
    record = json.loads((run / "preprocessing.json").read_text())
    change(record)
    (run / "preprocessing.json").write_text(json.dumps(record))
    with pytest.raises(InputDataError, match=message) as info:
        hepnn.Tagger.load(run)
    assert "preprocessing.json" in str(info.value) and "train the run again" in str(info.value)


def test_preprocessing_with_defaults_left_out_still_loads(kfold_run, sample, tmp_path):
    # keys whose value is the default (pad_value 0, fit statistics the scores do not use) may be absent
    run = tmp_path / "run"
    shutil.copytree(kfold_run, run)
    record = json.loads((run / "preprocessing.json").read_text())
    record["inputs"]["jet"].pop("pad_value")
    record.pop("m2_")
    (run / "preprocessing.json").write_text(json.dumps(record))
    events = uproot.open(sample)["Events"].arrays()
    np.testing.assert_array_equal(flat(hepnn.Tagger.load(run).predict(events)),
                                  flat(hepnn.Tagger.load(kfold_run).predict(events)))


def neutral_config(sample, pad_value):
    """PF candidates by d0, z0 and charge: a neutral one has all three at 0, the default pad value."""
    return load_config({
        "data": {
            "layout": "per_event", "files": [{"path": str(sample), "tree": "Events"}], "jets": "Jet",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
            "inputs": {"cands": {"kind": "sequence", "collection": "PFCand", "link": "PFCand_jetIdx", "max_length": 8,
                                 "variables": ["PFCand_d0", "PFCand_z0", "PFCand_charge"], "pad_value": pad_value,
                                 "sort_by": {"variable": "PFCand_pt"}}},
        },
        "model": {"name": "deepsets", "phi_units": [8], "dense_units": [8]},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })


def test_onnx_export_names_real_elements_at_the_pad_value(sample, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from hepnn.training.export import export_onnx

    run = train(neutral_config(sample, 0.0), tmp_path / "pad0")
    raw = hepnn.io.represent(load_config(run / "config.yaml"), uproot.open(sample)["Events"].arrays())
    assert (raw["cands_mask"] & np.all(raw["cands"] == 0.0, axis=-1)).sum() > 50  # neutral candidates
    # before: "disagrees with Keras on raw test jets by 0.1 (> tolerance 1e-05)", and no reason
    with pytest.raises(HepnnError, match=r"input 'cands': \d+ of \d+ real elements at pad_value 0 .*pad_value") as info:
        export_onnx(run, with_preprocessing=True)
    assert "disagrees with Keras" in str(info.value)
    # what the message says to do works: a pad value no candidate takes, and the graph scores like the Tagger
    run = train(neutral_config(sample, -999.0), tmp_path / "pad999")
    path = export_onnx(run, with_preprocessing=True)
    events = uproot.open(sample)["Events"].arrays()
    tagger = hepnn.Tagger.load(run)
    raw = hepnn.io.represent(tagger.config, events)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"cands": raw["cands"].astype(np.float32)})[0]
    scores = tagger.predict(events)
    expected = np.stack([flat(scores[c]) for c in tagger.classes], axis=1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Missing cross-reference index:RuntimeWarning")
def test_kfold_tagger_on_a_nanoevents_jet_collection_uses_the_event_numbers(kfold_run, sample, tmp_path):
    # before: tagger.predict(events.Jet) (the coffea pattern) read only the Jet_* fields and scored every
    # jet with the mean of the 3 fold models (max |diff| ~ 5e-3), eager and dask alike
    nanoevents = pytest.importorskip("coffea.nanoevents")
    events = uproot.open(sample)["Events"].arrays()
    path = tmp_path / "nano.root"
    jets = ak.zip({k[4:]: events[k] for k in ("Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_nConstituents")})
    ones = np.ones(len(events), np.uint32)
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {"Jet": jets.type.content, "event": events["event"].type.content,
                                   "run": np.uint32, "luminosityBlock": np.uint32})
        tree.extend({"Jet": jets, "event": events["event"], "run": ones, "luminosityBlock": ones})
    own_fold, _ = fold_expected(kfold_run, events)
    tagger = hepnn.Tagger.load(kfold_run)
    factory, schema = nanoevents.NanoEventsFactory, nanoevents.NanoAODSchema
    eager = factory.from_root({str(path): "Events"}, schemaclass=schema, mode="eager").events()
    np.testing.assert_allclose(flat(tagger.predict(eager.Jet)), own_fold, rtol=0, atol=1e-6)
    # a selected collection has no parent to take the event numbers from: the fold mean, as documented
    assert len(flat(tagger.predict(eager.Jet[eager.Jet.pt > 0]))) == len(own_fold)
    pytest.importorskip("dask_awkward")
    lazy = factory.from_root({str(path): "Events"}, schemaclass=schema, mode="dask").events()
    np.testing.assert_allclose(flat(tagger.predict(lazy.Jet).compute(scheduler="sync")), own_fold, rtol=0, atol=1e-6)


def test_pickled_partition_scorer_loads_a_run_trained_again(kfold_run, sample, tmp_path):
    # before: a Dask worker kept the tagger per run directory only, so after the run was trained
    # again in place, workers went on scoring with the old models
    import pickle

    from hepnn.models import load_model
    from hepnn.training.tagger import _PartitionScorer

    run = tmp_path / "run"
    shutil.copytree(kfold_run, run)
    events = uproot.open(sample)["Events"].arrays()
    before = flat(pickle.loads(pickle.dumps(_PartitionScorer(hepnn.Tagger.load(run), None)))(events))
    np.testing.assert_array_equal(before, flat(hepnn.Tagger.load(run).predict(events)))
    for k in range(3):  # trained again: other weights in every fold model
        path = run / "folds" / str(k) / "model.keras"
        model = load_model(path)
        model.set_weights([w * 1.5 for w in model.get_weights()])
        model.save(path)
    after = flat(pickle.loads(pickle.dumps(_PartitionScorer(hepnn.Tagger.load(run), None)))(events))
    np.testing.assert_array_equal(after, flat(hepnn.Tagger.load(run).predict(events)))
    assert np.max(np.abs(after - before)) > 1e-3


def test_export_with_an_opset_the_converter_lacks_says_so(kfold_run, tmp_path):
    # before: "cannot export ... (ValueError: make_sure failure: Opset 20 is not supported yet ...); the model's
    # layers are Dense, ...: a layer without an ONNX conversion makes the export fail", blaming the layers
    pytest.importorskip("onnxruntime")
    tf2onnx = pytest.importorskip("tf2onnx")
    from tf2onnx import constants

    from hepnn.training.export import export_onnx

    too_new = max(constants.OPSET_TO_IR_VERSION) + 2
    with pytest.raises(HepnnError, match=rf"opset: received {too_new}; .*tf2onnx {tf2onnx.__version__}\) writes "
                                          rf"opsets \d+ to {too_new - 2}") as info:
        export_onnx(kfold_run, out=tmp_path / "export", opset=too_new)
    assert "layer" not in str(info.value) and not (tmp_path / "export").exists()


def test_onnx_with_preprocessing_replaces_nan_like_the_reader(tmp_path):
    # a run trained with data.on_nan: replace scores a jet with a NaN branch value as if it held
    # data.nan_value; before, the graph with the preprocessing inside returned NaN for it
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from hepnn.training.export import export_onnx

    rng = np.random.default_rng(7)
    for name, shift in (("sig", 1.0), ("bkg", 0.0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["jets"] = {"a": rng.normal(shift + 50, 10, 200).astype(np.float32),
                         "b": rng.gamma(2.0, 3.0, 200).astype(np.float32)}
    config = load_config({
        "data": {"directory": str(tmp_path), "on_nan": "replace", "nan_value": 0.5,
                 "files": [{"path": "sig.root", "tree": "jets", "label": 1}, {"path": "bkg.root", "tree": "jets", "label": 0}],
                 "inputs": {"jet": {"kind": "flat", "variables": ["a", "b"], "transforms": {"b": {"log1p": True}}}}},
        "model": {"name": "dense", "units": [8]},
        "training": {"epochs": 1, "verbose": 0, "early_stopping": None},
    })
    run = train(config, tmp_path / "run")
    path = export_onnx(run, with_preprocessing=True)
    raw = np.stack([uproot.open(tmp_path / "sig.root")["jets"][v].array(library="np") for v in ("a", "b")], axis=1)
    raw[3, 0], raw[5, 1], raw[8] = np.nan, np.inf, np.nan
    tagger = hepnn.Tagger.load(run)
    expected = tagger.predict({"a": raw[:, 0], "b": raw[:, 1]})
    replaced = np.where(np.isfinite(raw), raw, np.float32(0.5))
    np.testing.assert_array_equal(expected, tagger.predict({"a": replaced[:, 0], "b": replaced[:, 1]}))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"jet": raw})[0].reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    import onnx

    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert meta["nan_value"] == 0.5
