"""Evaluation, plotting and export numbers on awkward inputs: negative weights, NaN, one class, bad lengths."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.exceptions import InputDataError
from hepnn.explain import explain
from hepnn.io import load
from hepnn.metrics import cut_for_efficiency, efficiency_auc, efficiency_curve, ks_test, roc_auc
from hepnn.plotting import plot_mass_sculpting, plot_scores
from hepnn.plotting.efficiency import binned_efficiency
from hepnn.training.evaluate import binary_metrics, evaluate_run, multiclass_metrics
from hepnn.training.export import _max_diff
from hepnn.training.sculpting import sculpting_metrics
from hepnn.training.trainer import Trainer


def _weighted_pairs_auc(y, s, w):
    """P(signal scores above background), ties one half, weighted: the definition, pair by pair."""
    sig, bkg = y == 1, y == 0
    ds = s[sig][:, None] - s[bkg][None, :]
    ww = w[sig][:, None] * w[bkg][None, :]
    return float(np.sum(ww * ((ds > 0) + 0.5 * (ds == 0))) / (w[sig].sum() * w[bkg].sum()))


def _nlo_sample(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(y, 1.0)
    s[:40] = s[40:80]  # ties as well
    w = rng.normal(1.0, 1.0, n)  # about a sixth negative, as in NLO samples
    return y, s, w


def test_auc_with_negative_weights_is_the_weighted_pair_probability():
    y, s, w = _nlo_sample()
    assert np.any(w < 0)
    expected = _weighted_pairs_auc(y, s, w)
    assert roc_auc(y, s, w) == pytest.approx(expected, abs=1e-12)  # was scikit-learn's "x is neither increasing..."
    eff_s, eff_b, _ = efficiency_curve(y, s, w)
    assert efficiency_auc(eff_s, eff_b) == pytest.approx(expected, abs=1e-12)
    assert binary_metrics(s, y, [0.5], weights=w)["auc"] == pytest.approx(expected, abs=1e-6)
    # positive weights keep scikit-learn's numbers
    w_pos = np.abs(w)
    assert roc_auc(y, s, w_pos) == pytest.approx(_weighted_pairs_auc(y, s, w_pos), abs=1e-12)


def test_accuracy_is_weighted_like_the_auc_beside_it():
    y, s, w = _nlo_sample(seed=3)
    p = 1 / (1 + np.exp(-s))
    correct = (p >= 0.5) == (y == 1)
    assert binary_metrics(p, y, [0.5], weights=w)["accuracy"] == pytest.approx(np.sum(w * correct) / np.sum(w), abs=1e-6)
    assert binary_metrics(p, y, [0.5])["accuracy"] == pytest.approx(correct.mean(), abs=1e-6)
    probs = np.stack([1 - p, p], axis=1)
    got = multiclass_metrics(probs, y, ["qcd", "top"], [0.5], weights=np.abs(w))["accuracy"]
    assert got == pytest.approx(np.sum(np.abs(w) * correct) / np.sum(np.abs(w)), abs=1e-6)


def test_cut_for_efficiency_checks_weights_and_takes_the_first_crossing():
    with pytest.raises(ValueError, match="weights has 2 entries but there are 4 scores"):
        cut_for_efficiency([0.1, 0.2, 0.3, 0.4], 0.5, [1, 1])  # was a raw IndexError
    with pytest.raises(ValueError, match="weights has 5 entries"):
        cut_for_efficiency([0.1, 0.2, 0.3, 0.4], 0.5, [1, 1, 1, 1, 100])  # was a silent 0.1
    with pytest.raises(ValueError, match="non-finite"):
        cut_for_efficiency([0.1, np.nan, 0.3, 0.4], 0.5)
    rng = np.random.default_rng(3)
    for _ in range(100):
        s = rng.normal(size=50)
        w = rng.normal(0.6, 1.0, 50)
        if w.sum() <= 0:
            continue
        order = np.argsort(-s, kind="mergesort")
        frac = np.cumsum(w[order]) / w.sum()
        first = s[order][np.flatnonzero(frac >= 0.5 * (1 - 1e-12))[0]]  # the tightest cut reaching 50 %
        assert cut_for_efficiency(s, 0.5, w) == first


def test_weighted_ks_test_refuses_nan():
    a = np.linspace(0, 1, 50)
    b = a.copy()
    b[0] = np.nan
    with pytest.raises(ValueError, match="b has 1 non-finite"):
        ks_test(a, b, weights_a=np.ones(50))  # was a finite p-value with the NaN ignored


def test_plot_scores_names_nan_scores_and_bad_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    s = rng.random(100)
    bad = s.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="test_scores: received 1 non-finite"):
        plot_scores(bad, y)  # was hist's "forward transform of start or stop invalid"
    with pytest.raises(ValueError, match="train_scores: received 1 non-finite"):
        plot_scores(s, y, bad, y)  # was drawn, with a KS p-value of nan
    with pytest.raises(ValueError, match="test_weights has 10 entries"):
        plot_scores(s, y, test_weights=np.ones(10))  # was a raw IndexError


def test_binned_efficiency_names_bad_weights_and_nan_scores():
    x, s, y = [10.0, 20.0, 30.0, 40.0], [0.9, 0.1, 0.8, 0.2], [1, 1, 0, 0]
    with pytest.raises(ValueError, match="weights has 3 entries"):
        binned_efficiency(x, s, y, [0, 25, 50], weights=[1.0, 1.0, 1.0])  # was a raw IndexError
    with pytest.raises(ValueError, match="non-finite"):
        binned_efficiency(x, [0.9, 0.1, np.nan, 0.2], y, [0, 25, 50])  # was counted as failing the cut


def test_sculpting_ignores_jets_without_a_mass():
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, 400)
    y = rng.integers(0, 2, 400)
    s = rng.normal(y)
    missing = np.flatnonzero(y == 0)[0]
    expected = sculpting_metrics(np.delete(m, missing), np.delete(s, missing), np.delete(y, missing) == 1)
    m[missing] = np.nan
    got = sculpting_metrics(m, s, y == 1)
    # was jsd null and inv_jsd null (documented as "both shapes equal") from one NaN mass
    assert got["jsd_50"] == expected["jsd_50"] and got["jsd_50"] > 0
    assert got["inv_jsd_50"] == expected["inv_jsd_50"]
    res = plot_mass_sculpting(m, s, y)  # was hist's "forward transform of start or stop invalid"
    assert np.isfinite(res.jsd[0.5])


class _Keras:
    def __init__(self, out):
        self.out = np.asarray(out)

    def predict(self, batch, verbose=0):
        return self.out


class _Input:
    name = "x"


class _Session:
    def __init__(self, out):
        self.out = np.asarray(out)

    def get_inputs(self):
        return [_Input()]

    def run(self, names, feed):
        return [self.out]


def test_onnx_verification_counts_nan_on_one_side_as_a_disagreement():
    batch = {"x": np.zeros((3, 2), np.float32)}
    keras_out = [[0.2], [0.5], [0.7]]
    assert _max_diff(_Keras(keras_out), _Session([[0.2], [np.nan], [0.7]]), batch) == np.inf  # was 0.0
    assert _max_diff(_Keras([[np.nan], [0.5]]), _Session([[0.1], [0.5]]), batch) == np.inf
    assert _max_diff(_Keras([[np.nan], [0.5]]), _Session([[np.nan], [0.5]]), batch) == 0.0


def test_evaluate_test_split_with_one_class_names_the_run(tmp_path):
    import uproot

    rng = np.random.default_rng(1)
    for name, shift in (("sig", 1), ("bkg", 0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["jets"] = {"jet_mass": rng.normal(100 + 40 * shift, 30, 150), "jet_tau21": rng.normal(0.6, 0.2, 150)}
    cfg = {
        "data": {"files": [{"path": str(tmp_path / "sig.root"), "tree": "jets", "label": 1},
                           {"path": str(tmp_path / "bkg.root"), "tree": "jets", "label": 0}],
                 "inputs": {"jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau21"]}}},
        "model": {"name": "dense", "units": [4]},
        "training": {"epochs": 1, "verbose": 0},
    }
    trainer = Trainer(cfg, log=lambda _: None)
    trainer.fit(tmp_path / "run")
    data = load(trainer.config)
    keep = np.asarray(data["label"]) == 1
    only_signal = {k: (v[keep] if np.ndim(v) and len(v) == len(keep) else v) for k, v in data.items()}
    # was scikit-learn-level "efficiency_curve needs signal (label 1) and background jets ..."
    with pytest.raises(InputDataError, match=r"test split of .*run has \d+ jets \(0 .*\); its metrics need both"):
        evaluate_run(tmp_path / "run", data=only_signal)


def test_integrated_gradients_mean_baseline_keeps_padded_slots_padded():
    import keras

    x_in = keras.Input((4, 2), name="seq")
    real = keras.ops.cast(keras.ops.any(keras.ops.not_equal(x_in, 0.0), axis=-1, keepdims=True), "float32")
    summed = keras.ops.sum(keras.layers.Dense(3, activation="tanh")(x_in) * real, axis=1)
    model = keras.Model({"seq": x_in}, keras.layers.Dense(1, activation="sigmoid")(summed))
    x = np.random.default_rng(0).normal(size=(6, 4, 2)).astype(np.float32)
    x[:, 2:] = 0.0  # two padded slots per jet
    x[0, 1:] = 0.0
    e = explain(model, {"seq": x}, "integrated_gradients", task="binary", mask_value=0.0, baseline="mean", n_steps=64)
    summed_values = e.values["seq"].reshape(len(x), -1).sum(axis=1)
    # the attributions left after zeroing the padded slots still add up (the baseline had filled them)
    assert np.max(np.abs(summed_values - (e.outputs - e.base_values))) <= e.extra["completeness_error"] + 1e-6
    assert e.extra["completeness_error"] < 1e-3


def test_binned_efficiency_with_negative_weights_keeps_the_value_and_gives_an_interval():
    from hepnn.metrics import efficiency_from_hist, efficiency_hist

    # bin 1: passed weight 1, total 0.5 -> efficiency 2 (negative weights); bin 2 an ordinary one
    h = efficiency_hist([10, 12, 30, 40, 45], [True, False, True, True, False], [0, 25, 50],
                        weights=[1.0, -0.5, 1.0, 1.0, 0.2])
    e = efficiency_from_hist(h)  # was "clopper_pearson: expected 0 <= k <= n"
    np.testing.assert_allclose(e.eff, [2.0, 2.0 / 2.2])
    assert e.hi[0] == 1.0 and 0 < e.lo[0] < 1
    assert e.lo[1] < e.eff[1] < e.hi[1]


def test_multiclass_metrics_keep_signed_weights_and_name_a_class_with_non_positive_total():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8],
                      [0.4, 0.5, 0.1]])
    y = np.array([0, 1, 1, 2, 2, 0])
    w = np.array([1.0, 2.0, -0.5, 1.0, 0.5, 1.0])
    # correct: jets 0, 1, 3, 4 (weights 1 + 2 + 1 + 0.5 = 4.5) of a signed total 5
    assert multiclass_metrics(probs, y, ["q", "W", "t"], [0.5], weights=w)["accuracy"] == pytest.approx(0.9)
    w[4] = -1.5  # 't' jets: 1 - 1.5 = -0.5; was "efficiency_curve needs signal (label 1) ..."
    with pytest.raises(ValueError, match=r"weights: the 2 't' jets' weights sum to -0.5 .*check the weights of this class"):
        multiclass_metrics(probs, y, ["q", "W", "t"], [0.5], weights=w)


def test_anomaly_accuracy_is_weighted_like_the_auc_beside_it():
    from hepnn.training.evaluate import compute_metrics

    errors = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3])
    y = np.array([1, 0, 1, 0, 0, 0])  # 2 anomalous jets: the 2 highest errors (jets 0 and 1) are flagged
    w = np.array([1.0, 2.0, 1.0, -0.5, 1.0, 1.0])
    got = compute_metrics(errors, y, "autoencoder", ["qcd", "top"], [0.5], weights=w)
    # correct: jets 0, 3, 4, 5 (1 - 0.5 + 1 + 1 = 2.5) of a signed total 5.5; unweighted 4 / 6 (was given)
    assert got["accuracy"] == pytest.approx(2.5 / 5.5, abs=1e-6)
    assert compute_metrics(errors, y, "autoencoder", ["qcd", "top"], [0.5])["accuracy"] == pytest.approx(4 / 6, abs=1e-6)


def test_evaluation_weighted_weights_metrics_and_report(tmp_path):
    # QCD mixed from samples with cross-section weights: an unweighted rejection means nothing
    import uproot
    from sklearn.metrics import roc_auc_score

    from hepnn.plotting.report import build_report
    from hepnn.training.evaluate import predict_split

    rng = np.random.default_rng(3)
    for name, shift in (("sig", 1), ("bkg_lo", 0), ("bkg_hi", 0.6)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["jets"] = {"jet_mass": rng.normal(100 + 40 * shift, 30, 200), "jet_tau21": rng.normal(0.6, 0.2, 200),
                         "w": rng.uniform(0.5, 1.5, 200)}
    files = [{"path": str(tmp_path / "sig.root"), "tree": "jets", "label": 1},
             {"path": str(tmp_path / "bkg_lo.root"), "tree": "jets", "label": 0, "weight": 20.0},
             {"path": str(tmp_path / "bkg_hi.root"), "tree": "jets", "label": 0, "weight": 0.5}]
    cfg = {"data": {"files": files, "weight": "w", "spectators": ["jet_mass"],
                    "inputs": {"jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau21"]}}},
           "model": {"name": "dense", "units": [4]}, "training": {"epochs": 2, "verbose": 0},
           "evaluation": {"weighted": True}}
    Trainer(cfg, log=lambda _: None).fit(tmp_path / "run")
    metrics = evaluate_run(tmp_path / "run")
    pred = predict_split(tmp_path / "run")
    y, s, w = np.asarray(pred["label"]), np.asarray(pred["outputs"]).reshape(-1), np.asarray(pred["weight"], float)
    assert w.max() >= 10 and w.min() <= 0.75  # the file groups' weights times the branch's
    assert metrics["weighted"] is True
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-6)
    assert abs(metrics["auc"] - roc_auc_score(y, s)) > 1e-3  # the weights matter here
    cut = cut_for_efficiency(s[y == 1], 0.5, w[y == 1])
    passing = (y == 0) & (s >= cut)
    assert metrics["rejection"]["0.5"] == pytest.approx(w[y == 0].sum() / w[passing].sum(), rel=1e-3)
    report = build_report(tmp_path / "run", out=tmp_path / "report", progress=False)
    roc = report.figure("roc")
    assert roc.summary["auc"]["run"] == pytest.approx(metrics["auc"], abs=1e-4)
    assert "Weighted by the jets' weights" in roc.caption


def test_kfold_evaluate_on_other_data_uses_the_runs_preprocessing_and_keeps_fold_metrics(tmp_path):
    # `hepnn evaluate KFOLD_RUN --data OTHER.yaml` standardised OTHER's jets with a fit on OTHER's own
    # training split (not the run's preprocessing.json): wrong scores and AUC; and it overwrote each
    # fold's metrics.json (its own fold's metrics) with the metrics of the other data
    import json

    import uproot
    from sklearn.metrics import roc_auc_score

    import hepnn
    from hepnn.io.split import assign_fold, fold_key
    from hepnn.models import load_model

    rng = np.random.default_rng(5)
    for name, shift in (("sig", 1.0), ("bkg", -1.0), ("far", 4.0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["jets"] = {"a": rng.normal(shift, 1, 150).astype(np.float32), "b": rng.normal(0, 1, 150).astype(np.float32),
                         "w": rng.uniform(0.5, 1.5, 150)}

    def config(signal):
        return {"data": {"directory": str(tmp_path), "weight": "w",
                         "files": [{"path": signal, "tree": "jets", "label": 1},
                                   {"path": "bkg.root", "tree": "jets", "label": 0, "weight": 5.0}],
                         "inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}}, "split": {"seed": 11}},
                "model": {"name": "dense", "units": [4]}, "evaluation": {"weighted": True},
                "training": {"epochs": 1, "verbose": 0, "folds": 3}}

    import yaml

    Trainer(config("sig.root"), log=lambda _: None).fit(tmp_path / "run")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(config("far.root")))
    evaluate_run(tmp_path / "run")
    own = [json.loads((tmp_path / "run" / "folds" / str(k) / "metrics.json").read_text()) for k in range(3)]
    metrics = evaluate_run(tmp_path / "run", data_config=tmp_path / "other.yaml")

    prep = hepnn.Tagger.load(tmp_path / "run").preprocessing
    models = [load_model(tmp_path / "run" / "folds" / str(k) / "model.keras") for k in range(3)]
    y, s, w = [], [], []
    for name, label, weight in (("far.root", 1, 1.0), ("bkg.root", 0, 5.0)):
        x = uproot.open(tmp_path / name)["jets"].arrays(["a", "b", "w"], library="np")
        jet = prep.transform({"jet": np.stack([x["a"], x["b"]], axis=1)})["jet"]
        fold = assign_fold(fold_key(name, np.arange(150), np.zeros(150, np.int64), 11), 3)
        per_model = [m.predict({"jet": jet}, verbose=0).reshape(-1) for m in models]
        y.append(np.full(150, label)), s.append(np.choose(fold, per_model)), w.append(x["w"] * weight)
    y, s, w = np.concatenate(y), np.concatenate(s), np.concatenate(w)
    assert metrics["n_test"] == 300
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-5)
    assert json.loads((tmp_path / "run" / "metrics_other.json").read_text())["auc"] == metrics["auc"]
    for k in range(3):
        fold_dir = tmp_path / "run" / "folds" / str(k)
        assert json.loads((fold_dir / "metrics.json").read_text()) == own[k]
        assert (fold_dir / "metrics_other.json").is_file()
