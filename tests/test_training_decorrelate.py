"""Mass decorrelation: distance correlation, the DisCo penalty, the adversary, config and trainer hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepnn.config import load_config
from hepnn.exceptions import ConfigError
from hepnn.training.decorrelate import distance_correlation, distance_correlation_numpy


# --- distance correlation -----------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_distance_correlation_matches_the_direct_computation(weighted):
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    y = x**2 + rng.normal(scale=0.5, size=60)
    w = rng.uniform(0.1, 2.0, size=60) if weighted else None
    expected = distance_correlation_numpy(x, y, w)
    got = float(distance_correlation(x.astype("float32"), y.astype("float32"),
                                     None if w is None else w.astype("float32")))
    assert 0.05 < expected < 0.95
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_distance_correlation_reference_against_the_textbook_formula():
    # unweighted V-statistic from the mean-based double centring (Szekely et al. 2007)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    y = y + x
    a = np.abs(x[:, None] - x[None, :])
    b = np.abs(y[:, None] - y[None, :])
    A = a - a.mean(0) - a.mean(1)[:, None] + a.mean()
    B = b - b.mean(0) - b.mean(1)[:, None] + b.mean()
    textbook = (A * B).mean() / np.sqrt((A * A).mean() * (B * B).mean())
    assert distance_correlation_numpy(x, y) == pytest.approx(textbook, rel=1e-12)


def test_distance_correlation_is_one_for_linear_and_small_for_independent():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=1000).astype("float32") * 100.0  # GeV-like values
    assert float(distance_correlation(x, -0.01 * x + 3.0)) == pytest.approx(1.0, abs=1e-4)
    y = rng.normal(size=1000).astype("float32")
    assert float(distance_correlation(x, y)) < 0.01


def test_zero_weights_drop_jets_and_integer_weights_repeat_them():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=40).astype("float32"), rng.normal(size=40).astype("float32")
    y[:20] += x[:20]
    keep = np.r_[np.ones(20), np.zeros(20)].astype("float32")
    assert float(distance_correlation(x, y, keep)) == pytest.approx(
        float(distance_correlation(x[:20], y[:20])), rel=1e-4)
    twice = np.r_[np.full(10, 2.0), np.ones(30)].astype("float32")
    repeated = float(distance_correlation(np.r_[x, x[:10]], np.r_[y, y[:10]]))
    assert float(distance_correlation(x, y, twice)) == pytest.approx(repeated, rel=1e-4)


def test_distance_correlation_is_finite_with_a_constant_sample_or_no_weight():
    import tensorflow as tf

    x = tf.Variable(np.full(16, 0.5, dtype="float32"))
    m = np.linspace(50, 300, 16).astype("float32")
    with tf.GradientTape() as tape:
        d = distance_correlation(x, m)
    grad = tape.gradient(d, x)
    assert float(d) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(grad.numpy()))
    assert float(distance_correlation(m, m, np.zeros(16, "float32"))) == 0.0


# --- audit: the weighted dCorr^2 of Kasieczka & Shih (arXiv:2001.05310) by brute force ----------


def _disco_reference(x, y, w=None):
    """dCorr^2 as in the paper's reference code: weights normalised to mean 1, double-centred
    distance matrices with weighted row means, loops only (no shared code with hepnn)."""
    n = len(x)
    w = np.ones(n) if w is None else np.asarray(w, float)
    nw = w * n / w.sum()  # normedweight: mean 1

    def centred(v):
        a = [[abs(float(v[i]) - float(v[j])) for j in range(n)] for i in range(n)]
        avg = [sum(a[i][k] * nw[k] for k in range(n)) / n for i in range(n)]
        grand = sum(avg[i] * nw[i] for i in range(n)) / n
        return [[a[i][j] - avg[i] - avg[j] + grand for j in range(n)] for i in range(n)]

    def mean2(a, b):
        return sum(nw[i] * sum(a[i][j] * b[i][j] * nw[j] for j in range(n)) / n for i in range(n)) / n

    a, b = centred(x), centred(y)
    return mean2(a, b) / np.sqrt(mean2(a, a) * mean2(b, b))


def _batch(seed, n=24):
    rng = np.random.default_rng(seed)
    mass = rng.exponential(80.0, n) + 20.0  # GeV
    label = (rng.random(n) < 0.4).astype("float32")
    score = 1 / (1 + np.exp(-(mass / 60 - 1 + 2 * label + rng.normal(0, 0.7, n))))
    weight = rng.uniform(0.2, 3.0, n)
    return score, mass, label, weight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_distance_correlation_against_the_brute_force_reference(seed):
    score, mass, _, weight = _batch(seed)
    for w in (None, weight):
        ref = _disco_reference(score, mass, w)
        assert 0.01 < ref < 0.99
        assert distance_correlation_numpy(score, mass, w) == pytest.approx(ref, rel=1e-10)
        got = distance_correlation(score.astype("float32"), mass.astype("float32"),
                                   None if w is None else w.astype("float32"))
        assert float(got) == pytest.approx(ref, rel=1e-4, abs=1e-6)
    # only the normalised weights matter
    for factor in (1e-4, 1e4):
        got = distance_correlation(score.astype("float32"), mass.astype("float32"), (factor * weight).astype("float32"))
        assert float(got) == pytest.approx(_disco_reference(score, mass, weight), rel=1e-4)


def test_disco_penalty_uses_only_the_background_jets_and_their_weights():
    from hepnn.training.decorrelate_layers import DiscoPenalty

    score, mass, label, weight = _batch(4, 30)
    bkg = label == 0
    col = lambda v: np.asarray(v, "float32").reshape(-1, 1)  # noqa: E731
    inputs = [col(score), col(mass), col(label), col(weight)]
    for background_only, keep in ((True, bkg), (False, np.ones(30, bool))):
        layer = DiscoPenalty(7.5, background_only)
        out = layer(inputs)
        np.testing.assert_array_equal(np.asarray(out), inputs[0])
        expected = 7.5 * _disco_reference(score[keep], mass[keep], weight[keep])
        assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-4)


def test_negative_weights_count_as_zero_in_both_penalties():
    # NLO samples: background weights summing to less than zero in a batch made the penalty infinite
    from hepnn.training.decorrelate_layers import AdversaryLoss, DiscoPenalty

    score, mass, label, weight = _batch(6, 30)
    bkg = np.flatnonzero(label == 0)
    weight[bkg[::2]] *= -4.0
    assert weight[label == 0].sum() < 0
    clipped = np.maximum(weight, 0.0)
    col = lambda v: np.asarray(v, "float32").reshape(-1, 1)  # noqa: E731
    layer = DiscoPenalty(2.0, True)
    layer([col(score), col(mass), col(label), col(weight)])
    keep = (label == 0) & (weight > 0)
    assert float(layer.losses[0]) == pytest.approx(2.0 * _disco_reference(score[keep], mass[keep], weight[keep]), rel=1e-4)
    edges = [60.0, 90.0, 140.0]
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(30, 4))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype("float32")
    adversary = AdversaryLoss(edges, True, 1.0)
    adversary([col(score), probs, col(mass), col(label), col(weight)])
    nll = np.array([-np.log(probs[i, sum(mass[i] >= e for e in edges)]) for i in range(30)])
    w = clipped * (label == 0)
    assert float(adversary.losses[0]) == pytest.approx(-np.sum(w * nll) / np.sum(w), rel=1e-5)
    with pytest.raises(ValueError, match="non-negative"):
        distance_correlation_numpy(score, mass, weight)


@pytest.mark.parametrize("case", ["single_background", "constant_mass", "constant_score", "no_background"])
def test_disco_penalty_edge_batches_are_zero_with_finite_gradients(case):
    import tensorflow as tf

    from hepnn.training.decorrelate_layers import penalty_weights

    score, mass, label, weight = _batch(5, 16)
    mass = mass * 1000.0  # MeV: large values
    label[:] = 1.0
    if case == "single_background":
        label[3] = 0.0
    elif case in ("constant_mass", "constant_score"):
        label[:8] = 0.0
        if case == "constant_mass":
            mass[:8] = 91187.6
        else:
            score[:8] = 0.3
    s = tf.Variable(score.astype("float32"))
    w = penalty_weights(label.reshape(-1, 1), weight.astype("float32").reshape(-1, 1), True)
    with tf.GradientTape() as tape:
        d = distance_correlation(s, mass.astype("float32"), w)
    grad = tape.gradient(d, s).numpy()
    assert np.isfinite(float(d)) and float(d) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() < 1e-3
    assert distance_correlation_numpy(score, mass, np.asarray(w)) == 0.0


def test_adversary_loss_value_against_a_numpy_reference():
    from hepnn.training.decorrelate_layers import AdversaryLoss

    rng = np.random.default_rng(8)
    n, edges = 40, [60.0, 90.0, 140.0]
    mass = np.r_[rng.exponential(80.0, n - 4) + 20, edges[:3], 10.0]  # values on the edges go up a bin
    label = (rng.random(n) < 0.3).astype("float32")
    weight = rng.uniform(0.2, 2.0, n).astype("float32")
    logits = rng.normal(size=(n, 4))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype("float32")
    col = lambda v: np.asarray(v, "float32").reshape(-1, 1)  # noqa: E731
    layer = AdversaryLoss(edges, True, 2.5)
    layer([col(np.zeros(n)), probs, col(mass), col(label), col(weight)])
    nll = [-np.log(probs[i, sum(mass[i] >= e for e in edges)]) for i in range(n)]
    bkg = label == 0
    l_adv = np.sum(weight[bkg] * np.array(nll)[bkg]) / np.sum(weight[bkg])
    assert float(layer.losses[0]) == pytest.approx(-2.5 * l_adv, rel=1e-5)


# --- config -------------------------------------------------------------------------------


def _config(decorrelate, spectators=("jet_mass", "jet_pt")):
    return {"data": {"spectators": list(spectators)}, "training": {"decorrelate": decorrelate}}


def test_config_names_the_valid_spectators():
    with pytest.raises(ConfigError, match=r"training\.decorrelate\.variable: 'jet_mas'.*jet_mass, jet_pt"):
        load_config(_config({"method": "disco", "variable": "jet_mas"}))
    with pytest.raises(ConfigError, match="listed now: none"):
        load_config(_config({"method": "disco", "variable": "jet_mass"}, spectators=()))


@pytest.mark.parametrize("bad", [{"strength": -1.0}, {"strength": float("inf")}, {"method": "ddt"}, {"bins": 1}])
def test_config_rejects_bad_options(bad):
    with pytest.raises(ConfigError, match="training.decorrelate"):
        load_config(_config({"method": "adversary", "variable": "jet_mass", **bad}))


def test_config_round_trips(tmp_path):
    from hepnn.config import save_config

    config = load_config(_config({"method": "adversary", "variable": "jet_mass", "strength": 10, "bins": 8}))
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml").training == config.training
    assert config.training.decorrelate.background_only is True


# --- training ------------------------------------------------------------------------------


def toy_data(n=3000, seed=0):
    """A tagger on (mass, x) sculpts: signal peaks in mass, background falls; x separates weakly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    mass = np.where(y == 1, rng.normal(1.75, 0.2, n), 0.4 + rng.exponential(0.6, n))
    x = rng.normal(size=n) + y
    return {
        "jet": np.stack([mass, x], 1).astype("float32"),
        "label": y.astype("int32"),
        "weight": np.ones(n, "float32"),
        "split": rng.choice([0, 1, 2], n, p=[0.6, 0.1, 0.3]).astype("int8"),
        "spec_jet_mass": (100 * mass).astype("float32"),
    }


def toy_config(decorrelate=None, epochs=5, **training):
    t = {"epochs": epochs, "batch_size": 128, "verbose": 0, "early_stopping": None, **training}
    if decorrelate is not None:
        t["decorrelate"] = {"variable": "jet_mass", **decorrelate}
    return {
        "data": {"inputs": {"jet": {"kind": "flat", "variables": ["m", "x"]}}, "spectators": ["jet_mass"]},
        "model": {"name": "dense", "units": [16, 16]},
        "training": t,
    }


def _background_dcorr(run_dir, data):
    from hepnn.models import load_model

    model = load_model(run_dir / "model.keras")
    bkg = (data["split"] == 2) & (data["label"] == 0)
    scores = np.asarray(model.predict({"jet": data["jet"][bkg]}, verbose=0))[:, 0]
    idx = np.random.default_rng(0).choice(int(bkg.sum()), 300, replace=False)
    return distance_correlation_numpy(scores[idx], data["spec_jet_mass"][bkg][idx]), model


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    from hepnn.training.trainer import Trainer

    data = toy_data()
    out = tmp_path_factory.mktemp("plain") / "run"
    Trainer(toy_config(), log=lambda _: None).fit(out, data=data)
    return out, data


def test_disco_saves_the_plain_classifier_and_decorrelates(plain_run, tmp_path):
    from hepnn.training.evaluate import evaluate_run
    from hepnn.training.trainer import Trainer

    plain, data = plain_run
    trainer = Trainer(toy_config({"method": "disco", "strength": 2.0}), log=lambda _: None).fit(tmp_path / "disco", data=data)
    assert all(np.isfinite(r["loss"]) for r in trainer.history_)
    d_plain, _ = _background_dcorr(plain, data)
    d_disco, model = _background_dcorr(tmp_path / "disco", data)
    assert [t.name for t in model.inputs] == ["jet"]  # the saved model is the classifier, not the wrapper
    assert trainer.model_.name == model.name
    assert d_plain > 0.08
    assert d_disco < d_plain / 3, (d_disco, d_plain)
    metrics = evaluate_run(tmp_path / "disco", data=data)
    plain_metrics = evaluate_run(plain, data=data)
    assert metrics["sculpting"]["variable"] == "jet_mass"
    assert metrics["sculpting"]["inv_jsd_50"] > 2 * plain_metrics["sculpting"]["inv_jsd_50"]
    assert json.loads((tmp_path / "disco" / "metrics.json").read_text())["sculpting"] == metrics["sculpting"]


def test_adversary_trains_and_decorrelates(plain_run, tmp_path):
    from hepnn.training.trainer import Trainer

    plain, data = plain_run
    config = toy_config({"method": "adversary", "strength": 30.0, "pretrain_epochs": 0})
    trainer = Trainer(config, log=lambda _: None).fit(tmp_path / "adv", data=data)
    losses = [r["loss"] for r in trainer.history_]
    assert all(np.isfinite(losses))
    # the logged loss is the classifier's objective L_clf - 30 L_adv, with L_adv near ln(10) (10 mass bins)
    assert -30 * np.log(10) < losses[-1] < -30 * 1.5
    d_plain, _ = _background_dcorr(plain, data)
    d_adv, model = _background_dcorr(tmp_path / "adv", data)
    assert [t.name for t in model.inputs] == ["jet"]
    assert d_adv < 0.7 * d_plain, (d_adv, d_plain)


def test_an_interrupted_adversary_run_resumes_with_its_adversary(tmp_path):
    from hepnn.training.trainer import Trainer

    data = toy_data(n=1200)
    decor = {"method": "adversary", "strength": 5.0, "pretrain_epochs": 1}
    full = Trainer(toy_config(decor, epochs=3, deterministic=True), log=lambda _: None).fit(tmp_path / "full", data=data)
    Trainer(toy_config(decor, epochs=2, deterministic=True), log=lambda _: None).fit(tmp_path / "cut", data=data)
    (tmp_path / "cut" / "model.keras").unlink()
    state = json.loads((tmp_path / "cut" / "checkpoints" / "state.json").read_text())
    with np.load(tmp_path / "cut" / "checkpoints" / state["model"]) as ckpt:
        paths = [v["path"] for v in json.loads(str(ckpt["manifest"]))["model"]]
    assert "adversary_output/kernel" in paths  # the checkpoint holds the adversary
    lines = []
    resumed = Trainer(toy_config(decor, epochs=3, deterministic=True), log=lines.append).fit(tmp_path / "cut", data=data)
    assert any("resuming from epoch 2" in line for line in lines)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_decorrelation_refuses_streaming_and_other_tasks(tmp_path):
    from hepnn.training.decorrelate import check

    config = load_config(toy_config({"method": "disco"}))
    with pytest.raises(ConfigError, match="training.streaming: false") as err:
        check(config, "binary", streaming=True)
    assert "hepnn convert" not in str(err.value)  # `hepnn train` cannot read a converted folder
    with pytest.raises(ConfigError, match="binary taggers"):
        check(config, "multiclass", streaming=False)
