"""Audit of the explainers against brute-force answers on hand-built models, and their input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hepnn.exceptions import ConfigError, InputDataError, UnknownNameError
from hepnn.explain import explain, explain_run
from hepnn.explain.target import infer_task
from hepnn.training.trainer import Trainer
from test_training_trainer import quiet, toy_config, toy_data


def softmax_model(weights):
    """``softmax(x @ weights)``: as many classes as input features (3 -> 3)."""
    import keras

    x = keras.Input((weights.shape[0],), name="jet")
    dense = keras.layers.Dense(weights.shape[1], activation="softmax")
    model = keras.Model({"jet": x}, dense(x))
    dense.set_weights([weights.astype("float32"), np.zeros(weights.shape[1], "float32")])
    return model


def linear_model(w, b=0.5):
    import keras

    x = keras.Input((len(w),), name="jet")
    dense = keras.layers.Dense(1)
    model = keras.Model({"jet": x}, dense(x))
    dense.set_weights([np.asarray(w, "float32")[:, None], np.array([b], "float32")])
    return model


def test_softmax_with_as_many_classes_as_features_explains_the_requested_class():
    # 3 features -> 3 classes used to be guessed an autoencoder: the "outputs" were the
    # reconstruction error (up to 3.5, not a probability) and class_index was ignored
    weights = np.diag([1.0, 2.0, -3.0])
    model = softmax_model(weights)
    assert infer_task(model) == "multiclass"
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    p = model.predict({"jet": x}, verbose=0)
    for c in (0, 1, 2):
        e = explain(model, {"jet": x}, method="saliency", class_index=c)
        np.testing.assert_allclose(e.outputs, p[:, c], atol=1e-6)
        # d p_c / d x = p_c (W[:, c] - sum_k p_k W[:, k])
        expected = p[:, c:c + 1] * (weights[:, c][None] - p @ weights.T)
        np.testing.assert_allclose(e.values["jet"], expected, atol=1e-5)


def test_linear_model_gradients_match_the_analytic_answer():
    w = np.array([1.0, -2.0, 0.5, 0.0])
    model = linear_model(w)
    x = np.random.default_rng(1).normal(size=(20, 4)).astype("float32")
    e = explain(model, {"jet": x}, method="saliency", task="regression")
    np.testing.assert_allclose(e.values["jet"], np.broadcast_to(w, x.shape), atol=1e-6)
    e = explain(model, {"jet": x}, method="integrated_gradients", task="regression", baseline="mean")
    np.testing.assert_allclose(e.values["jet"], w * (x - x.mean(axis=0)), atol=1e-5)


@pytest.mark.parametrize(("inputs", "match"), [
    ({"jet": np.zeros((0, 4), "float32")}, "received 0 jets"),
    ({"jet": np.ones((5, 3), "float32")}, r"expected an array of shape \(n_jets, 4\), received shape \(5, 3\)"),
    ({"jet": np.ones(4, "float32")}, r"received shape \(4,\)"),
    ({"jet": np.array([[0, 1, np.nan, 0], [0, 0, 0, 0]], "float32")}, r"1 of 2 jets hold NaN .*jet 0"),
])
def test_bad_inputs_raise_input_data_error(inputs, match):
    model = linear_model(np.ones(4))
    for method in ("saliency", "integrated_gradients", "surrogate"):
        with pytest.raises(InputDataError, match=match):
            explain(model, inputs, method=method, task="regression")


def test_labels_of_another_length_raise_input_data_error():
    model = linear_model(np.ones(4))
    x = np.random.default_rng(2).normal(size=(8, 4)).astype("float32")
    with pytest.raises(InputDataError, match=r"labels: expected one label per jet \(8\), received shape \(5,\)"):
        explain(model, {"jet": x}, method="permutation", labels=np.array([0, 1, 0, 1, 1]))


def test_inputs_with_different_numbers_of_jets_raise_input_data_error():
    import keras

    jet, trk = keras.Input((2,), name="jet"), keras.Input((3, 2), name="trk")
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([jet, keras.layers.Flatten()(trk)]))
    model = keras.Model({"jet": jet, "trk": trk}, out)
    with pytest.raises(InputDataError, match=r"different numbers of jets \(jet: 4, trk: 3\)"):
        explain(model, {"jet": np.ones((4, 2)), "trk": np.ones((3, 3, 2))}, method="saliency", task="regression")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "run"
    config = toy_config(epochs=1)
    config["model"] = {"name": "dense", "units": [4], "dropout": 0.0}
    Trainer(config, log=quiet).fit(path, data=toy_data(n=200))
    return path


def test_explain_run_activation_maximization_writes_its_summary(run):
    # one row per unit, not per jet: the pT-bin summary used to index 20 jets with 1 row
    expl = explain_run(run, "activation_maximization", n_jets=20, data=toy_data(n=200), plots=False,
                       options={"n_steps": 2})
    assert expl.n_jets == 1
    summary = json.loads((run / "explain" / "activation_maximization" / "summary.json").read_text())
    assert "by_pt_bin" not in summary and summary["n_jets"] == 1


@pytest.mark.parametrize("n_jets", [0, -3])
def test_explain_run_rejects_non_positive_n_jets(run, n_jets):
    with pytest.raises(ConfigError, match=f"n_jets: expected a positive int, received {n_jets}"):
        explain_run(run, "saliency", n_jets=n_jets, data=toy_data(n=200), plots=False)


def test_explain_run_unknown_split_names_the_valid_ones(run):
    with pytest.raises(UnknownNameError, match="did you mean 'test'"):
        explain_run(run, "saliency", n_jets=3, split="tset", data=toy_data(n=200), plots=False)


def test_shap_additivity_error_is_that_of_the_values_returned_for_padded_sequences():
    # kernel SHAP gives padded slots the share of the background's real tracks there; those
    # values are set to 0, and the reported additivity error (was ~1e-16) must show the gap
    import keras

    from hepnn.models import MODELS

    keras.utils.set_random_seed(4)
    x = np.random.default_rng(4).normal(size=(8, 4, 2)).astype("float32")
    x[:, 2:] = 0.0
    x[:4, 1:] = 0.0
    model = MODELS.get("deepsets")({"trk": (4, 2)}, phi_units=(4,), dense_units=(4,), dropout=0.0)
    e = explain(model, {"trk": x}, method="shap", algorithm="kernel", background_size=8, n_samples=40)
    assert np.all(e.values["trk"][np.all(x == 0.0, axis=-1)] == 0.0)
    actual = np.max(np.abs(e.values["trk"].reshape(8, -1).sum(axis=1) + e.base_values - e.outputs))
    assert actual > 1e-4
    assert e.extra["additivity_error"] == pytest.approx(actual, abs=1e-9)
    assert 0.0 < e.extra["padded_share"] < 1.0


def padded_linear(pad=-999.0):
    """``w . flatten(trk)`` on 6 jets of 3 slots x 2 features padded with ``pad``; slot 1 is real in 4 jets."""
    import keras

    x = np.random.default_rng(5).normal(size=(6, 3, 2)).astype("float32")
    x[:, 2] = pad
    x[4:, 1] = pad
    trk = keras.Input((3, 2), name="trk")
    dense = keras.layers.Dense(1)
    model = keras.Model({"trk": trk}, dense(keras.layers.Flatten()(trk)))
    w = np.arange(1.0, 7.0).reshape(3, 2)
    dense.set_weights([w.reshape(-1, 1).astype("float32"), np.zeros(1, "float32")])
    real = np.all(x != pad, axis=-1)
    mean_real = np.stack([x[real[:, p], p].mean(axis=0) if real[:, p].any() else np.full(2, pad) for p in range(3)])
    return model, x, w, real, mean_real


def test_mean_baseline_of_a_padded_sequence_averages_real_slots_only():
    # slot 1 is padded (-999) in 2 of 6 jets: the old baseline of its real jets was ~ -333
    model, x, w, real, mean_real = padded_linear()
    e = explain(model, {"trk": x}, method="integrated_gradients", task="regression", mask_value=-999.0,
                baseline="mean", n_steps=4)
    expected = np.where(real[..., None], w * (x - mean_real), 0.0)
    np.testing.assert_allclose(e.values["trk"], expected, rtol=1e-4, atol=1e-4)
    assert e.extra["completeness_error"] < 1e-3


def test_activation_maximization_starts_real_slots_at_their_real_mean():
    model, x, _, real, mean_real = padded_linear()
    e = explain(model, {"trk": x}, method="activation_maximization", task="regression", mask_value=-999.0,
                n_steps=1)
    start = e.inputs["trk"][0]
    np.testing.assert_allclose(start[:2], mean_real[:2], rtol=1e-5)
    assert np.all(start[2] == -999.0)


def test_explain_run_with_few_jets_writes_no_nan_in_its_summary(run):
    # 3 jets make 4 pT quantile bins, one of them empty: its mean was NaN (and a RuntimeWarning)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        explain_run(run, "saliency", n_jets=3, data=toy_data(n=200), plots=False)
    text = (run / "explain" / "saliency" / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))
    assert sum(b["n_jets"] for b in summary["by_pt_bin"].values()) == 3


def test_options_that_a_target_fixes_are_not_silently_ignored():
    from hepnn.explain.target import Target

    weights = np.diag([1.0, 2.0, -3.0])
    target = Target(softmax_model(weights), class_index=2)
    x = np.random.default_rng(6).normal(size=(4, 3)).astype("float32")
    with pytest.raises(ConfigError, match=r"class_index: received 0, but the Target passed as model explains class_index=2"):
        explain(target, {"jet": x}, method="saliency", class_index=0)
    e = explain(target, {"jet": x}, method="saliency", class_index=2, task="multiclass")
    np.testing.assert_allclose(e.outputs, target.model.predict({"jet": x}, verbose=0)[:, 2], atol=1e-6)


def test_a_model_with_variable_length_inputs_raises_a_config_error():
    # int(None) used to fail deep in Target with a TypeError
    import keras

    trk = keras.Input((None, 3), name="trk")
    model = keras.Model({"trk": trk}, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(trk)))
    with pytest.raises(ConfigError, match=r"model input 'trk': .*fixed shape per jet, received \(None, 3\)"):
        explain(model, {"trk": np.ones((4, 5, 3), "float32")}, method="saliency")


def test_occlusion_stride_larger_than_the_patch_is_rejected():
    # patch_size=2, stride=3 on 7 columns never covered column 2: its value was 0, as for an ignored pixel
    import keras

    from hepnn.explain.registry import check_options

    image = keras.Input((4, 7, 1), name="img")
    dense = keras.layers.Dense(1)
    model = keras.Model({"img": image}, dense(keras.layers.Flatten()(image)))
    weights = np.zeros((4, 7, 1), "float32")
    weights[1, 2, 0] = 1.0
    dense.set_weights([weights.reshape(-1, 1), np.zeros(1, "float32")])
    x = np.random.default_rng(7).normal(size=(2, 4, 7, 1)).astype("float32")
    with pytest.raises(ConfigError, match=r"explain\.options\.occlusion\.stride: expected at most patch_size \(2\)"):
        explain(model, {"img": x}, method="occlusion", task="regression", patch_size=2, stride=3)
    with pytest.raises(ConfigError, match="stride"):
        check_options("occlusion", {"patch_size": 2, "stride": 3})
    # one-pixel patches: exactly the used pixel, the right way round (row = first image axis)
    e = explain(model, {"img": x}, method="occlusion", task="regression", patch_size=1, stride=1)
    expected = np.zeros_like(x, dtype=np.float64)
    expected[:, 1, 2] = x[:, 1, 2]
    np.testing.assert_allclose(e.values["img"], expected, atol=1e-6)
