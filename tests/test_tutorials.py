"""Every hackathon tutorial runs in --quick mode and prints sane key numbers.

Each tutorial runs in a subprocess with ``--quick --out tmp_path`` and must end with a line
``RESULT {json}``. The Pythia samples are generated once per test session into a shared
cache (``HEPNN_TUTORIAL_CACHE``), so only the first tutorials pay for generation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
SCRIPTS = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))


def check_01(r):
    assert r["max_loss_diff"] < 1e-4, "the hand-made MLP must reproduce Keras' losses"
    assert r["max_weight_diff"] < 1e-3
    assert r["grad_check"] < 1e-6, "backprop must match finite differences"
    assert r["loss_end"] < r["loss_start"]
    assert r["auc_hand"] > 0.85 and r["auc_neuron"] > 0.85
    assert abs(r["auc_hand"] - r["auc_keras"]) < 1e-3
    assert r["auc_hepnn"] > 0.6


def check_02(r):
    ratio, first = r["gradient_ratio"], r["first_layer_norm"]
    sigmoid = ratio["sigmoid, Glorot"]
    assert sigmoid < 1e-3, "a deep sigmoid net must have vanishing early-layer gradients"
    for fixed in ("relu, He", "sigmoid + batch norm", "sigmoid + residual"):
        assert ratio[fixed] > 100 * sigmoid, fixed
    assert first["relu, LeCun (too small)"] < first["relu, He"]
    assert r["max_derivative"]["sigmoid"] == pytest.approx(0.25, abs=1e-3)
    assert r["auc"]["sigmoid + batch norm"] > r["auc"]["sigmoid, Glorot"]


def check_03(r):
    assert set(r["auc"]) == {"SGD", "SGD + momentum", "Adagrad", "RMSProp", "Adam"}
    assert max(r["auc"].values()) > 0.85
    assert all(v is not None and v < 0.7 for v in r["final_val_loss"].values())
    assert r["schedule_auc"]["cosine"] > 0.7
    assert r["lr_cosine_last"] < 1e-3


def check_04(r):
    assert r["n_augmented"] == 4 * r["n_train"]
    assert r["gap"]["none"] > r["gap"]["L2 + dropout + early stopping"], "no regularisation overfits more"
    assert min(r["auc"].values()) > 0.7
    assert min(r["augmentation_auc"].values()) > 0.6


def check_05(r):
    assert r["padding_matches"] and r["standardised_ok"]
    n = r["n_jets"]
    assert r["shapes"]["image"] == [n, 25, 25, 1]
    assert r["shapes"]["particles"][0] == n and r["shapes"]["raw_pt"][2] == 1
    assert r["per_event_jets"] > 0 and r["tracks_shape"][1:] == [10, 3]


def check_06(r):
    assert r["auc"]["cnn"] > 0.75 and r["auc"]["dense (jet features)"] > 0.75
    assert r["standardised_pixel_mean_max"] < 1e-3
    low, high = r["standardised_pixel_std_range"]
    assert 0.9 < low <= high < 1.1


def check_07(r):
    assert r["auc_d0sig"] > 0.7
    assert set(r["auc"]) >= {"LSTM", "GRU"}
    assert all(0.0 <= v <= 1.0 for v in r["auc"].values())
    assert max(r["auc"].values()) > 0.55


def check_08(r):
    auc = r["auc"]["conv autoencoder"]
    assert 0.0 < auc < 1.0  # the sign is physics (see the tutorial), not a bug
    assert r["loss_end"]["conv autoencoder"] < r["loss_start"]["conv autoencoder"]
    assert r["auc_mass"] > 0.8


def check_09(r):
    assert r["auc"]["dense"] > 0.8 and r["auc"]["cnn"] > 0.7
    assert r["shap_additivity"] < 1e-3
    assert r["surrogate_fidelity"] > 0.5
    assert r["occlusion_centre"] > r["occlusion_corner"]
    assert r["activation_end"] > r["activation_start"]
    assert max(r["permutation"].values()) > 0


def check_10(r):
    assert r["aligned"] and r["predict_file_matches"] and r["friend_ok"]
    assert r["auc"] > 0.7
    assert {"train.slurm", "score.slurm", "score.sub", "score_file.py"} <= set(r["batch_files"])


CHECKS = {name: globals()[f"check_{name[:2]}"] for name in SCRIPTS}


@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tutorial_samples")


def test_every_tutorial_has_a_check():
    assert len(SCRIPTS) == 10
    assert all(f"check_{name[:2]}" in globals() for name in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_tutorial_quick(script, tmp_path, sample_cache):
    env = dict(os.environ, HEPNN_TUTORIAL_CACHE=str(sample_cache), MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, str(TUTORIALS / script), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"{script} printed no RESULT line:\n{proc.stdout[-3000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    CHECKS[script](result)
    assert list(tmp_path.glob("*.png")), "each tutorial saves plots into --out"
