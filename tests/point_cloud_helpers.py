"""Shared pieces of the point-cloud model tests (ParticleNet, ParT, EFN/PFN).

Not a test module: ``tests/test_models_particlenet.py`` and its siblings import it.
Random jets for the invariance checks, and one tiny end-to-end pass (train, evaluate,
``Tagger.predict`` on raw events, explain, ONNX export) on generated top/QCD jets.
"""

from __future__ import annotations

import json

import numpy as np

_FILES: dict = {}


def random_jets(n_jets=6, max_length=10, n_real=(3, 7, 10, 1, 5, 0), n_features=4, seed=0):
    """Random sequences with ``n_real[i]`` real particles per jet (the rest padded with 0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_jets, max_length, n_features)).astype("float32")
    for i in range(n_jets):
        x[i, n_real[i % len(n_real)]:] = 0.0
    return x, [n_real[i % len(n_real)] for i in range(n_jets)]


def shuffle_real(x, n_real, seed=1):
    """The same jets with their real particles in a random order (padding stays at the end)."""
    rng = np.random.default_rng(seed)
    out = x.copy()
    for i, n in enumerate(n_real):
        out[i, :n] = x[i, rng.permutation(n)]
    return out


def pad_more(x, extra=5):
    """The same jets with ``extra`` more padded slots."""
    return np.concatenate([x, np.zeros((x.shape[0], extra, x.shape[2]), x.dtype)], axis=1)


def predict(model, name, x):
    return np.asarray(model({name: x}, training=False))


def generated_files(tmp_path_factory):
    """120 top and 120 QCD jets (generated once per test session)."""
    if not _FILES:
        from hepnn.datasets import generate

        folder = tmp_path_factory.mktemp("point_cloud_data")
        _FILES["top"] = generate("top", 120, seed=21, out=folder / "top.root", progress=False)
        _FILES["qcd"] = generate("qcd", 120, seed=22, out=folder / "qcd.root", progress=False)
    return _FILES


def config_for(files, model, variables, transforms=None, standardize=True, max_length=16, flat=False):
    from hepnn.config import load_config

    inputs = {
        "parts": {"kind": "sequence", "variables": list(variables), "max_length": max_length,
                  "sort_by": {"variable": "part_pt"}, "standardize": standardize,
                  "transforms": transforms or {}},
        "jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau32", "jet_tau21"]},
    }
    return load_config({
        "data": {
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0},
                      {"path": str(files["top"]), "tree": "jets", "label": 1}],
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "inputs": inputs,
            "split": {"train": 0.6, "val": 0.1, "test": 0.3, "seed": 3},
        },
        "model": {**model, "inputs": ["parts", "jet"] if flat else ["parts"]},
        "training": {"epochs": 1, "batch_size": 32, "verbose": 0, "early_stopping": None, "seed": 5},
    })


def end_to_end(files, root, config, explain_method="saliency"):
    """Train, evaluate, predict on raw events, explain and export one run; return what the checks need."""
    import uproot

    import hepnn
    import hepnn.io
    from hepnn.explain import explain_run
    from hepnn.training.evaluate import evaluate_run
    from hepnn.training.export import export_onnx
    from hepnn.training.trainer import Trainer

    data = hepnn.io.load(config)
    run = root / config.model.name
    Trainer(config, log=lambda _: None).fit(run, data=data)
    metrics = evaluate_run(run, data=data)
    tagger = hepnn.Tagger.load(run)
    events = uproot.open(files["top"])["jets"].arrays()
    raw = hepnn.io.load(config, standardize=False)
    x = tagger.preprocessing.transform(dict(raw))
    expected = np.asarray(tagger.model.predict({n: x[n] for n in tagger.inputs}, verbose=0)).ravel()
    n_qcd = uproot.open(files["qcd"])["jets"].num_entries
    got = tagger.predict(events)
    explanation = explain_run(run, explain_method, n_jets=20, data=data)
    path = export_onnx(run)
    meta = json.loads((path.parent / "metadata.json").read_text())
    return {"run": run, "metrics": metrics, "tagger_scores": got, "reader_scores": expected[n_qcd:],
            "explanation": explanation, "onnx": path, "onnx_meta": meta, "data": data}


def check_end_to_end(result, atol=1e-5):
    """The assertions every new model's end-to-end test makes.

    ``atol`` bounds the Tagger's scores (its forward pass compiled by XLA) against
    ``model.predict`` (TensorFlow's graph): the two agree within float32 rounding.
    """
    metrics = result["metrics"]
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["n_test"] > 0, metrics
    got, expected = result["tagger_scores"], result["reader_scores"]
    assert got.shape == expected.shape and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    assert np.std(got) > 0, "constant scores"
    values = result["explanation"].values["parts"]
    assert values.shape[0] == 20 and np.all(np.isfinite(values)) and np.any(values != 0)
    assert result["onnx"].is_file() and result["onnx_meta"]["max_abs_diff_vs_keras"] < 1e-5
