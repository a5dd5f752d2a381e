"""Stored predictions (RUN_DIR/predictions/<split>.npz): reused only for the data they were made for."""

from __future__ import annotations

import os

import numpy as np
import pytest

import hepnn.training.evaluate as evaluate
from hepnn.config import load_config, to_dict
from hepnn.training.evaluate import evaluate_run, predict_split, prediction_key
from hepnn.training.rundir import RunDirectory, clear_model_cache
from hepnn.training.trainer import Trainer


def _write_root(path, n, shift, seed):
    import uproot

    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        f["jets"] = {"jet_mass": rng.normal(100 + 40 * shift, 30, n), "jet_tau21": rng.normal(0.6 - 0.2 * shift, 0.2, n)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    _write_root(root / "sig.root", 300, 1, 1)
    _write_root(root / "bkg.root", 300, 0, 2)
    cfg = {
        "data": {"files": [{"path": str(root / "sig.root"), "tree": "jets", "label": 1},
                           {"path": str(root / "bkg.root"), "tree": "jets", "label": 0}],
                 "inputs": {"jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau21"]}}},
        "model": {"name": "dense", "units": [8]},
        "training": {"epochs": 1, "verbose": 0},
    }
    Trainer(cfg, log=lambda _: None).fit(root / "run")
    return root / "run"


def _no_model(*args, **kwargs):
    raise AssertionError("the model was loaded although stored predictions were valid")


def test_evaluate_stores_and_the_report_path_reuses_them(run, monkeypatch):
    metrics = evaluate_run(run, keep_predictions=True)
    folder = RunDirectory(run).predictions
    assert sorted(p.name for p in folder.iterdir()) == ["test.npz", "train.npz"]
    config = load_config(RunDirectory(run).config)
    key = prediction_key(run, config)
    fresh = {split: predict_split(run, split)["outputs"] for split in ("test", "train")}

    monkeypatch.setattr(evaluate, "load_run_model", _no_model)
    for split in ("test", "train"):
        stored = predict_split(run, split, key=key, store=False)
        np.testing.assert_array_equal(stored["outputs"], fresh[split])  # the same bits as predicting again
        assert len(stored["outputs"]) == len(stored["label"])
    assert metrics["n_test"] == len(fresh["test"])


def test_stored_predictions_are_not_reused_for_other_data_or_model(run, monkeypatch, tmp_path):
    evaluate_run(run, keep_predictions=True)
    rd = RunDirectory(run)
    config = load_config(rd.config)
    key = prediction_key(run, config)
    assert key == prediction_key(run, config)  # deterministic

    # an input file rewritten (its modification time changes)
    sig = config.data.files[0].path
    st = os.stat(sig)
    os.utime(sig, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert prediction_key(run, config) != key
    finally:
        os.utime(sig, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert prediction_key(run, config) == key

    # another data section, another preprocessing, another analysis class: other keys
    changed = to_dict(config)
    changed["data"]["step_size"] = 1234
    assert prediction_key(run, load_config(changed)) != key

    class Ana:
        pass

    assert prediction_key(run, config, Ana()) != key
    saved = rd.preprocessing.read_bytes()
    try:
        rd.preprocessing.write_bytes(saved + b" ")
        assert prediction_key(run, config) != key
    finally:
        rd.preprocessing.write_bytes(saved)

    # a stale file (another key) is not used: the model is loaded and predicts
    monkeypatch.setattr(evaluate, "load_run_model", _no_model)
    with pytest.raises(AssertionError, match="the model was loaded"):
        predict_split(run, "test", key="0" * 64, store=False)
    # store=False leaves the run folder alone
    monkeypatch.undo()
    before = (rd.predictions / "test.npz").read_bytes()
    predict_split(run, "test", key="1" * 64, store=False)
    assert (rd.predictions / "test.npz").read_bytes() == before


def test_a_retrained_model_invalidates_the_key(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = load_config(RunDirectory(copy).config)
    key = prediction_key(copy, config)
    data = bytearray(RunDirectory(copy).model.read_bytes())
    data[-1] ^= 1
    RunDirectory(copy).model.write_bytes(bytes(data))
    assert prediction_key(copy, config) != key
    RunDirectory(copy).model.unlink()
    assert prediction_key(copy, config) is None
    moved = to_dict(config)
    moved["data"]["files"][0]["path"] = str(tmp_path / "no_such.root")
    RunDirectory(copy).model.write_bytes(bytes(data))
    # a missing input file: no error here (reading the data reports it), and not the key of the real file
    assert prediction_key(copy, load_config(moved)) != prediction_key(copy, config)
    clear_model_cache()
