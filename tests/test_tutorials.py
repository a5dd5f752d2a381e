"""Every hackathon tutorial runs as a notebook in quick mode and prints sane key numbers.

The tutorials are scripts (``tutorials/NN_*.py``) with generated notebooks beside them
(``NN_*.ipynb``, ``make notebooks``). The suite checks the notebooks are in sync with the
scripts, then executes each notebook with ``nbclient`` (quick mode through
``HEPNN_TUTORIAL_QUICK=1``, outputs into ``HEPNN_TUTORIAL_OUT``) from a working directory
outside the repository; the last printed line ``RESULT {json}`` is checked. The Pythia
samples are generated once per test session into a shared cache (``HEPNN_TUTORIAL_CACHE``),
so only the first tutorials pay for generation.
"""

from __future__ import annotations

import importlib.util
import json
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
    assert r["max_derivative"]["relu"] == pytest.approx(1.0)
    assert r["max_derivative"]["selu"] == pytest.approx(1.0507010 * 1.6732632, abs=1e-3)  # scale * alpha
    assert r["auc"]["sigmoid + batch norm"] > r["auc"]["sigmoid, Glorot"]


def check_03(r):
    assert set(r["auc"]) == {"SGD", "SGD + momentum", "Adagrad", "RMSProp", "Adam"}
    assert max(r["auc"].values()) > 0.85
    assert all(v is not None and v < 0.7 for v in r["final_val_loss"].values())
    assert r["schedule_auc"]["cosine"] > 0.7
    assert r["lr_cosine_last"] < 1e-3
    assert set(r["loss_auc"]) == {"binary_crossentropy", "binary_focal_crossentropy"}
    assert min(r["loss_auc"].values()) > 0.7
    # the focal loss down-weights the jets already classified well: smaller than the cross-entropy
    first = r["loss_first_epoch"]
    assert first["binary_focal_crossentropy"] < first["binary_crossentropy"]


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
    assert r["array_tasks"] == r["files_listed"] >= 1  # no array task without a file to score


def check_11(r):
    assert set(r["auc"]) == {"dense (jet features)", "Deep Sets", "EFN", "ParticleNet", "ParT"}
    assert min(r["auc"].values()) > 0.6
    # sets: the order of the particles does not matter (float rounding only)
    assert set(r["permutation_max_diff"]) == {"Deep Sets", "EFN", "ParticleNet", "ParT"}
    assert max(r["permutation_max_diff"].values()) < 1e-4
    # the EFN is infrared and collinear safe
    assert r["efn_ir_diff"] < 1e-5 and r["efn_collinear_diff"] < 1e-5
    assert r["n_drawn"] == 8 and r["n_filters"] >= 8
    # DisCo: the score of the decorrelated tagger depends less on the mass (background jets)
    assert r["dcorr"]["with DisCo"] < r["dcorr"]["without DisCo"]
    assert 0.5 < r["disco_auc"] <= 1.0


CHECKS = {name: globals()[f"check_{name[:2]}"] for name in SCRIPTS}


@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tutorial_samples")


def test_every_tutorial_has_a_check():
    assert len(SCRIPTS) == 11
    assert all(f"check_{name[:2]}" in globals() for name in SCRIPTS)


def _notebooks_module():
    spec = importlib.util.spec_from_file_location("tutorial_notebooks", TUTORIALS / "_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_are_in_sync_with_the_scripts():
    pytest.importorskip("jupytext")
    notebooks = _notebooks_module()
    assert [p.name for p in notebooks.scripts()] == SCRIPTS
    stale = [p.name for p in notebooks.stale()]
    assert not stale, f"notebooks out of date with their scripts (run `make notebooks`): {stale}"
    # generated with the script's code cells, no outputs, the python3 kernel
    nb = json.loads((TUTORIALS / SCRIPTS[0]).with_suffix(".ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"][0].startswith("# Tutorial 01")
    assert all(not c.get("outputs") for c in nb["cells"])
    assert not any('"__file__" in globals()' in "".join(c["source"]) for c in nb["cells"]), "no __file__ workaround"


def _printed(notebook) -> str:
    text = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                text.append(output["text"])
    return "".join(text)


@pytest.mark.parametrize("script", SCRIPTS)
def test_tutorial_notebook_quick(script, tmp_path, sample_cache, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    out = tmp_path / "out"
    elsewhere = tmp_path / "cwd"  # not the tutorials folder: the notebook must find its helpers itself
    elsewhere.mkdir()
    for name, value in {"HEPNN_TUTORIAL_CACHE": str(sample_cache), "HEPNN_TUTORIAL_QUICK": "1",
                        "HEPNN_TUTORIAL_OUT": str(out), "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"}.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(TUTORIALS / script.replace(".py", ".ipynb"), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(elsewhere)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{script} failed as a notebook:\n{str(err)[-5000:]}")
    printed = _printed(notebook)
    lines = [line for line in printed.splitlines() if line.startswith("RESULT ")]
    assert lines, f"{script} printed no RESULT line:\n{printed[-3000:]}"
    assert "quick mode" in printed.splitlines()[0]
    result = json.loads(lines[-1][len("RESULT "):])
    CHECKS[script](result)
    assert list(out.glob("*.png")), "each tutorial saves plots into its output folder"
