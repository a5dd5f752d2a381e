"""Training against brute-force numpy references: logged losses, weights, metrics, early stopping,
optimisers, preprocessing and fold splits (tiny models, a few hundred jets, one or a few epochs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepnn.config import load_config
from hepnn.config.schema import OptimizerConfig
from hepnn.preprocessing import Preprocessor
from hepnn.training.baseline import train_bdt
from hepnn.training.evaluate import compute_metrics, multiclass_metrics
from hepnn.training.kfold import fold_data
from hepnn.training.optimizers import build_optimizer
from hepnn.training.splits import SPLITS, subset
from hepnn.training.trainer import Trainer, sample_weights

keras = pytest.importorskip("keras")


def quiet(_):
    pass


def toy(n=330, seed=5, n_train=230):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return {"jet": (rng.normal(size=(n, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": rng.uniform(0.1, 3.0, n).astype("float32"),
            "split": np.where(np.arange(n) < n_train, 0, 1).astype("int8")}


def config(model=None, **training):
    return {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
            "model": {"name": "dense", "units": [8], "dropout": 0.0, **(model or {})},
            "training": {"epochs": 1, "batch_size": 32, "early_stopping": None, "verbose": 0, **training}}


def bce(p, y, w):
    """Keras' weighted binary cross-entropy as ``fit`` logs it: ``sum(w * loss) / n_jets``."""
    p = np.clip(np.asarray(p, np.float64).reshape(-1), 1e-7, 1 - 1e-7)
    return float(np.sum(w * -(y * np.log(p) + (1 - y) * np.log(1 - p))) / len(p))


# --- logged losses ---------------------------------------------------------------------------


@pytest.mark.parametrize("distribute", ["auto", "multi_worker"])
def test_logged_losses_are_the_weighted_mean_over_jets_as_fit_logs_them(tmp_path, distribute):
    """230 training and 100 validation jets in batches of 32: the last batches are short. The
    multi-worker loop averaged the batches' means, over-weighting the short last batch (without L2,
    its val_loss was 1.057 where fit, and the numpy reference, give 1.202). Both add the L2 penalty of
    the weights, to the validation loss too (the loop's left it out)."""
    data = toy()
    # a learning rate of 1e-12: the model at the end of the epoch is the one every step saw
    cfg = config(model={"l2": 0.05}, distribute=distribute, optimizer={"name": "sgd", "learning_rate": 1e-12})
    trainer = Trainer(cfg, log=quiet).fit(tmp_path / "run", data=data)
    row = trainer.history_[0]
    penalty = sum(float(loss) for loss in trainer.model_.losses)  # the regularised layers' 0.05 * sum(kernel**2)
    assert penalty > 0.1
    for split, key in (("train", "loss"), ("val", "val_loss")):
        part = subset(data, split)
        p = trainer.model_.predict({"jet": part["jet"]}, verbose=0)
        assert row[key] == pytest.approx(bce(p, part["label"], part["weight"]) + penalty, rel=1e-5), (split, key)


class Snapshots(keras.callbacks.Callback):
    """Predictions on the validation jets and the weights at the end of every epoch."""

    def __init__(self, x):
        super().__init__()
        self.x, self.seen = x, []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((np.asarray(self.model.predict(self.x, verbose=0)), [w.copy() for w in self.model.get_weights()]))


def test_val_loss_with_balanced_class_weights_and_the_restored_best_epoch(tmp_path, monkeypatch):
    from hepnn.training import trainer as trainer_module

    data = toy(n=600, seed=0, n_train=450)
    val = subset(data, "val")
    snap = Snapshots({"jet": val["jet"]})
    fit_epochs = trainer_module._fit_epochs
    monkeypatch.setattr(trainer_module, "_fit_epochs",
                        lambda model, feed, callbacks, *a: fit_epochs(model, feed, [*callbacks, snap], *a))
    cfg = config(epochs=8, class_weight="balanced", early_stopping={"patience": 2},
                 optimizer={"name": "sgd", "learning_rate": 0.5, "momentum": 0.9})
    trainer = Trainer(cfg, log=quiet).fit(tmp_path / "run", data=data)
    w = sample_weights(trainer.config, val, ["background", "signal"])
    # balanced: both classes carry half of the total weight
    train = subset(data, "train")
    tw = sample_weights(trainer.config, train, ["background", "signal"]).astype(np.float64)
    assert tw[train["label"] == 0].sum() == pytest.approx(tw[train["label"] == 1].sum(), rel=1e-5)
    assert tw.sum() == pytest.approx(float(np.sum(train["weight"], dtype=np.float64)), rel=1e-5)
    history = [row["val_loss"] for row in trainer.history_]
    assert len(snap.seen) == len(history)
    for (p, _), logged in zip(snap.seen, history):
        assert logged == pytest.approx(bce(p, val["label"], w), rel=1e-4)
    best = int(np.argmin(history))
    # patience 2: it stops two epochs after the best one (or at the last epoch)
    assert len(history) == min(best + 3, 8) and trainer.stopped_early_ == (len(history) < 8)
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    for a, b in zip(snap.seen[best][1], saved.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- BDT baseline ------------------------------------------------------------------------------


def test_bdt_baseline_metrics_use_the_evaluation_signal_class(tmp_path):
    """``evaluation.signal`` naming class 0: the BDT's rejections were those of the other class
    (signal and background swapped), and baselines.npz drew it with the background as signal."""
    rng = np.random.default_rng(1)
    n = 1200
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + 0.8 * (y == 0)[:, None]  # class 0 ("top") is the signal-like one
    split = rng.choice([0, 2], n, p=[0.6, 0.4])
    data = {"jet": x, "label": y, "weight": np.ones(n), "split": split}
    metrics = train_bdt(data, ["jet"], tmp_path / "bdt", max_iter=20, working_points=[0.5, 0.7],
                        classes=["top", "qcd"], signal="top")
    saved = np.load(tmp_path / "bdt" / "scores.npz")
    p_top, labels = 1.0 - saved["outputs"].astype(np.float64), saved["label"]
    is_top = labels == 0
    assert metrics["auc"] == pytest.approx(roc_auc_score(is_top, p_top), abs=1e-5)
    assert metrics["n_signal"] == int(is_top.sum())
    for wp in (0.5, 0.7):  # brute force: the cut keeping a fraction wp of the top jets
        cut = np.sort(p_top[is_top])[::-1][int(np.ceil(wp * is_top.sum())) - 1]
        assert metrics["rejection"][f"{wp:g}"] == pytest.approx(1 / np.mean(p_top[~is_top] >= cut), rel=0.03)
    baselines = np.load(tmp_path / "baselines.npz")
    np.testing.assert_array_equal(baselines["labels_BDT"], is_top.astype(np.int32))
    np.testing.assert_allclose(baselines["scores_BDT"], p_top, atol=1e-6)


# --- metrics.json --------------------------------------------------------------------------------


def test_binary_and_multiclass_metrics_against_sklearn_with_ties_and_signed_weights():
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    s = np.round(rng.uniform(size=n) * 0.5 + 0.3 * y, 2)  # many ties
    w = rng.uniform(0.5, 2, n)
    m = compute_metrics(s, y, "binary", ["qcd", "top"], [0.8], weights=w)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-6)
    assert m["accuracy"] == pytest.approx(np.sum(w * ((s >= 0.5) == (y == 1))) / w.sum(), abs=1e-6)
    # signed weights: the weighted probability that signal outscores background, ties one half
    w[rng.choice(n, 30, replace=False)] *= -0.3
    sig, bkg = y == 1, y == 0
    above = (s[sig][:, None] > s[bkg][None, :]) + 0.5 * (s[sig][:, None] == s[bkg][None, :])
    ref = np.sum(w[sig][:, None] * w[bkg][None, :] * above) / (w[sig].sum() * w[bkg].sum())
    assert compute_metrics(s, y, "binary", ["qcd", "top"], [0.8], weights=w)["auc"] == pytest.approx(ref, abs=1e-6)
    # multiclass one-vs-rest
    labels = rng.integers(0, 3, n)
    probs = rng.dirichlet(np.ones(3), n)
    probs[np.arange(n), labels] += 0.3
    probs = np.round(probs / probs.sum(axis=1, keepdims=True), 2)
    w = np.abs(w)
    mm = multiclass_metrics(probs, labels, ["b", "c", "light"], [0.5], np.abs(w))
    for i, name in enumerate(["b", "c", "light"]):
        assert mm["classes"][name]["auc"] == pytest.approx(roc_auc_score(labels == i, probs[:, i], sample_weight=w),
                                                           abs=1e-6)
    assert mm["accuracy"] == pytest.approx(np.sum(w * (probs.argmax(1) == labels)) / w.sum(), abs=1e-6)


# --- optimisers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "expected"), [
    ({"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True, "clipnorm": 1.5, "weight_decay": 1e-3},
     {"momentum": 0.9, "nesterov": True, "clipnorm": 1.5, "weight_decay": 1e-3}),
    ({"name": "adamw", "learning_rate": 0.002}, {"weight_decay": 0.004}),
    ({"name": "adamw", "weight_decay": 0.0}, {"weight_decay": 0.0}),
    ({"name": "rmsprop", "momentum": 0.5}, {"momentum": 0.5}),
])
def test_optimizer_options_reach_the_keras_optimizer(options, expected):
    built = build_optimizer(OptimizerConfig(**options)).get_config()
    assert built["learning_rate"] == pytest.approx(options.get("learning_rate", 1e-3), rel=1e-6)
    for key, value in expected.items():
        assert built[key] == pytest.approx(value) if not isinstance(value, bool) else built[key] is value


# --- preprocessing ---------------------------------------------------------------------------------


def test_standardisation_is_fitted_on_the_real_elements_only():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(300, 5, 3))
    x[..., 2] = 7.25  # a constant feature: scale 1, so it is only shifted
    mask = rng.uniform(size=(300, 5)) < 0.6
    x[~mask] = -999.0
    spec = {"c": {"kind": "sequence", "variables": ["a", "b", "k"], "standardize": True, "pad_value": -999.0}}
    p = Preprocessor(spec).fit({"c": x, "c_mask": mask})
    real = x[mask]
    np.testing.assert_allclose(p.mean_["c"], real.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(p.scale_["c"], [*real.std(axis=0)[:2], 1.0], rtol=1e-12)
    out = p.transform({"c": x, "c_mask": mask})["c"]
    np.testing.assert_allclose(out[mask], (real - real.mean(axis=0)) / np.array([*real.std(axis=0)[:2], 1.0]),
                               atol=1e-5)
    assert np.all(out[~mask] == -999.0)
    halves = Preprocessor(spec).partial_fit({"c": x[:100], "c_mask": mask[:100]}).partial_fit(
        {"c": x[100:], "c_mask": mask[100:]})
    np.testing.assert_allclose(halves.mean_["c"], p.mean_["c"], rtol=1e-12)
    np.testing.assert_allclose(halves.scale_["c"], p.scale_["c"], rtol=1e-12)


# --- splits and folds --------------------------------------------------------------------------------


def test_each_fold_model_tests_on_its_fold_and_never_trains_on_it():
    rng = np.random.default_rng(2)
    n = 500
    data = {"label": rng.integers(0, 2, n), "split": rng.choice([0, 1, 2], n, p=[0.7, 0.15, 0.15]).astype(np.int8)}
    fold = rng.integers(0, 3, n)
    seen_in_test = np.zeros(n, int)
    for k in range(3):
        split = np.asarray(fold_data(data, fold, k)["split"])
        np.testing.assert_array_equal(split == SPLITS["test"], fold == k)
        seen_in_test += split == SPLITS["test"]
        # the other folds keep their validation jets, their test jets train
        np.testing.assert_array_equal(split[fold != k] == SPLITS["val"], data["split"][fold != k] == SPLITS["val"])
        assert len(subset(data, split == SPLITS["train"])["label"]) == np.sum((fold != k) & (data["split"] != 1))
    assert np.all(seen_in_test == 1)


def test_reweighting_gives_the_background_the_signal_spectrum():
    rng = np.random.default_rng(0)
    n = 4000
    y = (rng.uniform(size=n) < 0.3).astype(int)
    pt = np.where(y == 1, rng.normal(600, 40, n), rng.exponential(120, n) + 450)
    data = {"label": y, "weight": rng.uniform(0.5, 1.5, n), "spec_jet_pt": pt}
    cfg = load_config({"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a"]}}, "spectators": ["jet_pt"]},
                       "model": {"name": "dense"},
                       "training": {"class_weight": "balanced", "reweight": {"variable": "jet_pt", "bins": 10}}})
    w = sample_weights(cfg, data, ["qcd", "top"]).astype(np.float64)
    edges = np.histogram_bin_edges(pt, 10)
    h_bkg = np.histogram(pt[y == 0], edges, weights=w[y == 0])[0]
    h_sig = np.histogram(pt[y == 1], edges, weights=w[y == 1])[0]
    np.testing.assert_allclose(h_bkg / h_bkg.sum(), h_sig / h_sig.sum(), atol=1e-6)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum(), rel=1e-5)



def test_multi_worker_sequence_autoencoder_trains_with_per_jet_weights(tmp_path):
    """The loop's per-jet weights broadcast over the slots of a sequence autoencoder's loss (they were
    flattened to one per jet against one loss term per slot: a shape error), and its val_loss is fit's:
    the weighted squared error over every slot, divided by the number of slots."""
    rng = np.random.default_rng(0)
    n = 400
    seq = rng.normal(size=(n, 6, 2)).astype("float32")
    mask = rng.uniform(size=(n, 6)) < 0.6
    seq[~mask] = 0.0
    data = {"trk": seq, "trk_mask": mask, "label": rng.integers(0, 2, n).astype("int32"),
            "weight": rng.uniform(0.5, 2, n).astype("float32"),
            "split": rng.choice([0, 1, 2], n, p=[0.7, 0.15, 0.15]).astype("int8")}
    cfg = {"data": {"inputs": {"trk": {"kind": "sequence", "variables": ["a", "b"], "max_length": 6}}},
           "model": {"name": "autoencoder", "units": [4], "latent_dim": 2},
           "training": {"epochs": 1, "batch_size": 32, "early_stopping": None, "verbose": 0,
                        "train_classes": ["background"], "distribute": "multi_worker"}}
    trainer = Trainer(cfg, log=quiet).fit(tmp_path / "run", data=data)
    val = subset(data, "val")
    keep = val["label"] == 0
    x, w = val["trk"][keep].astype(np.float64), val["weight"][keep].astype(np.float64)
    error = ((x - trainer.model_.predict({"trk": val["trk"][keep]}, verbose=0)) ** 2).mean(axis=-1)  # (jets, slots)
    assert trainer.history_[0]["val_loss"] == pytest.approx(np.sum(w[:, None] * error) / error.size, rel=1e-5)


# --- mass decorrelation ------------------------------------------------------------------------------


def test_disco_penalty_acts_on_the_background_class_the_evaluation_names(tmp_path, monkeypatch):
    """Classes (top, qcd) with ``evaluation.signal: top``: the background is label 1. The penalty took
    the jets of label 0 (the signal) while the sculpting numbers and the reweighting use qcd. The
    logged val_loss is, per batch, ``sum(w * bce) / n + strength * dCorr^2(score, mass)`` over the
    batch's qcd jets (numpy reference), batches weighted by their size."""
    from hepnn.training import decorrelate
    from hepnn.training import trainer as trainer_module
    from hepnn.training.decorrelate import distance_correlation_numpy

    rng = np.random.default_rng(1)
    n, strength, batch = 500, 5.0, 40
    y = rng.integers(0, 2, n)
    data = {"jet": (rng.normal(size=(n, 3)) + (y == 0)[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": rng.uniform(0.5, 2.0, n).astype("float32"),
            "split": np.where(np.arange(n) < 380, 0, 1).astype("int8"),
            "spec_jet_mass": (rng.uniform(20, 200, n) + 30 * (y == 0)).astype("float32")}
    val = subset(data, "val")

    class Scores(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.p = np.asarray(decorrelate.classifier_of(self.model).predict({"jet": val["jet"]}, verbose=0))

    scores = Scores()
    fit_epochs = trainer_module._fit_epochs
    monkeypatch.setattr(trainer_module, "_fit_epochs",
                        lambda model, feed, callbacks, *a: fit_epochs(model, feed, [*callbacks, scores], *a))
    cfg = config(batch_size=batch, decorrelate={"method": "disco", "variable": "jet_mass", "strength": strength})
    cfg["data"]["spectators"] = ["jet_mass"]
    cfg["data"]["files"] = [{"path": "top.root", "label": 0, "name": "top"}, {"path": "qcd.root", "label": 1, "name": "qcd"}]
    cfg["evaluation"] = {"signal": "top"}
    trainer = Trainer(cfg, log=quiet).fit(tmp_path / "run", data=data)
    w = val["weight"].astype(np.float64)
    p = np.clip(scores.p.reshape(-1).astype(np.float64), 1e-7, 1 - 1e-7)
    bce_terms = -(val["label"] * np.log(p) + (1 - val["label"]) * np.log(1 - p))
    total = 0.0
    for start in range(0, len(p), batch):
        b = slice(start, start + batch)
        qcd = w[b] * (val["label"][b] == 1)
        total += np.sum(w[b] * bce_terms[b]) + len(p[b]) * strength * distance_correlation_numpy(
            p[b], val["spec_jet_mass"][b], qcd)
    assert trainer.history_[0]["val_loss"] == pytest.approx(total / len(p), rel=1e-4)


def test_adversary_loss_and_its_mass_bins_use_the_background_class_the_evaluation_names():
    from hepnn.training.decorrelate import attach, background_label
    from hepnn.training.decorrelate_layers import AdversaryLoss
    from hepnn.training.feeds import InMemoryFeed

    rng = np.random.default_rng(8)
    n, edges = 60, [60.0, 90.0, 140.0]
    mass = rng.exponential(80.0, n) + 20
    label = (rng.random(n) < 0.4).astype("float32")
    weight = rng.uniform(0.2, 2.0, n).astype("float32")
    logits = rng.normal(size=(n, 4))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype("float32")
    col = lambda v: np.asarray(v, "float32").reshape(-1, 1)  # noqa: E731
    layer = AdversaryLoss(edges, True, 2.5, background=1)
    layer([col(np.zeros(n)), probs, col(mass), col(label), col(weight)])
    nll = np.array([-np.log(probs[i, sum(mass[i] >= e for e in edges)]) for i in range(n)])
    bkg = label == 1
    assert float(layer.losses[0]) == pytest.approx(-2.5 * np.sum(weight[bkg] * nll[bkg]) / np.sum(weight[bkg]), rel=1e-5)
    assert AdversaryLoss.from_config(layer.get_config()).background == 1
    # the adversary's quantile bins come from the same background jets
    raw = config(decorrelate={"method": "adversary", "variable": "m"})
    raw["data"]["spectators"] = ["m"]
    cfg = load_config({**raw, "evaluation": {"signal": "background"}})
    cfg_data = {"label": label.astype("int32"), "split": np.zeros(n, "int8"), "spec_m": mass}
    assert background_label(cfg, cfg_data) == 1
    feed = InMemoryFeed({"jet": np.zeros((n, 3), "float32")}, label.astype("int32"), weight,
                        {"jet": np.zeros((0, 3), "float32")}, np.zeros(0, "int32"), np.zeros(0, "float32"), 32, 1)
    attach(feed, cfg, cfg_data)
    np.testing.assert_array_equal(feed.decorrelate_background_, mass[bkg].astype("float32"))


def test_the_run_steps_bdt_baseline_takes_the_configs_classes_and_signal(tmp_path):
    from types import SimpleNamespace

    from hepnn.config import to_dict
    from hepnn.training.step import _train_baseline

    rng = np.random.default_rng(4)
    n = 800
    y = rng.integers(0, 2, n)
    data = {"jet": rng.normal(size=(n, 3)) + 0.8 * (y == 0)[:, None], "label": y, "weight": np.ones(n),
            "split": rng.choice([0, 2], n, p=[0.6, 0.4])}
    raw = config()
    raw["data"]["files"] = [{"path": "top.root", "label": 0, "name": "top"}, {"path": "qcd.root", "label": 1, "name": "qcd"}]
    cfg = load_config({**raw, "evaluation": {"signal": "top", "working_points": [0.5]}, "baseline": {"max_iter": 10}})
    analysis = SimpleNamespace(config=cfg, name="toy")
    _train_baseline(analysis, tmp_path, {repr(to_dict(cfg.data)): data}, quiet)
    metrics = json.loads((tmp_path / "bdt" / "metrics.json").read_text())
    saved = np.load(tmp_path / "bdt" / "scores.npz")
    assert metrics["n_signal"] == int(np.sum(saved["label"] == 0))  # top, label 0, is the signal
    assert metrics["auc"] == pytest.approx(roc_auc_score(saved["label"] == 0, 1 - saved["outputs"]), abs=1e-5)


def test_multi_worker_loop_counts_the_jets_of_a_short_last_batch():
    """samples_per_s counts the jets trained on: 70 jets in batches of 32 are 70, not 3 x 32."""
    import tensorflow as tf

    from hepnn.training.distributed_loop import DistributedLoop

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.SGD(1e-12), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(70, 3)).astype("float32"), rng.integers(0, 2, 70).astype("float32"), np.ones(70, "float32")
    loop = DistributedLoop(model, strategy, "binary_crossentropy", "binary", 32)
    logs, timer = loop.run_epoch(tf.data.Dataset.from_tensor_slices((x, y, w)).batch(32))
    assert timer.n_samples == 70
    assert logs["loss"] == pytest.approx(bce(model.predict(x, verbose=0), y, w), rel=1e-5)


def test_balanced_classes_keep_their_balance_under_a_signal_reweight_with_signal_only_bins(caplog):
    """training.reweight towards the signal spectrum with signal jets in pT bins that hold no
    background: the target weight there was normalised in, then dropped, so the background total
    shrank (520 against 1000 on this toy) and the balanced classes were no longer balanced."""
    from types import SimpleNamespace

    from hepnn.training.trainer import sample_weights

    rng = np.random.default_rng(1)
    pt_bkg = rng.uniform(0, 100, 600)
    pt_sig = np.concatenate([rng.uniform(0, 100, 200), rng.uniform(150, 200, 200)])  # half beyond every background jet
    data = {"label": np.r_[np.zeros(600, int), np.ones(400, int)], "spec_jet_pt": np.r_[pt_bkg, pt_sig]}
    training = SimpleNamespace(class_weight="balanced",
                               reweight=SimpleNamespace(variable="jet_pt", bins=4, target="signal"))
    config = SimpleNamespace(training=training, evaluation=SimpleNamespace(signal=None, background=None),
                             data=SimpleNamespace(weight=None))
    with caplog.at_level("WARNING", logger="hepnn.training"):
        w = sample_weights(config, data, ["qcd", "top"]).astype(np.float64)
    labels = data["label"]
    np.testing.assert_allclose(w[labels == 0].sum(), w[labels == 1].sum(), rtol=1e-5)
    np.testing.assert_allclose(w.sum(), 1000, rtol=1e-5)
    assert any("without 'qcd' jets" in r.getMessage() and "50.0%" in r.getMessage() for r in caplog.records)


def test_balanced_class_weights_share_the_total_among_the_classes_present():
    """class_weight: balanced divided the total by the number of class names, so a class without
    jets (an autoencoder's untrained class, a class absent from a small split) shrank every weight."""
    from types import SimpleNamespace

    from hepnn.training.trainer import sample_weights

    data = {"label": np.r_[np.zeros(30, int), np.ones(10, int)]}
    config = SimpleNamespace(training=SimpleNamespace(class_weight="balanced", reweight=None),
                             evaluation=SimpleNamespace(signal=None, background=None), data=SimpleNamespace(weight=None))
    w = sample_weights(config, data, ["qcd", "top", "w"])
    assert w[:30].sum() == pytest.approx(20) and w[30:].sum() == pytest.approx(20)


def test_k_fold_summary_counts_infinite_rejections_instead_of_dropping_them():
    """A fold with no background jet passing the cut has rejection null in metrics.json; the k-fold
    summary dropped that working point from metrics.json's "folds" without a word."""
    from hepnn.training.evaluate import compute_metrics
    from hepnn.training.kfold import summarise

    y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    perfect = compute_metrics(y.astype(float), y, "binary", ["b", "s"], (0.5,))
    assert perfect["rejection"]["0.5"] is None  # infinite
    scores = np.random.default_rng(0).uniform(size=100)
    other = compute_metrics(scores, y, "binary", ["b", "s"], (0.5,))
    summary = summarise([perfect, other])
    assert summary["rejection"]["0.5"] == {"mean": None, "std": None, "n_infinite": 1,
                                           "mean_of_finite_folds": round(other["rejection"]["0.5"], 6)}
    assert summary["auc"]["mean"] == pytest.approx((1.0 + other["auc"]) / 2, abs=1e-6)
