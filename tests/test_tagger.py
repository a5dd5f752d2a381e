"""hepnn.Tagger: a run directory applied to uproot-read events, selection-free and aligned."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.config import load_config
from hepnn.exceptions import HepnnError, InputDataError
from hepnn.training.tagger import _WholeBatches

pytest.importorskip("keras")
pytest.importorskip("pythia8mc")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")


def quiet(_):
    pass


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from hepnn.datasets import generate

    folder = tmp_path_factory.mktemp("tagger_data")
    return {
        "top": generate("top", 150, seed=1, out=folder / "top.root", progress=False),
        "qcd": generate("qcd", 150, seed=2, out=folder / "qcd.root", progress=False),
        "ttbar": generate("ttbar", 150, seed=3, out=folder / "ttbar.root", layout="per_event", progress=False),
    }


def per_jet_config(files):
    return load_config({
        "data": {
            "layout": "per_jet",
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0},
                      {"path": str(files["top"]), "tree": "jets", "label": 1}],
            # a cut that removes jets at training time: the tagger must still score them
            "cuts": [{"variable": "jet_tau32", "max": 0.7}],
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "inputs": {
                "jet": {"kind": "flat", "variables": ["jet_pt", "jet_mass", "jet_tau32", "jet_tau21"],
                        "transforms": {"jet_pt": {"log": True}}},
                "parts": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt_frac"], "max_length": 12,
                          "sort_by": {"variable": "part_pt"}},
            },
        },
        "model": {"name": "deepsets", "phi_units": [8], "dense_units": [8], "branch_units": 4},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })


def per_event_config(files):
    return load_config({
        "data": {
            "layout": "per_event",
            "files": [{"path": str(files["ttbar"]), "tree": "Events"}],
            "jets": "Jet",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
            "cuts": [{"variable": "Jet_pt", "min": 40.0}],
            "inputs": {
                "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_tau32"]},
                "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx", "max_length": 6,
                           "variables": ["Track_d0sig", "Track_z0sig", "Track_pt"], "sort_by": {"variable": "Track_pt"}},
            },
        },
        "model": {"name": "deepsets", "phi_units": [8], "dense_units": [8], "branch_units": 4},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })


def no_cuts(config, **data):
    return dataclasses.replace(config, data=dataclasses.replace(config.data, cuts=(), **data))


def train(config, out):
    from hepnn.training.trainer import Trainer

    Trainer(config, log=quiet).fit(out, data=hepnn.io.load(config))
    return out


@pytest.fixture(scope="module")
def jet_run(files, tmp_path_factory):
    return train(per_jet_config(files), tmp_path_factory.mktemp("runs") / "per_jet")


@pytest.fixture(scope="module")
def event_run(files, tmp_path_factory):
    return train(per_event_config(files), tmp_path_factory.mktemp("runs") / "per_event")


def expected_scores(tagger, config):
    """model.predict on the reader's tensors of every jet (no cuts), with the run's preprocessing."""
    raw = hepnn.io.load(config, standardize=False)
    x = tagger.preprocessing.transform(dict(raw))
    return np.asarray(tagger.model.predict({n: x[n] for n in tagger.inputs}, verbose=0)), raw


def test_load_exposes_what_the_run_needs(jet_run):
    tagger = hepnn.Tagger.load(jet_run)
    assert tagger.task == "binary" and tagger.inputs == ["jet", "parts"] and tagger.layout == "per_jet"
    assert tagger.classes == ["qcd", "top"]
    assert set(tagger.required_branches) == {
        "jet_pt", "jet_mass", "jet_tau32", "jet_tau21", "jet_eta", "jet_phi", "jet_energy",
        "part_px", "part_py", "part_pz", "part_energy", "part_pt",
    }
    assert "jet_tau32" in tagger.required_branches  # an input; the cut itself needs nothing
    assert "binary" in repr(tagger)
    with pytest.raises(HepnnError, match="not a trained run directory"):
        hepnn.Tagger.load(jet_run.parent)


def test_per_jet_predict_matches_the_reader_and_ignores_cuts(files, jet_run):
    tagger = hepnn.Tagger.load(jet_run)
    config = no_cuts(tagger.config)
    expected, raw = expected_scores(tagger, config)
    n_qcd = uproot.open(files["qcd"])["jets"].num_entries
    events = {name: uproot.open(files[name])["jets"].arrays() for name in ("qcd", "top")}
    got = np.concatenate([tagger.predict(events["qcd"]), tagger.predict(events["top"])])
    assert isinstance(got, np.ndarray) and got.shape == (len(expected),) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected.ravel(), rtol=0, atol=1e-6)
    assert np.any(ak.to_numpy(events["qcd"].jet_tau32) >= 0.7), "the cut should remove some jets"
    # numpy dicts: the branches as arrays, and the reader's tensors
    as_dict = {k: events["top"][k] for k in tagger.required_branches}
    as_dict["jet_pt"] = ak.to_numpy(as_dict["jet_pt"])
    np.testing.assert_allclose(tagger.predict(as_dict), got[n_qcd:], atol=1e-6)
    np.testing.assert_allclose(tagger.predict_numpy(raw), got, atol=1e-6)
    np.testing.assert_allclose(tagger.predict_numpy(tagger.preprocessing.transform(dict(raw)), preprocessed=True),
                               got, atol=1e-6)
    no_mask = {k: v for k, v in raw.items() if not k.endswith("_mask")}
    np.testing.assert_allclose(tagger.predict_numpy(no_mask), got, atol=1e-6)
    # empty input
    assert tagger.predict(events["top"][:0]).shape == (0,)


def test_per_event_predict_is_jagged_and_aligned(files, event_run):
    tagger = hepnn.Tagger.load(event_run)
    assert tagger.task == "multiclass" and tagger.classes == ["light", "c", "b"]
    events = uproot.open(files["ttbar"])["Events"].arrays()
    scores = tagger.predict(events)
    assert ak.num(scores).tolist() == events.nJet.tolist()
    assert scores.fields == ["light", "c", "b"]
    flat = np.stack([ak.to_numpy(ak.flatten(scores[c])) for c in tagger.classes], axis=1)
    expected, _ = expected_scores(tagger, no_cuts(tagger.config))
    assert len(expected) == int(ak.sum(events.nJet)), "all jets, including those below the training cut"
    np.testing.assert_allclose(flat, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(flat.sum(axis=1), 1.0, atol=1e-5)
    # jets without tracks (fully masked sequences) get finite scores too
    n_tracks = hepnn.io.represent(tagger.config, events)["tracks_mask"].sum(axis=1)
    assert np.isfinite(flat).all() and len(n_tracks) == len(flat)
    # a selection made by the user afterwards: scores stay aligned with Jet_pt
    events = ak.with_field(events, scores.b, "Jet_hepnnScore")
    assert ak.all(ak.num(events.Jet_hepnnScore) == ak.num(events.Jet_pt))
    assert tagger.predict(events[:0]).type.length == 0


def test_tensors_are_what_predict_feeds_the_model(files, jet_run, event_run):
    from hepnn.models.inference import predict

    for run, name, tree in ((jet_run, "top", "jets"), (event_run, "ttbar", "Events")):
        tagger = hepnn.Tagger.load(run)
        events = uproot.open(files[name])[tree].arrays()
        x = tagger.tensors(events)
        assert sorted(x) == sorted(tagger.inputs) and all(v.dtype == np.float32 for v in x.values())
        expected, _ = expected_scores(tagger, no_cuts(tagger.config, files=tuple(
            g for g in tagger.config.data.files if name in str(g.path))))
        assert len(next(iter(x.values()))) == len(expected)
        scores = predict(tagger.model, x, batch_size=64)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
        flat = tagger.predict(events, batch_size=64)
        if tagger.layout == "per_event":
            flat = np.stack([ak.to_numpy(ak.flatten(flat[c])) for c in tagger.classes], axis=1)
        np.testing.assert_array_equal(flat, scores.reshape(flat.shape))


def test_predict_file_streams_and_matches_predict(files, jet_run, event_run):
    jet_tagger = hepnn.Tagger.load(jet_run)
    direct = jet_tagger.predict(uproot.open(files["top"])["jets"].arrays())
    np.testing.assert_array_equal(jet_tagger.predict_file(files["top"], step_size=40), direct)
    both = jet_tagger.predict_file([files["qcd"], files["top"]], step_size=1000)
    assert len(both) == 2 and np.array_equal(both[1], direct)
    chunks = list(jet_tagger.iter_file(files["top"], step_size=40))
    assert [start for start, _ in chunks] == [0, 40, 80, 120][: len(chunks)] and len(chunks) > 1

    event_tagger = hepnn.Tagger.load(event_run)
    events = uproot.open(files["ttbar"])["Events"].arrays()
    streamed = event_tagger.predict_file(files["ttbar"], tree="Events", step_size=7)
    assert ak.num(streamed).tolist() == events.nJet.tolist()
    assert ak.all(ak.flatten(streamed.b) == ak.flatten(event_tagger.predict(events).b))


@pytest.mark.parametrize("layout", ["per_jet", "per_event"])
def test_block_wise_predict_equals_one_pass(files, jet_run, event_run, layout):
    """Large inputs are scored block by block, inputs built one block ahead: same scores, same order."""
    if layout == "per_jet":
        tagger = hepnn.Tagger.load(jet_run)
        events = uproot.open(files["top"])["jets"].arrays()
    else:
        tagger = hepnn.Tagger.load(event_run)
        events = uproot.open(files["ttbar"])["Events"].arrays()
    whole = tagger.predict(events)
    tagger.block_entries = 7  # many blocks, the last one partial
    assert len(events) > 2 * tagger.block_entries  # blocks of 1, 2, 4, then 7 jets
    blocks = tagger.predict(events, batch_size=5)
    if layout == "per_jet":
        np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-6)
    else:
        assert ak.num(blocks).tolist() == ak.num(whole).tolist()
        for c in tagger.classes:
            np.testing.assert_allclose(ak.to_numpy(ak.flatten(blocks[c])), ak.to_numpy(ak.flatten(whole[c])), atol=1e-6)
    as_dict = {k: events[k] for k in tagger.required_branches}
    again = tagger.predict(as_dict)
    if layout == "per_jet":
        np.testing.assert_allclose(again, whole, rtol=0, atol=1e-6)
    # an error in a block still surfaces as the reader's error
    broken = {**as_dict}
    name = tagger.required_branches[0]
    values = ak.to_numpy(ak.flatten(broken[name], axis=None)).astype(np.float64)
    values[-1] = np.nan
    broken[name] = ak.unflatten(values, ak.num(broken[name])) if broken[name].ndim > 1 else values
    with pytest.raises(InputDataError, match="NaN"):
        tagger.predict(broken)


@pytest.mark.parametrize("sizes", [[1, 2, 4, 7, 7, 3], [5, 0, 12, 1], [0], [3], [10, 10], [11, 4, 0, 9, 2]])
def test_blocks_are_scored_in_whole_batches(sizes):
    """Jets short of a full batch at the end of a block wait for the next block: the model sees
    whole batches only (but for the last jets), and the scores come back in order."""
    calls = []

    def score(x):
        calls.append(len(x["x"]))
        return x["x"] * 2.0

    batches = _WholeBatches(score, 5)
    start = 0
    for n in sizes:
        batches.add({"x": np.arange(start, start + n, dtype=np.float32)})
        start += n
    np.testing.assert_array_equal(batches.scores(), 2.0 * np.arange(start, dtype=np.float32))
    assert all(c % 5 == 0 and c > 0 for c in calls[:-1]) and sum(calls) == start
    assert len(calls) <= start // 5 + 1 + len(sizes)


def test_missing_branch_names_it_and_the_nearest_names(files, event_run, jet_run):
    tagger = hepnn.Tagger.load(event_run)
    events = uproot.open(files["ttbar"])["Events"].arrays()
    renamed = ak.zip({("Jet_mas" if f == "Jet_mass" else f): events[f] for f in events.fields if f != "Track_d0sig"},
                     depth_limit=1)
    with pytest.raises(InputDataError) as info:
        tagger.predict(renamed)
    text = str(info.value)
    assert "'Jet_mass'" in text and "'Track_d0sig'" in text and "Jet_mas" in text
    assert "needs" in text and "Track_jetIdx" in text
    with pytest.raises(InputDataError, match="part_px"):
        hepnn.Tagger.load(jet_run).predict({"jet_pt": np.ones(3), "jet_mass": np.ones(3)})
    with pytest.raises(InputDataError, match="awkward record array"):
        tagger.predict(np.ones(3))


def test_load_never_executes_code_from_the_model_file(jet_run, tmp_path):
    import shutil

    import keras

    run = tmp_path / "lambda_run"
    shutil.copytree(jet_run, run)
    marker = tmp_path / "executed"
    inputs = keras.Input(shape=(4,), name="jet")
    target = str(marker)
    outputs = keras.layers.Lambda(lambda x: (open(target, "w").close(), x * 2.0)[1])(inputs)  # writes a file when run
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(outputs)).save(run / "model.keras")
    marker.unlink(missing_ok=True)
    with pytest.raises(ValueError, match="(?i)lambda|safe"):
        hepnn.Tagger.load(run)
    assert not marker.exists()


def test_predict_numpy_checks_shapes_jets_and_nan(files, jet_run):
    """Ready tensors of another definition or with NaN are named, never scored into wrong numbers."""
    tagger = hepnn.Tagger.load(jet_run)
    raw = dict(hepnn.io.load(no_cuts(tagger.config), standardize=False))
    good = tagger.predict_numpy(raw)

    def problem(**changed):
        with pytest.raises(InputDataError) as err:
            tagger.predict_numpy({**raw, **changed})
        return str(err.value)

    # max_length 8 instead of 12: Deep Sets would score it (other numbers) without the check
    assert "expected (n_jets, 12, 3)" in problem(parts=raw["parts"][:, :8], parts_mask=raw["parts_mask"][:, :8])
    assert f"'jet' has shape ({len(good)}, 3), expected (n_jets, 4)" in problem(jet=raw["jet"][:, :3])
    assert "x[None]" in problem(jet=raw["jet"][0], parts=raw["parts"][0], parts_mask=raw["parts_mask"][0])
    assert "'parts_mask' has shape" in problem(parts_mask=raw["parts_mask"][:, :5])
    assert "different numbers of jets" in problem(jet=raw["jet"][:10])
    ragged = np.empty(2, dtype=object)
    ragged[:] = [[1.0, 2.0], [3.0]]
    assert "not a regular float32 array" in problem(jet=ragged)
    # NaN: named with its variable under data.on_nan: error, replaced like the reader under replace
    jet = raw["jet"].copy()
    jet[3, 1] = np.nan
    parts = raw["parts"].copy()
    parts[5, 0, 2] = np.inf
    message = problem(jet=jet)
    assert "'jet' has 1 NaN or infinite values (in jet_mass)" in message and "data.on_nan" in message
    assert "(in log_pt_frac)" in problem(parts=parts)
    replacing = dataclasses.replace(tagger.config, data=dataclasses.replace(tagger.config.data, on_nan="replace",
                                                                           nan_value=-1.0))
    lenient = hepnn.Tagger(replacing, tagger.model, tagger.preprocessing, path=jet_run)
    replaced = raw["jet"].copy()
    replaced[3, 1] = -1.0
    scores = lenient.predict_numpy({**raw, "jet": jet})
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores, lenient.predict_numpy({**raw, "jet": replaced}))
    np.testing.assert_array_equal(np.delete(scores, 3), np.delete(good, 3))


def test_dict_columns_of_strings_none_or_ragged_objects(files, jet_run):
    """numpy columns a user may hand over: strings and None are named; ragged object arrays are read."""
    tagger = hepnn.Tagger.load(jet_run)
    events = uproot.open(files["top"])["jets"].arrays(tagger.required_branches)
    expected = tagger.predict(events)
    columns = {k: events[k] for k in tagger.required_branches}
    pt = ak.to_numpy(events["jet_pt"])
    with pytest.raises(InputDataError, match=r"branch 'jet_pt' holds <U32 values \(e.g. '.*'\), not numbers"):
        tagger.predict({**columns, "jet_pt": pt.astype(str)})
    missing = pt.astype(object)
    missing[3] = None
    with pytest.raises(InputDataError, match="branch 'jet_pt' holds 1 missing values .None, the first at entry 3"):
        tagger.predict({**columns, "jet_pt": missing})
    ragged = np.empty(len(pt), dtype=object)
    ragged[:] = [np.asarray(v) for v in ak.to_list(events["part_px"])]
    np.testing.assert_array_equal(tagger.predict({**columns, "part_px": ragged, "jet_pt": pt.astype(object)}), expected)


def test_load_of_a_tune_study_names_its_best_trial(tmp_path):
    # a tune study was "not a trained run directory ...; train it with `hepnn train CONFIG --out STUDY`"
    import json

    from hepnn.outdir import claim_directory

    study = claim_directory(tmp_path / "study", "tune")
    for n, value in enumerate([0.8, 0.9]):
        trial = claim_directory(study / "trials" / str(n), "run")
        (trial / "tune.json").write_text(json.dumps({"trial": n, "objective": "auc", "state": "complete", "value": value}))
    with pytest.raises(HepnnError, match=r"the best \(auc 0\.9\) is .*trials/1, .*Tagger\.load takes one of those"):
        hepnn.Tagger.load(study)
