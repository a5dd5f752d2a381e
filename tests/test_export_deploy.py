"""Deployable ONNX: preprocessing in the graph, raw numpy tensors in, Tagger.predict's scores out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.config import load_config

pytest.importorskip("keras")
pytest.importorskip("onnx")
pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

DATA = Path(__file__).parent / "data"
NANOAOD = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"


def quiet(_):
    pass


def train(config, out):
    from hepnn.training.trainer import Trainer

    Trainer(config, log=quiet).fit(out, data=hepnn.io.load(config))
    return out


def metadata(path):
    import onnx

    return {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}


def test_flat_tagger_on_raw_numpy_from_real_nanoaod(tmp_path):
    from hepnn.training.export import export_onnx

    config = load_config(DATA / "nanoaod_btag.yaml", [
        "model.name=dense", "model.units=[8]", "training.epochs=1", "training.verbose=0", "training.early_stopping=null",
        "data.inputs.jet.transforms.Jet_chHEF={clip: [0.05, 0.9]}", "data.inputs.jet.transforms.Jet_btagDeepB={abs: true}",
    ])
    run = train(config, tmp_path / "run")
    path = export_onnx(run, with_preprocessing=True, opset=17)
    meta = metadata(path)
    variables = list(config.data.inputs["jet"].variables)
    assert meta["input_names"] == ["jet"] and meta["inputs"]["jet"]["variables"] == variables
    assert meta["classes"] == ["light", "b"] and meta["task"] == "binary" and meta["preprocessing_in_graph"]
    assert meta["hepnn_version"] == hepnn.__version__
    import onnx

    assert {o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")} == {17}
    # raw tensors with plain numpy: the branches in the metadata's order, one row per jet, no cuts
    events = uproot.open(NANOAOD)["Events"].arrays(variables)
    raw = np.stack([ak.to_numpy(ak.flatten(events[v])).astype(np.float32) for v in variables], axis=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"jet": raw})[0].reshape(-1)
    expected = ak.to_numpy(ak.flatten(hepnn.Tagger.load(run).predict(events)))
    assert len(got) == len(expected) > 400
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert json.loads((path.parent / "metadata.json").read_text())["preprocessing_in_graph"] is True


def test_sequence_tagger_takes_raw_padded_tracks(tmp_path):
    pytest.importorskip("pythia8mc")
    from hepnn.datasets import generate
    from hepnn.training.export import export_onnx

    sample = generate("ttbar", 60, seed=3, out=tmp_path / "ttbar.root", layout="per_event", progress=False)
    config = load_config({
        "data": {
            "layout": "per_event",
            "files": [{"path": str(sample), "tree": "Events"}],
            "jets": "Jet",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "b": 5}},
            "cuts": [{"variable": "Jet_pt", "min": 20.0}],
            "inputs": {
                "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass"],
                        "transforms": {"Jet_pt": {"log": True}}},
                "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx", "max_length": 6,
                           "pad_value": -9.0, "variables": ["Track_d0sig", "Track_z0sig", "Track_pt"],
                           "sort_by": {"variable": "Track_d0sig", "absolute": True},
                           "transforms": {"Track_pt": {"log": True},
                                          "Track_d0sig": {"abs": True, "log1p": True, "clip": [0.0, 2.0]}}},
            },
        },
        "model": {"name": "deepsets", "phi_units": [8], "dense_units": [8], "branch_units": 4},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })
    # (c jets, outside the classes, and the cut are training-time only: the Tagger and the export score every jet)
    run = train(config, tmp_path / "run")
    path = export_onnx(run, with_preprocessing=True)
    tracks = metadata(path)["inputs"]["tracks"]
    assert tracks["variables"] == ["Track_d0sig", "Track_z0sig", "Track_pt"] and tracks["max_length"] == 6
    assert tracks["pad_value"] == -9.0 and tracks["sort_by"] == {"variable": "Track_d0sig", "descending": True,
                                                                  "absolute": True}
    tagger = hepnn.Tagger.load(run)
    events = uproot.open(sample)["Events"].arrays()
    raw = hepnn.io.represent(tagger.config, events)  # padded with -9, sorted, not standardised
    assert (raw["tracks"][~raw["tracks_mask"]] == -9.0).all() and (~raw["tracks_mask"]).any()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: raw[i.name].astype(np.float32) for i in session.get_inputs()}
    assert set(feed) == {"jet", "tracks"}  # the mask comes from the pad value inside the graph
    got = session.run(None, feed)[0].reshape(-1)
    expected = ak.to_numpy(ak.flatten(tagger.predict(events)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_embedded_image_standardisation_matches_the_preprocessor(tmp_path):
    """Per-pixel image standardisation in the graph equals Preprocessor.transform (no training needed)."""
    import keras
    import onnx

    from hepnn.preprocessing import Preprocessor
    from hepnn.training.onnx_deploy import embed_preprocessing

    rng = np.random.default_rng(0)
    images = rng.gamma(2.0, size=(50, 5, 5, 2)).astype(np.float32)
    pre = Preprocessor({"image": {"kind": "image", "standardize": True}}).fit({"image": images})
    inputs = keras.Input((5, 5, 2), name="image")
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    model.predict({"image": images[:2]}, verbose=0)
    path = tmp_path / "m.onnx"
    model.export(str(path), format="onnx", verbose=False)
    proto = embed_preprocessing(onnx.load(str(path)), pre, {"classes": ["qcd", "top"]})
    onnx.save(proto, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": images})[0]
    expected = np.asarray(model(pre.transform({"image": images})["image"]))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert not np.allclose(got, np.asarray(model(images)), atol=1e-3), "the standardisation must change the scores"
    assert metadata(path)["classes"] == ["qcd", "top"]


def test_autoencoder_metadata_says_how_to_score_its_reconstruction(tmp_path):
    # the metadata said "model output": with --with-preprocessing the graph takes raw inputs but
    # returns the reconstruction of the standardised ones, so (raw - output)**2 is not the anomaly score
    from hepnn.preprocessing import Preprocessor
    from hepnn.training.export import export_onnx

    rng = np.random.default_rng(4)
    for name, shift in (("sig", 2.0), ("bkg", 0.0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["jets"] = {"a": rng.normal(shift + 50, 10, 120).astype(np.float32),
                         "b": rng.normal(0, 3, 120).astype(np.float32)}
    config = load_config({
        "data": {"directory": str(tmp_path), "files": [{"path": "sig.root", "tree": "jets", "label": 1},
                                                      {"path": "bkg.root", "tree": "jets", "label": 0}],
                 "inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}}},
        "model": {"name": "autoencoder", "units": [4], "latent_dim": 2},
        "training": {"epochs": 1, "verbose": 0, "train_classes": ["bkg"]}, "evaluation": {"background": "bkg"},
    })
    run = train(config, tmp_path / "run")
    path = export_onnx(run, with_preprocessing=True)
    assert "(standardised input - output)**2" in metadata(path)["output"]
    raw = np.stack([uproot.open(tmp_path / "sig.root")["jets"][v].array(library="np") for v in ("a", "b")], axis=1)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"jet": raw})[0]
    standardised = Preprocessor.load(run / "preprocessing.json").transform({"jet": raw})["jet"]
    expected = hepnn.Tagger.load(run).predict_file(tmp_path / "sig.root")
    np.testing.assert_allclose(np.mean((standardised - out) ** 2, axis=1), expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(np.mean((raw - out) ** 2, axis=1), expected, rtol=0.1)
