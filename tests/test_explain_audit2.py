"""Second audit of the explainers: brute-force and closed-form answers on hand-built Keras models.

The first audit (test_explain_audit.py) covers multiclass saliency, linear gradients, padded
baselines and the input checks; these cover what it does not: SHAP in probability space,
finite differences, Grad-CAM and occlusion on non-square images against manual loops,
permutation repeats against the same generator, surrogate fidelity, and activation maximisation.
"""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.exceptions import ConfigError, InputDataError
from hepnn.explain import explain, explain_run
from hepnn.explain.registry import check_options
from hepnn.explain.target import Target
from hepnn.metrics import roc_auc
from hepnn.training.trainer import Trainer
from test_training_trainer import quiet, toy_config, toy_data


def dense_model(weights, bias=None, activation=None, name="jet"):
    """``activation(x @ weights + bias)`` with the weights set by hand."""
    import keras

    weights = np.asarray(weights, "float32")
    x = keras.Input((weights.shape[0],), name=name)
    dense = keras.layers.Dense(weights.shape[1], activation=activation)
    model = keras.Model({name: x}, dense(x))
    dense.set_weights([weights, np.zeros(weights.shape[1], "float32") if bias is None else np.asarray(bias, "float32")])
    return model


def hidden_model(hidden):
    """``sigmoid(sum(x @ hidden))`` whose layer ``hidden`` (no activation) has the given weights."""
    import keras

    hidden = np.asarray(hidden, "float32")
    x = keras.Input((hidden.shape[0],), name="jet")
    layer = keras.layers.Dense(hidden.shape[1], name="hidden")
    out = keras.layers.Dense(1, activation="sigmoid", name="output")
    model = keras.Model({"jet": x}, out(layer(x)))
    layer.set_weights([hidden, np.zeros(hidden.shape[1], "float32")])
    out.set_weights([np.ones((hidden.shape[1], 1), "float32"), np.zeros(1, "float32")])
    return model


def image_model(shape=(5, 6, 2), n_classes=3, seed=2):
    """A tiny CNN on non-square images: conv (same) -> conv (valid) -> softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    image = keras.Input(shape, name="img")
    c1 = keras.layers.Conv2D(3, 2, padding="same", activation="tanh", name="c1")(image)
    c2 = keras.layers.Conv2D(2, 2, padding="valid", activation="tanh", name="c2")(c1)
    out = keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Flatten()(c2))
    return keras.Model({"img": image}, out)


# --- SHAP -------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["deep", "kernel", "permutation"])
def test_shap_of_a_linear_model_is_w_times_x_minus_the_background_mean(algorithm):
    w = np.array([1.0, -2.0, 0.5, 0.0])
    model = dense_model(w[:, None], bias=[0.3])
    x = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    # exact for a linear model with any number of samples: few keep the permutation explainer fast
    e = explain(model, {"jet": x}, method="shap", task="regression", algorithm=algorithm, background_size=12,
                n_samples=2)
    np.testing.assert_allclose(e.values["jet"], w * (x - x.mean(axis=0)), atol=1e-5)
    np.testing.assert_allclose(e.base_values, 0.3 + x.mean(axis=0) @ w, atol=1e-5)


@pytest.mark.parametrize("algorithm", ["deep", "kernel"])
def test_shap_of_a_sigmoid_tagger_adds_up_to_the_probability(algorithm):
    # the documented output space is the score (probability), not the logit
    model = dense_model([[2.0], [-1.0], [0.5]], activation="sigmoid")
    x = np.random.default_rng(1).normal(size=(10, 3)).astype("float32")
    e = explain(model, {"jet": x}, method="shap", algorithm=algorithm, background_size=10)
    p = model.predict({"jet": x}, verbose=0)[:, 0]
    np.testing.assert_allclose(e.outputs, p, atol=1e-6)
    np.testing.assert_allclose(e.base_values, p.mean(), atol=1e-6)
    np.testing.assert_allclose(e.values["jet"].sum(axis=1) + e.base_values, p, atol=1e-5)


def test_shap_of_a_multiclass_model_explains_the_requested_class():
    w = np.random.default_rng(2).normal(size=(4, 3))
    model = dense_model(w, activation="softmax")
    x = np.random.default_rng(3).normal(size=(10, 4)).astype("float32")
    p = model.predict({"jet": x}, verbose=0)
    for c in (0, 1):
        e = explain(model, {"jet": x}, method="shap", algorithm="kernel", class_index=c, background_size=10)
        np.testing.assert_allclose(e.outputs, p[:, c], atol=1e-6)
        np.testing.assert_allclose(e.values["jet"].sum(axis=1) + e.base_values, p[:, c], atol=1e-5)


@pytest.mark.parametrize(("key", "value"), [("background_size", 0), ("background_size", -2), ("n_samples", 0)])
def test_shap_counts_below_one_raise_a_config_error(key, value):
    # background_size=0 gave NaN values and base values from DeepExplainer, without an error
    with pytest.raises(ConfigError, match=f"explain.options.shap.{key}: expected a positive int, received {value}"):
        check_options("shap", {key: value})
    model = dense_model([[1.0], [2.0]], activation="sigmoid")
    x = np.random.default_rng(4).normal(size=(5, 2)).astype("float32")
    with pytest.raises(ConfigError, match=f"explain.options.shap.{key}"):
        explain(model, {"jet": x}, method="shap", algorithm="deep", **{key: value})


@pytest.mark.parametrize(("background", "match"), [
    ({"other": np.ones((3, 2))}, r"background: the model needs jet; missing jet \(received other\)"),
    ({"jet": np.ones((3, 5))}, r"background\['jet'\]: expected an array of shape \(n_jets >= 1, 2\), received shape \(3, 5\)"),
    ({"jet": np.ones((0, 2))}, r"received shape \(0, 2\)"),
])
def test_shap_background_of_the_wrong_inputs_raises_input_data_error(background, match):
    # a missing input was a bare KeyError, a wrong shape failed inside shap, no jets gave NaN
    model = dense_model([[1.0], [2.0]], activation="sigmoid")
    x = np.random.default_rng(4).normal(size=(5, 2)).astype("float32")
    with pytest.raises(InputDataError, match=match):
        explain(model, {"jet": x}, method="shap", algorithm="deep", background=background)


# --- gradients --------------------------------------------------------------------------


def test_saliency_and_gradient_times_input_match_central_differences():
    import keras

    keras.utils.set_random_seed(5)
    x_in = keras.Input((4,), name="jet")
    hidden = keras.layers.Dense(5, activation="tanh")(x_in)
    model = keras.Model({"jet": x_in}, keras.layers.Dense(1, activation="sigmoid")(hidden))
    x = np.random.default_rng(5).normal(size=(8, 4)).astype("float32")
    eps = 1e-2
    fd = np.zeros(x.shape)
    for i in range(4):
        up, down = x.copy(), x.copy()
        up[:, i] += eps
        down[:, i] -= eps
        fd[:, i] = (model.predict({"jet": up}, verbose=0)[:, 0].astype(float)
                    - model.predict({"jet": down}, verbose=0)[:, 0]) / (2 * eps)
    target = Target(model, batch_size=3)  # gradients through padded last batches
    e = explain(target, {"jet": x}, method="saliency")
    np.testing.assert_allclose(e.values["jet"], fd, atol=5e-5)
    e = explain(target, {"jet": x}, method="saliency", times_input=True, absolute=True)
    np.testing.assert_allclose(e.values["jet"], np.abs(fd * x), atol=5e-5)
    e = explain(target, {"jet": x}, method="integrated_gradients", n_steps=64)
    zero = model.predict({"jet": np.zeros_like(x)}, verbose=0)[:, 0]
    np.testing.assert_allclose(e.values["jet"].sum(axis=1), e.outputs - zero, atol=1e-4)


# --- images -----------------------------------------------------------------------------


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_equals_the_manual_map_on_a_non_square_image(relu):
    import tensorflow as tf

    import keras

    model = image_model()
    x = np.random.default_rng(6).normal(size=(7, 5, 6, 2)).astype("float32")
    probe = keras.Model(model.inputs, [model.get_layer("c1").output, model.outputs[0]])
    for c in (0, 1):
        e = explain(Target(model, class_index=c, batch_size=3), {"img": x}, method="gradcam", layer="c1", relu=relu)
        with tf.GradientTape() as tape:
            maps, out = probe(tf.constant(x))
            y = out[:, c]
        grads, maps = tape.gradient(y, maps).numpy(), maps.numpy()
        cam = (grads.mean(axis=(1, 2))[:, None, None, :] * maps).sum(axis=-1)
        cam = np.maximum(cam, 0.0) if relu else cam
        expected = tf.image.resize(cam[..., None], (5, 6), method="bilinear").numpy()[..., 0]
        assert np.abs(expected).max() > 1e-3
        for channel in (0, 1):
            np.testing.assert_allclose(e.values["img"][..., channel], expected, atol=1e-7)


@pytest.mark.parametrize(("patch_size", "stride"), [(2, 1), (3, 2), (4, 4), (6, 3)])
def test_occlusion_equals_a_manual_loop_on_a_non_square_image(patch_size, stride):
    model = image_model()
    x = np.random.default_rng(7).normal(size=(4, 5, 6, 2)).astype("float32")
    e = explain(Target(model, class_index=1), {"img": x}, method="occlusion", patch_size=patch_size, stride=stride,
                fill=0.5)
    p = model.predict({"img": x}, verbose=0)[:, 1]
    total, count = np.zeros((4, 5, 6)), np.zeros((5, 6))
    for y0 in sorted({*range(0, max(5 - patch_size, 0) + 1, stride), max(5 - patch_size, 0)}):
        for x0 in sorted({*range(0, max(6 - patch_size, 0) + 1, stride), max(6 - patch_size, 0)}):
            covered = x.copy()
            covered[:, y0:y0 + patch_size, x0:x0 + patch_size] = 0.5
            drop = p - model.predict({"img": covered}, verbose=0)[:, 1]
            total[:, y0:y0 + patch_size, x0:x0 + patch_size] += drop[:, None, None]
            count[y0:y0 + patch_size, x0:x0 + patch_size] += 1
    assert count.min() >= 1
    for channel in (0, 1):
        np.testing.assert_allclose(e.values["img"][..., channel], total / count, atol=1e-6)


# --- sequences --------------------------------------------------------------------------


def test_track_dropping_masks_the_slot_and_equals_a_manual_loop():
    import keras

    from hepnn.models import MODELS

    keras.utils.set_random_seed(8)
    x = np.random.default_rng(8).normal(size=(8, 4, 3)).astype("float32")
    x[:, 3] = -999.0
    x[5:, 2] = -999.0
    model = MODELS.get("rnn")({"trk": (4, 3)}, units=(4,), dense_units=(4,), dropout=0.0, mask_value=-999.0)
    target = Target(model)
    reference = target.predict({"trk": x})
    e = explain(target, {"trk": x}, method="track_dropping")
    expected = np.zeros((8, 4))
    for j in range(8):
        for p in np.flatnonzero(np.any(x[j] != -999.0, axis=-1)):
            dropped = x[j:j + 1].copy()
            dropped[0, p] = -999.0  # masked: the model sees a padded slot, not a zero track
            expected[j, p] = reference[j] - target.predict({"trk": dropped})[0]
    np.testing.assert_allclose(e.values["trk"].sum(axis=-1), expected, atol=1e-6)
    assert np.all(e.values["trk"][x[..., 0] == -999.0] == 0.0)


def test_permutation_with_repeats_equals_a_manual_loop_with_the_same_generator():
    import keras

    keras.utils.set_random_seed(9)
    jet, trk = keras.Input((2,), name="jet"), keras.Input((3, 2), name="trk")
    h = keras.layers.Concatenate()([jet, keras.layers.Flatten()(trk)])
    model = keras.Model({"jet": jet, "trk": trk}, keras.layers.Dense(1, activation="sigmoid")(h))
    rng = np.random.default_rng(9)
    x = {"jet": rng.normal(size=(40, 2)).astype("float32"), "trk": rng.normal(size=(40, 3, 2)).astype("float32")}
    x["trk"][:, 2] = 0.0
    x["trk"][20:, 1] = 0.0
    labels = (rng.random(40) < 0.5).astype(int)
    target = Target(model)
    e = explain(target, x, method="permutation", n_repeats=3, random_state=7, labels=labels)
    reference = target.predict(x)
    gen = np.random.default_rng(7)
    real = np.any(x["trk"] != 0.0, axis=-1)
    for name in ("jet", "trk"):
        importance, auc_drop, delta = np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((40, 2))
        for f in range(2):
            for r in range(3):
                perm = gen.permutation(40)
                shuffled = x[name].copy()
                if name == "jet":
                    shuffled[:, f] = x[name][perm, f]
                else:
                    keep = real & real[perm]
                    shuffled[:, :, f] = np.where(keep, x[name][perm, :, f], x[name][:, :, f])
                out = target.predict({**x, name: shuffled})
                delta[:, f] += (reference - out) / 3
                importance[r, f] = np.mean(np.abs(reference - out))
                auc_drop[r, f] = roc_auc(labels, reference) - roc_auc(labels, out)
        np.testing.assert_allclose(e.extra[f"importance_{name}"], importance.mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(e.extra[f"importance_std_{name}"], importance.std(axis=0), atol=1e-12)
        np.testing.assert_allclose(e.extra[f"auc_drop_{name}"], auc_drop.mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(e.extra[f"auc_drop_std_{name}"], auc_drop.std(axis=0), atol=1e-12)
        if name == "jet":
            np.testing.assert_allclose(e.values["jet"], delta, atol=1e-12)
        else:
            share = real / np.maximum(real.sum(axis=1), 1)[:, None]
            np.testing.assert_allclose(e.values["trk"], share[..., None] * delta[:, None, :], atol=1e-12)


# --- surrogate --------------------------------------------------------------------------


def test_surrogate_fidelity_equals_a_manual_recomputation_and_depth_is_used():
    from sklearn.metrics import r2_score
    from sklearn.tree import DecisionTreeRegressor

    model = dense_model([[2.0], [-1.0], [0.5]], activation="sigmoid")
    x = np.random.default_rng(10).normal(size=(80, 3)).astype("float32")
    p = Target(model).predict({"jet": x})
    test, train = np.split(np.random.default_rng(3).permutation(80), [20])
    r2 = []
    for depth in (1, 3):
        e = explain(model, {"jet": x}, method="surrogate", max_depth=depth, test_fraction=0.25, random_state=3)
        tree = DecisionTreeRegressor(max_depth=depth, random_state=3).fit(x[train].astype(float), p[train])
        pred = tree.predict(x[test].astype(float))
        assert e.extra["fidelity_r2"] == pytest.approx(r2_score(p[test], pred), abs=1e-12)
        assert e.extra["fidelity_agreement"] == pytest.approx(np.mean((pred >= 0.5) == (p[test] >= 0.5)))
        assert e.extra["rules"].count("value:") == 2 ** depth  # the leaves of a full tree of that depth
        np.testing.assert_allclose(e.values["jet"].sum(axis=1) + e.base_values, e.extra["tree_outputs"], atol=1e-12)
        r2.append(e.extra["fidelity_r2"])
    assert r2[1] > r2[0]


def test_surrogate_with_too_few_jets_to_hold_out_says_its_fidelity_is_on_the_fitted_jets():
    # 2% of 50 jets held out one: its R^2 was NaN; 1% held out none and n_test claimed all 50
    from sklearn.metrics import r2_score
    from sklearn.tree import DecisionTreeRegressor

    model = dense_model([[2.0], [-1.0], [0.5]], activation="sigmoid")
    x = np.random.default_rng(17).normal(size=(50, 3)).astype("float32")
    p = Target(model).predict({"jet": x})
    order = np.random.default_rng(0).permutation(50)
    fitted = DecisionTreeRegressor(max_depth=2, random_state=0).fit(x[order].astype(float), p[order])
    for fraction in (0.01, 0.02):
        e = explain(model, {"jet": x}, method="surrogate", max_depth=2, test_fraction=fraction)
        assert e.extra["fidelity_on"] == "training" and e.extra["n_test"] == 0 and e.extra["n_fit"] == 50
        assert e.extra["fidelity_r2"] == pytest.approx(r2_score(p[order], fitted.predict(x[order].astype(float))))
    e = explain(model, {"jet": x}, method="surrogate", max_depth=2, test_fraction=0.04)
    assert e.extra["fidelity_on"] == "held-out" and e.extra["n_test"] == 2 and np.isfinite(e.extra["fidelity_r2"])


# --- activation maximisation ------------------------------------------------------------


def test_activation_maximization_moves_each_unit_independently_of_the_others():
    # one step norm for all units made unit 0 (|w| = 1) beside unit 1 (|w| = 100) move
    # 0.014 instead of 1.0 in 10 steps of 0.1
    model = hidden_model([[1.0, 0.0], [0.0, 100.0], [0.0, 0.0]])
    x = np.random.default_rng(11).normal(size=(10, 3)).astype("float32")
    options = {"layer": "hidden", "n_steps": 10, "learning_rate": 0.1, "l2": 0.0}
    alone = explain(model, {"jet": x}, method="activation_maximization", units=[0], **options)
    both = explain(model, {"jet": x}, method="activation_maximization", units=[0, 1], **options)
    np.testing.assert_allclose(alone.values["jet"], [[1.0, 0.0, 0.0]], atol=1e-5)
    np.testing.assert_allclose(both.values["jet"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-5)
    start = x.mean(axis=0)
    np.testing.assert_allclose(both.extra["activation_start"], [start[0], 100 * start[1]], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(both.extra["activation_end"] - both.extra["activation_start"], [1.0, 100.0], rtol=1e-4)


def test_activation_maximization_keeps_padded_slots_and_raises_the_output():
    import keras

    x = np.random.default_rng(12).normal(size=(6, 3, 2)).astype("float32")
    x[:, 2] = -999.0
    trk = keras.Input((3, 2), name="trk")
    dense = keras.layers.Dense(1)
    model = keras.Model({"trk": trk}, dense(keras.layers.Flatten()(trk)))
    dense.set_weights([np.arange(1.0, 7.0).reshape(-1, 1).astype("float32"), np.zeros(1, "float32")])
    # the step's length was measured with the padded slot's gradient (w[4:]) in it: steps of 0.037, not 0.1
    e = explain(model, {"trk": x}, method="activation_maximization", task="regression", mask_value=-999.0,
                n_steps=5, learning_rate=0.1, l2=0.0)
    pattern = e.extra["pattern_trk"][0]
    assert np.all(pattern[2] == -999.0) and np.all(e.values["trk"][0, 2] == 0.0)
    # the gradient of the real slots is w[:4]: five steps of 0.1 along it raise the output by 0.5 |w[:4]|
    w = np.arange(1.0, 5.0)
    np.testing.assert_allclose(e.values["trk"][0, :2].reshape(-1), 0.5 * w / np.linalg.norm(w), atol=1e-5)
    # (the padded slot adds -999 * 11 to the output: float32 resolves it to 1e-3)
    rise = e.extra["activation_end"][0] - e.extra["activation_start"][0]
    assert rise == pytest.approx(0.5 * np.linalg.norm(w), abs=2e-3)


def test_activation_maximization_from_an_all_padded_start_raises_a_config_error():
    # start="zero" with pad value 0 put every slot at the pad value: the masked model's gradient
    # was 0 and the "optimised" pattern was the start (activation_end == activation_start), silently
    from hepnn.models import MODELS

    x = np.random.default_rng(18).normal(size=(6, 4, 3)).astype("float32")
    x[:, 3] = 0.0
    model = MODELS.get("deepsets")({"trk": (4, 3)}, phi_units=(4,), dense_units=(4,), dropout=0.0)
    with pytest.raises(ConfigError, match=r"start: 'zero' sets every slot of 'trk' to its pad value \(0\)"):
        explain(model, {"trk": x}, method="activation_maximization", start="zero", n_steps=2)
    x[:4, 1:] = 0.0  # slot 0 is real in every jet, the others in fewer than half
    e = explain(model, {"trk": x}, method="activation_maximization", n_steps=2)
    assert np.any(e.values["trk"][0, 0] != 0.0) and np.all(e.values["trk"][0, 1:] == 0.0)
    x[:, 0] = 0.0
    x[:, 1:3] = np.where(np.arange(6)[:, None, None] < 4, 0.0, 1.0)  # slots 1, 2 real in 2 of 6 jets only
    with pytest.raises(ConfigError, match="no slot of 'trk' is real in at least half of the jets"):
        explain(model, {"trk": x}, method="activation_maximization", n_steps=2)


@pytest.mark.parametrize(("options", "match"), [
    ({"units": [0, 1]}, r"the explained output \(layer unset\) is one unit"),
    ({"units": [], "layer": "hidden"}, "expected a non-empty list of unit indices"),
    ({"units": [-1], "layer": "hidden"}, "expected a non-empty list of unit indices"),
])
def test_activation_maximization_rejects_units_it_would_ignore(options, match):
    # units=[0, 1] without a layer optimised the same output twice
    with pytest.raises(ConfigError, match=match):
        check_options("activation_maximization", options)
    model = hidden_model([[1.0, 0.0], [0.0, 1.0]])
    x = np.random.default_rng(13).normal(size=(4, 2)).astype("float32")
    with pytest.raises(ConfigError, match=match):
        explain(model, {"jet": x}, method="activation_maximization", n_steps=1, **options)


def test_activation_maximization_rows_get_no_jet_labels_when_there_are_as_many_units_as_jets():
    # 3 units, 3 jets: the jets' labels were attached to the units' rows (by_class of units)
    model = hidden_model(np.eye(3))
    x = np.random.default_rng(14).normal(size=(3, 3)).astype("float32")
    e = explain(model, {"jet": x}, method="activation_maximization", layer="hidden", units=[0, 1, 2], n_steps=2,
                labels=np.array([0, 1, 1]))
    assert e.n_jets == 3 and e.labels is None


def weighted_data():
    data = toy_data(n=300)
    data["weight"] = np.random.default_rng(15).uniform(0.1, 3.0, 300).astype("float32")
    return data


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    """A one-epoch dense run with non-uniform jet weights and weighted evaluation."""
    path = tmp_path_factory.mktemp("audit2") / "run"
    config = toy_config(epochs=1)
    config["model"] = {"name": "dense", "units": [4], "dropout": 0.0}
    config["evaluation"] = {"weighted": True}
    Trainer(config, log=quiet).fit(path, data=weighted_data())
    return path


def test_explain_run_activation_maximization_of_one_unit_on_one_jet_has_no_jet_summaries(weighted_run):
    # one unit and one jet: the jet's label and pT bin were given to the unit's row
    import json

    expl = explain_run(weighted_run, "activation_maximization", n_jets=1, data=weighted_data(), plots=False,
                       options={"n_steps": 2})
    assert expl.n_jets == 1 and expl.labels is None
    summary = json.loads((weighted_run / "explain" / "activation_maximization" / "summary.json").read_text())
    assert "by_pt_bin" not in summary and "by_class" not in summary


def test_permutation_with_weights_equals_a_weighted_manual_loop():
    # weights were not an option: the AUC drop was that of an unweighted AUC, not the evaluation's
    model = dense_model([[2.0], [-1.0], [0.5]], activation="sigmoid")
    rng = np.random.default_rng(16)
    x = rng.normal(size=(50, 3)).astype("float32")
    labels = (x[:, 0] + rng.normal(size=50) > 0).astype(int)
    w = rng.uniform(0.1, 3.0, 50)
    target = Target(model)
    e = explain(target, {"jet": x}, method="permutation", n_repeats=2, random_state=4, labels=labels, weights=w)
    reference = target.predict({"jet": x})
    gen = np.random.default_rng(4)
    importance, auc_drop = np.zeros((2, 3)), np.zeros((2, 3))
    for f in range(3):
        for r in range(2):
            shuffled = x.copy()
            shuffled[:, f] = x[gen.permutation(50), f]
            out = target.predict({"jet": shuffled})
            importance[r, f] = np.sum(w * np.abs(reference - out)) / np.sum(w)
            auc_drop[r, f] = roc_auc(labels, reference, w) - roc_auc(labels, out, w)
    np.testing.assert_allclose(e.extra["importance_jet"], importance.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(e.extra["auc_drop_jet"], auc_drop.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(e.extra["auc_drop_std_jet"], auc_drop.std(axis=0), rtol=1e-9, atol=1e-15)
    unweighted = explain(target, {"jet": x}, method="permutation", n_repeats=2, random_state=4, labels=labels)
    assert not np.allclose(unweighted.extra["auc_drop_jet"], e.extra["auc_drop_jet"])
    with pytest.raises(InputDataError, match=r"weights: expected one finite weight per jet \(50\)"):
        explain(target, {"jet": x}, method="permutation", labels=labels, weights=w[:10])


def test_explain_run_permutation_uses_the_evaluation_weights(weighted_run):
    from hepnn.explain.run import run_target
    from hepnn.training.evaluate import split_data

    data = weighted_data()
    expl = explain_run(weighted_run, "permutation", n_jets=30, data=data, plots=False, options={"n_repeats": 2})
    pred = split_data(weighted_run, "test", data=data)
    pick = np.sort(np.random.default_rng(0).choice(len(pred["label"]), size=30, replace=False))
    np.testing.assert_array_equal(expl.inputs["jet"], np.asarray(pred["data"]["jet"], "float32")[pick])
    target = run_target(weighted_run)
    weighted = explain(target, expl.inputs, method="permutation", n_repeats=2, labels=expl.labels,
                       weights=np.asarray(pred["weight"])[pick])
    np.testing.assert_allclose(expl.extra["auc_drop_jet"], weighted.extra["auc_drop_jet"], rtol=1e-12)
    np.testing.assert_allclose(expl.extra["importance_jet"], weighted.extra["importance_jet"], rtol=1e-12)
    unweighted = explain(target, expl.inputs, method="permutation", n_repeats=2, labels=expl.labels)
    assert not np.allclose(unweighted.extra["importance_jet"], expl.extra["importance_jet"], rtol=1e-6)


def test_activation_maximization_unit_beyond_the_layer_is_a_config_error():
    model = hidden_model([[1.0, 0.0], [0.0, 1.0]])
    x = np.random.default_rng(19).normal(size=(4, 2)).astype("float32")
    with pytest.raises(ConfigError, match=r"units: layer 'hidden' has 2 units, received 5"):
        explain(model, {"jet": x}, method="activation_maximization", layer="hidden", units=[5], n_steps=1)


def test_activation_maximization_of_a_per_element_layer_averages_the_real_elements():
    # the mean ran over every slot: the padded one (-999) pulled the unit's activation to ~ -1000
    import keras

    x = np.random.default_rng(20).normal(size=(6, 3, 2)).astype("float32")
    x[:, 2] = -999.0
    trk = keras.Input((3, 2), name="trk")
    phi = keras.layers.Dense(2, name="phi")
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(phi(trk)))
    model = keras.Model({"trk": trk}, out)
    w = np.array([[1.0, -1.0], [2.0, 0.5]], "float32")
    phi.set_weights([w, np.array([0.1, 0.2], "float32")])
    e = explain(model, {"trk": x}, method="activation_maximization", task="regression", mask_value=-999.0,
                layer="phi", units=[0, 1], n_steps=4, learning_rate=0.1, l2=0.0)
    for row, unit in enumerate((0, 1)):
        for key, pattern in (("activation_start", e.inputs["trk"][row]), ("activation_end", e.extra["pattern_trk"][row])):
            expected = np.mean(pattern[:2] @ w[:, unit] + [0.1, 0.2][unit])
            assert e.extra[key][row] == pytest.approx(expected, abs=1e-5)
    # each step of 0.1 along the unit's gradient (w[:, unit] / 2 per real slot) raises it by 0.1 |w[:, unit]| / sqrt(2)
    rise = e.extra["activation_end"] - e.extra["activation_start"]
    np.testing.assert_allclose(rise, 0.4 * np.linalg.norm(w, axis=0) / np.sqrt(2), rtol=1e-4)


def test_a_class_index_beyond_the_outputs_is_a_config_error():
    with pytest.raises(ConfigError, match=r"class_index: expected 0 <= class_index < 3 .* received 3"):
        Target(image_model(), class_index=3)


def test_gradcam_on_a_model_with_its_convolutions_nested_says_why_it_does_not_apply():
    """A Conv2D inside a nested sub-model is not reached; the message said only 'no Conv2D layer'."""
    import keras

    inner = keras.Sequential([keras.Input((5, 6, 2)), keras.layers.Conv2D(2, 3, name="c1"),
                              keras.layers.GlobalAveragePooling2D()], name="tower")
    inp = keras.Input((5, 6, 2), name="img")
    model = keras.Model({"img": inp}, keras.layers.Dense(1, activation="sigmoid")(inner(inp)))
    x = np.random.default_rng(0).normal(size=(4, 5, 6, 2)).astype("float32")
    from hepnn.explain.registry import NotApplicableError

    with pytest.raises(NotApplicableError, match=r"no Conv2D layer at its top level .*nested model\(s\) \[.tower.\]"):
        explain(Target(model), {"img": x}, method="gradcam")
