from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepnn.training.baseline import summary_features, train_bdt


def test_summary_features_ignore_padding():
    seq = np.zeros((2, 3, 2))
    seq[0, :2] = [[1.0, 10.0], [3.0, 30.0]]
    mask = np.array([[True, True, False], [False, False, False]])
    x, names = summary_features({"trk": seq, "trk_mask": mask, "jet": np.ones((2, 1))}, ["jet", "trk"])
    assert names[:4] == ["jet_0", "trk_0_mean", "trk_0_max", "trk_0_min"]
    assert x[0].tolist() == [1.0, 2.0, 3.0, 1.0, 20.0, 30.0, 10.0, 2.0]
    assert x[1].tolist() == [1.0, 0, 0, 0, 0, 0, 0, 0.0]  # no tracks: zeros and length 0


def test_bdt_metrics_match_sklearn(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) + 0.7 * y[:, None]
    split = rng.choice([0, 1, 2], n, p=[0.6, 0.1, 0.3])
    data = {"jet": x, "label": y, "weight": np.ones(n), "split": split}
    metrics = train_bdt(data, ["jet"], tmp_path / "bdt", max_iter=50)
    scores = np.load(tmp_path / "bdt" / "scores.npz", allow_pickle=False)
    assert metrics["auc"] == pytest.approx(roc_auc_score(scores["label"], scores["outputs"]), abs=1e-5)
    assert metrics["n_test"] == int((split == 2).sum())
    assert 0.75 < metrics["auc"] < 0.95
    assert json.loads((tmp_path / "bdt" / "metrics.json").read_text())["auc"] == metrics["auc"]
    from hepnn.plotting.step import read_baselines

    baselines = read_baselines(tmp_path / "baselines.npz")
    np.testing.assert_array_equal(baselines["BDT"][0], scores["outputs"])


def test_bdt_ignores_negative_weights_in_training(tmp_path, monkeypatch):
    # signed (NLO) weights in gradient boosting: negative Hessian sums in the leaves
    from sklearn.ensemble import HistGradientBoostingClassifier

    seen = {}
    fit = HistGradientBoostingClassifier.fit

    def spy(self, x, y, sample_weight=None):
        seen["weight"] = None if sample_weight is None else np.array(sample_weight)
        return fit(self, x, y, sample_weight=sample_weight)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy)
    rng = np.random.default_rng(4)
    n = 600
    y = rng.integers(0, 2, n)
    w = np.where(rng.random(n) < 0.2, -1.0, 1.5)
    data = {"jet": rng.normal(size=(n, 2)) + y[:, None], "label": y, "weight": w, "split": np.zeros(n, int)}
    data["split"][::3] = 2
    metrics = train_bdt(data, ["jet"], tmp_path / "bdt", max_iter=5)
    train = data["split"] == 0
    np.testing.assert_array_equal(seen["weight"], np.clip(w[train], 0, None))
    assert metrics["negative_weights_ignored"] == int(np.count_nonzero(w[train] < 0)) > 0
    data["weight"] = np.abs(w)
    assert "negative_weights_ignored" not in train_bdt(data, ["jet"], tmp_path / "bdt2", max_iter=5)
    np.testing.assert_array_equal(seen["weight"], np.abs(w)[train])


def test_weighted_bdt_metrics_and_baseline_scores_carry_the_test_weights(tmp_path):
    from hepnn.plotting.step import read_baselines

    rng = np.random.default_rng(2)
    n = 2000
    y = rng.integers(0, 2, n)
    w = np.where(y == 0, rng.choice([0.2, 30.0], n), 1.0)  # background mixed from two cross-sections
    data = {"jet": rng.normal(size=(n, 2)) + 0.8 * y[:, None], "label": y, "weight": w,
            "split": rng.choice([0, 2], n, p=[0.6, 0.4])}
    metrics = train_bdt(data, ["jet"], tmp_path / "bdt", max_iter=20, weighted=True)
    scores = np.load(tmp_path / "bdt" / "scores.npz", allow_pickle=False)
    test_w = w[data["split"] == 2]
    assert metrics["weighted"] is True
    assert metrics["auc"] == pytest.approx(roc_auc_score(scores["label"], scores["outputs"], sample_weight=test_w),
                                           abs=1e-5)
    s, labels, weights = read_baselines(tmp_path / "baselines.npz")["BDT"]
    np.testing.assert_array_equal(weights, test_w)
    assert "weighted" not in train_bdt(data, ["jet"], tmp_path / "bdt2", max_iter=20)


def test_autoencoder_metrics_have_the_binary_fields():
    from hepnn.training.evaluate import compute_metrics

    labels = np.array([0, 0, 0, 1, 1])
    errors = np.array([0.1, 0.2, 0.9, 0.8, 0.3])  # flag the two highest: 0.9 (bkg) and 0.8 (sig)
    m = compute_metrics(errors, labels, "autoencoder", ["qcd", "top"], [0.5], background="qcd")
    assert {"auc", "accuracy", "rejection", "n_test"} <= set(m)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["background"] == "qcd" and m["n_test"] == 5


def test_bdt_writes_metrics_last_so_a_kill_before_is_redone(tmp_path, monkeypatch):
    # metrics.json is what `hepnn run` takes as "the baseline exists"; it was written first, so a
    # kill before baselines.npz left a report without BDT curves on every rerun
    import hepnn.training.baseline as baseline

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 600)
    data = {"jet": rng.normal(size=(600, 2)) + y[:, None], "label": y, "weight": np.ones(600),
            "split": rng.choice([0, 2], 600)}
    real = baseline.write_json

    def killed(path, obj):
        if path.name == "options.json":
            raise KeyboardInterrupt("killed")
        return real(path, obj)

    monkeypatch.setattr(baseline, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        train_bdt(data, ["jet"], tmp_path / "bdt", max_iter=5)
    assert not (tmp_path / "bdt" / "metrics.json").exists()
    monkeypatch.setattr(baseline, "write_json", real)
    metrics = train_bdt(data, ["jet"], tmp_path / "bdt", max_iter=5)
    assert json.loads((tmp_path / "bdt" / "metrics.json").read_text())["auc"] == pytest.approx(metrics["auc"])
    assert (tmp_path / "baselines.npz").is_file()
