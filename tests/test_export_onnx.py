"""ONNX export of trained runs: dense, CNN, RNN (masking), Deep Sets and a multi-input model.

Each run is trained for one epoch on generated top/QCD jets; ONNX Runtime must agree
with Keras to < 1e-5 on the real test split, and a disagreeing export must raise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import hepnn.io
from hepnn.config import load_config
from hepnn.exceptions import HepnnError

pytest.importorskip("keras")
pytest.importorskip("pythia8mc")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("tf2onnx")

MODELS = {
    "dense": (["jet"], {"name": "dense", "units": [8]}),
    "cnn": (["image"], {"name": "cnn", "filters": [4], "convs_per_block": 1, "dense_units": [8]}),
    "rnn": (["parts"], {"name": "rnn", "units": [4], "dense_units": [8]}),
    "deepsets": (["parts"], {"name": "deepsets", "phi_units": [8], "dense_units": [8]}),
    "multi": (["parts", "jet"], {"name": "deepsets", "phi_units": [8], "dense_units": [8], "branch_units": 4}),
}


def config_for(files, name):
    inputs, model = MODELS[name]
    return load_config({
        "data": {
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0},
                      {"path": str(files["top"]), "tree": "jets", "label": 1}],
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {
                "jet": {"kind": "flat", "variables": ["jet_pt", "jet_mass", "jet_tau32", "jet_tau21"]},
                "parts": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt"], "max_length": 10,
                          "sort_by": {"variable": "part_pt"}},
                "image": {"kind": "image", "pixels": 8},
            },
        },
        "model": {**model, "inputs": inputs},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from hepnn.datasets import generate

    folder = tmp_path_factory.mktemp("export_data")
    return {
        "top": generate("top", 120, seed=11, out=folder / "top.root", progress=False),
        "qcd": generate("qcd", 120, seed=12, out=folder / "qcd.root", progress=False),
    }


@pytest.fixture(scope="module")
def data(files):
    return hepnn.io.load(config_for(files, "dense"))


@pytest.fixture(scope="module")
def runs(files, data, tmp_path_factory):
    from hepnn.training.trainer import Trainer

    root = tmp_path_factory.mktemp("export_runs")
    cache = {}

    def get(name):
        if name not in cache:
            Trainer(config_for(files, name), log=lambda _: None).fit(root / name, data=data)
            cache[name] = root / name
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(MODELS))
def test_export_agrees_with_keras_on_real_test_data(name, runs, data):
    from hepnn.models import load_model
    from hepnn.training.export import export_onnx

    run = runs(name)
    path = export_onnx(run)
    assert path == run / "export" / "model.onnx" and path.is_file()
    assert not list((run / "export").glob(".*part*")), "temporary file left behind"
    meta = json.loads((run / "export" / "metadata.json").read_text())
    inputs = MODELS[name][0]
    assert sorted(meta["inputs"]) == sorted(inputs) and meta["task"] == "binary"
    assert sorted(meta["input_names"]) == sorted(inputs) and meta["hepnn_version"] and meta["layout"] == "per_jet"
    assert meta["verified_on"]["test_data"]["n_jets"] > 0 and meta["max_abs_diff_vs_keras"] < 1e-5
    prep = json.loads((run / "export" / "preprocessing.json").read_text())
    assert prep == json.loads((run / "preprocessing.json").read_text())
    # independently: the whole test split through ONNX Runtime vs Keras
    test = data.split("test")
    x = {n: np.asarray(test[n], dtype=np.float32) for n in inputs}
    expected = np.asarray(load_model(run / "model.keras").predict(x, verbose=0))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = np.asarray(session.run(None, {i.name: x[i.name] for i in session.get_inputs()})[0])
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-5
    assert meta["verified_on"]["random"]["n_jets"] > 0  # includes padded and fully padded sequences


def test_cli_export(runs, tmp_path, capsys):
    from hepnn.cli import main

    out = tmp_path / "exported"
    assert main(["export", str(runs("dense")), "--format", "onnx", "--out", str(out)]) == 0
    assert (out / "model.onnx").is_file() and (out / "preprocessing.json").is_file()
    assert "model.onnx" in capsys.readouterr().out


def test_disagreeing_export_raises_and_writes_nothing(runs, tmp_path, monkeypatch):
    import keras

    from hepnn.training import export

    real_write = export._write_onnx

    def perturbed(model, path, batch, opset=None):
        clone = keras.models.clone_model(model)
        clone.set_weights([w + 0.05 for w in model.get_weights()])
        real_write(clone, path, batch, opset)

    monkeypatch.setattr(export, "_write_onnx", perturbed)
    out = tmp_path / "bad"
    with pytest.raises(HepnnError, match="disagrees with Keras"):
        export.export_onnx(runs("deepsets"), out=out)
    assert not (out / "model.onnx").exists() and not list(out.glob(".*part*"))


def test_export_killed_before_its_metadata_leaves_none_that_describes_another_model(runs, tmp_path, monkeypatch):
    # model.onnx was replaced before preprocessing.json and metadata.json were written: a kill in between
    # left an earlier export's metadata (another model's inputs, preprocessing_in_graph) beside the new model
    import json

    from hepnn.training import export

    out = tmp_path / "exported"
    export.export_onnx(runs("dense"), out=out)
    before = json.loads((out / "metadata.json").read_text())
    real = export.write_json

    def killed(path, obj):
        if path.name == "metadata.json":
            raise KeyboardInterrupt("killed")
        return real(path, obj)

    monkeypatch.setattr(export, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        export.export_onnx(runs("deepsets"), out=out)
    assert not (out / "metadata.json").exists()  # no metadata: the folder is not taken for a finished export
    monkeypatch.setattr(export, "write_json", real)
    export.export_onnx(runs("deepsets"), out=out)
    after = json.loads((out / "metadata.json").read_text())
    assert after != before and not list(out.glob(".*part*"))


def test_export_of_an_untrained_run_is_a_clear_error(tmp_path):
    from hepnn.training.export import export_onnx

    with pytest.raises(HepnnError, match="no trained model"):
        export_onnx(tmp_path)
