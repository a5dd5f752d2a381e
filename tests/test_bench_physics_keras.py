"""bench/physics_keras.py: the inputs rebuilt from the compact export, and a tiny train on synthetic jets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from script_helpers import load_script


def _module():
    return load_script("bench/physics_keras.py")


def synthetic_export(path: Path, n: int = 600, length: int = 8, seed: int = 0) -> dict:
    """Jets in the export's format: signal constituents spread wider around the axis than background."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 2).astype(np.int8)
    n_real = rng.integers(2, length + 1, n).astype(np.uint8)
    width = np.where(label == 1, 0.4, 0.1)[:, None]
    eta = rng.normal(0, 1, (n, length)) * width
    phi = rng.normal(0, 1, (n, length)) * width
    log_pt = np.sort(rng.uniform(0, 4, (n, length)), axis=1)[:, ::-1]
    log_e = log_pt + np.abs(rng.normal(0, 0.3, (n, length)))
    base = np.stack([eta, phi, log_pt, log_e], axis=-1)
    base[np.arange(length)[None, :] >= n_real[:, None]] = 0.0
    jet = np.stack([rng.uniform(400, 600, n), rng.uniform(-2, 2, n), rng.uniform(-3, 3, n), rng.uniform(500, 900, n)],
                   axis=-1)
    split = np.zeros(n, np.int8)
    split[n * 7 // 10 : n * 85 // 100] = 1
    split[n * 85 // 100 :] = 2
    d = {"base": base.astype(np.float16), "n_real": n_real, "jet": jet.astype(np.float32),
         "highlevel": rng.normal(0, 1, (n, 6)).astype(np.float32) + label[:, None],
         "mass": rng.uniform(50, 250, n).astype(np.float32), "label": label, "split": split}
    np.savez_compressed(path, **d, meta=np.array(json.dumps({"samples": {"top": "synthetic"}, "size": n,
                                                             "max_length": length, "highlevel": list("abcdef")})))
    return d


def test_inputs_rebuild_the_four_momenta_and_derived_features(tmp_path):
    pk = _module()
    d = synthetic_export(tmp_path / "x.npz", n=50)
    inputs = pk.build_inputs(d)
    base = d["base"].astype(np.float64)
    real = np.arange(base.shape[1])[None, :] < d["n_real"][:, None]
    cloud = inputs["cloud"]
    # physical units: pT fraction, px, py, pz, E from the jet axis plus the relative coordinates
    pt = np.exp(base[..., 2])
    phi = d["jet"][:, 2:3] + base[..., 1]
    eta = d["jet"][:, 1:2] + base[..., 0]
    np.testing.assert_allclose(cloud[..., 4][real], (pt / d["jet"][:, :1])[real], rtol=1e-5)
    np.testing.assert_allclose(cloud[..., 5][real], (pt * np.cos(phi))[real], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cloud[..., 7][real], (pt * np.sinh(eta))[real], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cloud[..., 8][real], np.exp(base[..., 3])[real], rtol=1e-5)
    # standardised features of real constituents of the training jets: mean 0, std 1; padding stays 0
    particles = inputs["particles"]
    train = d["split"] == 0
    rows = particles[train][real[train]]
    np.testing.assert_allclose(rows.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(rows.std(axis=0), 1, atol=1e-4)
    assert not particles[~real].any() and not cloud[~real].any()
    # delta_r is the hypot of (rel_eta, rel_phi) before standardisation
    raw_dr = np.hypot(base[..., 0], base[..., 1])[train][real[train]]
    np.testing.assert_allclose(rows[:, 6] * raw_dr.std() + raw_dr.mean(), raw_dr, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("models", ["deepsets,particlenet,transformer"])
def test_quick_train_scores_and_resumes(tmp_path, models):
    pk = _module()
    synthetic_export(tmp_path / "x.npz")
    argv = ["train", "--data", str(tmp_path / "x.npz"), "--quick", "--models", models, "--epochs", "6",
            "--batch-size", "32", "--learning-rate", "5e-3", "--patience", "0", "--out", str(tmp_path / "out")]
    results = pk.main(argv)
    assert [r["model"] for r in results] == models.split(",")
    for r in results:
        assert 0.8 < r["auc"] <= 1.0, r  # the widths separate the classes
        assert r["epochs"] == 6 and r["n_test"] == 90 and r["train_jets_per_s"] > 0
        assert r["rejection_50"] >= 1.0
        assert r["model_config"] == pk.QUICK[r["model"]]  # the configuration trained, not the full-size one
    stored = json.loads((tmp_path / "out" / "results" / "deepsets_600_L8.json").read_text())
    assert stored["auc"] == results[0]["auc"]
    again = pk.main(argv)  # resumed: nothing retrained, the stored numbers come back
    assert [r["auc"] for r in again] == [r["auc"] for r in results]
    assert "| particlenet |" in (tmp_path / "out" / "physics_keras.md").read_text()
