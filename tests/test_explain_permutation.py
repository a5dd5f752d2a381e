"""Permutation importance: the one feature a model uses is the most important, with a spread."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from hepnn.explain import explain
from hepnn.models import MODELS


def one_feature_model(feature=2, n_features=4):
    """A dense tagger computing ``sigmoid(8 relu(x[feature]) - 4)``: it reads only ``feature``."""
    model = MODELS.get("dense")({"jet": (n_features,)}, units=(8,), dropout=0.0)
    hidden, out = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    kernel, bias = hidden.get_weights()
    keep = np.zeros_like(kernel)
    keep[feature] = 1.0
    hidden.set_weights([keep, np.zeros_like(bias)])
    kernel, bias = out.get_weights()
    out.set_weights([np.ones_like(kernel), np.full_like(bias, -4.0)])
    return model


def test_deciding_feature_has_top_importance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    labels = (x[:, 2] > 0).astype(int)
    e = explain(one_feature_model(), {"jet": x}, method="permutation", labels=labels, n_repeats=3)
    imp = e.extra["importance_jet"]
    assert np.argmax(imp) == 2 and np.all(imp[[0, 1, 3]] == 0.0)
    assert e.extra["importance_std_jet"].shape == (4,) and e.extra["importance_std_jet"][2] > 0
    assert np.argmax(e.extra["auc_drop_jet"]) == 2 and e.extra["auc_drop_jet"][2] > 0
    assert np.argmax(e.mean_abs()["jet"]) == 2


def test_sequence_permutation_keeps_padding():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4, 2)).astype("float32")
    x[:, 2:] = 0.0
    model = MODELS.get("deepsets")({"trk": (4, 2)}, phi_units=(4,), dense_units=(4,), dropout=0.0)
    e = explain(model, {"trk": x}, method="permutation", n_repeats=2)
    assert np.all(e.values["trk"][:, 2:] == 0.0)
    assert e.extra["importance_trk"].shape == (2,)


def test_perturbed_copies_are_scored_together_in_full_batches():
    """Target.predict_each: the outputs of one predict per item, in order, in far fewer model calls
    (a perturbation explainer's 30 copies of 50 jets would each fill a whole batch alone)."""
    from hepnn.explain.target import Target

    rng = np.random.default_rng(1)
    target = Target(one_feature_model(feature=1), task="binary", batch_size=64)
    items = [(i, {"jet": rng.normal(size=(n, 4)).astype("float32")}) for i, n in enumerate([50] * 29 + [7])]
    calls = []
    plain = target._fn
    target._fn = lambda batch: calls.append(1) or plain(batch)
    one_by_one = [target.predict(x) for _, x in items]
    n_single = len(calls)
    calls.clear()
    together = list(target.predict_each(items, rows=200))
    assert [tag for tag, _ in together] == list(range(30))
    for (_, out), want in zip(together, one_by_one):
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)
    assert n_single == 30 and len(calls) == 7 * 4 + 1  # 7 calls of 200 jets (4 batches of 64), one of 57
    # the permutation explainer equals the importances of one predict per permuted copy
    model, x = one_feature_model(), rng.normal(size=(40, 4)).astype("float32")
    e = explain(model, {"jet": x}, method="permutation", n_repeats=3, random_state=5)
    single, perms = Target(model, task="binary"), np.random.default_rng(5)
    reference = single.predict({"jet": x})
    want = np.zeros((3, 4))
    for f in range(4):
        for r in range(3):
            column = x.copy()
            column[:, f] = x[perms.permutation(40), f]
            want[r, f] = np.mean(np.abs(reference - single.predict({"jet": column})))
    np.testing.assert_allclose(e.extra["importance_jet"], want.mean(axis=0), rtol=1e-6, atol=1e-7)


def test_multiclass_auc_drop_is_of_the_explained_class():
    """A multiclass target explains one class: the AUC drop is that class against the others,
    whatever labels the explained jets happen to carry (was: the largest label present)."""
    from hepnn.explain.target import Target

    model = MODELS.get("dense")({"jet": (4,)}, units=(8,), dropout=0.0, n_outputs=3, task="multiclass")
    hidden, out = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    kernel, bias = hidden.get_weights()
    keep = np.zeros_like(kernel)
    keep[2] = 1.0
    hidden.set_weights([keep, np.zeros_like(bias)])
    kernel, bias = out.get_weights()
    toward_first = np.zeros_like(kernel)
    toward_first[:, 0] = 1.0  # class 0's probability rises with feature 2
    out.set_weights([toward_first, np.zeros_like(bias)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    labels = np.where(x[:, 2] > 0, 0, 1)  # only classes 0 and 1 among these jets
    target = Target(model, task="multiclass", class_index=0)
    e = explain(target, {"jet": x}, method="permutation", labels=labels, n_repeats=3)
    assert np.argmax(e.extra["auc_drop_jet"]) == 2 and e.extra["auc_drop_jet"][2] > 0.3
    # the last class, explained by default, has no jets here: no AUC to drop
    e = explain(Target(model, task="multiclass"), {"jet": x}, method="permutation", labels=labels, n_repeats=1)
    assert "auc_drop_jet" not in e.extra


def test_autoencoder_auc_drop_counts_the_other_classes_as_anomalies():
    """An autoencoder trained on class 1 (``evaluation.background`` naming the label-1 class) flags
    the class-0 jets: the AUC drop is of class 0 against class 1, as `hepnn evaluate` counts it
    (was: of the larger label, the trained-on class, so every drop had its sign turned round)."""
    import keras

    from hepnn.explain.target import Target

    inp = keras.Input(shape=(4,), name="jet")
    # reconstructs every feature but the third: the anomaly score is x[:, 2]**2 / 4
    recon = keras.layers.Dense(4, use_bias=False, kernel_initializer=keras.initializers.Constant(
        np.diag([1.0, 1.0, 0.0, 1.0])))(inp)
    model = keras.Model({"jet": inp}, recon)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    labels = np.where(np.abs(x[:, 2]) < 0.7, 1, 0)  # the trained-on class 1: small |x2|, low score
    e = explain(Target(model, task="autoencoder", background=1), {"jet": x}, method="permutation",
                labels=labels, n_repeats=1)
    score = x[:, 2].astype(np.float64) ** 2 / 4
    np.testing.assert_allclose(e.outputs, score, rtol=1e-5, atol=1e-7)
    anomalous = labels != 1
    expected = roc_auc_score(anomalous, score) - roc_auc_score(anomalous, score - e.values["jet"][:, 2])
    assert roc_auc_score(anomalous, score) == 1.0 and expected > 0.3
    np.testing.assert_allclose(e.extra["auc_drop_jet"][2], expected, atol=1e-9)
    np.testing.assert_array_equal(e.extra["auc_drop_jet"][[0, 1, 3]], 0.0)
