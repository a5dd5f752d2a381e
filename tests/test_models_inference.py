"""hepnn.models.inference.predict: the compiled forward pass gives model.predict's numbers."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest

from hepnn.models import MODELS
from hepnn.models.inference import inference_streams, predict, uses_xla


@pytest.mark.parametrize("n", [0, 1, 5, 64, 100])
def test_equals_model_predict(n):
    rng = np.random.default_rng(0)
    shapes = {"jet": (3,), "trk": (6, 4)}
    model = MODELS.get("deepsets")(shapes, n_outputs=3, task="multiclass", phi_units=(8,), dense_units=(8,))
    x = {"jet": rng.normal(size=(n, 3)).astype("float32"), "trk": rng.normal(size=(n, 6, 4)).astype("float32")}
    x["trk"][:, 4:] = 0.0  # padded slots
    got = predict(model, x, batch_size=32)
    assert got.shape == (n, 3)
    if n:
        np.testing.assert_allclose(got, model.predict(x, batch_size=32, verbose=0), rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_batch_size_does_not_change_scores_and_is_checked():
    x = {"jet": np.random.default_rng(1).normal(size=(50, 4)).astype("float32")}
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,))
    np.testing.assert_allclose(predict(model, x, batch_size=7), predict(model, x, batch_size=50), atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, x, batch_size=0)


def test_the_cache_does_not_keep_models_alive():
    x = {"jet": np.zeros((2, 4), "float32")}
    model = MODELS.get("dense")({"jet": (4,)}, units=(8,))
    predict(model, x)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


class _ShapeSpy:
    """Stands in for a Keras model: records every batch shape it is called with."""

    outputs = [None]

    def __init__(self, model):
        self.model, self.shapes = model, []

    def __call__(self, x, training=False):
        self.shapes.append(tuple(int(d) for d in next(iter(x.values())).shape))
        return self.model(x, training=training)


@pytest.mark.parametrize("n", [1, 31, 32, 33, 100])
def test_every_batch_has_the_full_shape(n):
    """The promise behind chunking-independent scores: the model only ever sees batch_size rows."""
    x = {"jet": np.random.default_rng(2).normal(size=(n, 4)).astype("float32")}
    spy = _ShapeSpy(MODELS.get("dense")({"jet": (4,)}, units=(8,)))
    got = predict(spy, x, batch_size=32)
    assert got.shape == (n, 1)
    assert spy.shapes and set(spy.shapes) == {(32, 4)}


@pytest.mark.parametrize("name, shapes, options", [
    ("dense", {"jet": (5,)}, {"units": (16, 16)}),
    ("deepsets", {"trk": (9, 4)}, {"phi_units": (16,), "dense_units": (16,)}),
    ("cnn", {"img": (8, 8, 1)}, {"filters": (4,), "dense_units": (8,)}),
    ("rnn", {"trk": (9, 4)}, {"units": (8,)}),
    ("particlenet", {"trk": (9, 4)}, {"k": 3, "channels": [[8, 8]], "dense_units": [8]}),
])
def test_scores_are_bit_identical_whatever_the_chunking(name, shapes, options):
    """Scoring in one piece or in chunks of any size gives the same bits (docs/reliability.md).

    A CNN on a CPU runs TensorFlow's graph (not XLA), whose convolution kernels split a batch
    among the threads by thread count: with 4 or 8 intra-op threads a jet's score also depends
    on its position in the batch, by a float32 ulp (1, 2, 3 and 16 threads give the same bits).
    There, and only there, the documented promise is 1e-6."""
    rng = np.random.default_rng(3)
    model = MODELS.get(name)(shapes, **options)
    n = 150
    x = {k: rng.normal(size=(n, *s)).astype("float32") for k, s in shapes.items()}
    whole = predict(model, x, batch_size=64)
    exact = uses_xla(model) or _intra_op_threads() <= 3
    for trial in range(4):
        cuts = np.sort(rng.choice(np.arange(1, n), size=trial * 3 + 1, replace=False))
        parts = [predict(model, {k: v[a:b] for k, v in x.items()}, batch_size=64)
                 for a, b in zip([0, *cuts], [*cuts, n])]
        if exact:
            np.testing.assert_array_equal(np.concatenate(parts), whole)
        else:
            np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-6)


def _intra_op_threads() -> int:
    """TensorFlow's intra-op thread count in this process (0 in its settings: one per usable core)."""
    import os

    import tensorflow as tf

    setting = tf.config.threading.get_intra_op_parallelism_threads() or int(os.environ.get("TF_NUM_INTRAOP_THREADS", 0))
    return setting or len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)



@pytest.mark.parametrize("name, shapes, options", [
    ("deepsets", {"trk": (9, 4)}, {"phi_units": (16,), "dense_units": (16,)}),
    ("cnn", {"img": (8, 8, 1)}, {"filters": (4,), "dense_units": (8,)}),
    ("rnn", {"trk": (9, 4)}, {"units": (8,)}),
])
def test_batches_scored_at_once_give_the_same_bits(monkeypatch, name, shapes, options):
    rng = np.random.default_rng(4)
    model = MODELS.get(name)(shapes, **options)
    x = {k: rng.normal(size=(333, *s)).astype("float32") for k, s in shapes.items()}
    monkeypatch.setenv("HEPNN_INFERENCE_STREAMS", "1")
    one = predict(model, x, batch_size=16)
    assert inference_streams() == 1
    for streams in ("2", "5"):
        monkeypatch.setenv("HEPNN_INFERENCE_STREAMS", streams)
        assert predict(model, x, batch_size=16).tobytes() == one.tobytes()


def test_inference_streams_default_and_setting(monkeypatch):
    monkeypatch.delenv("HEPNN_INFERENCE_STREAMS", raising=False)
    monkeypatch.setenv("HEPNN_READER_THREADS", "1")  # cores already busy: one batch at a time
    assert inference_streams() == 1
    monkeypatch.setenv("HEPNN_READER_THREADS", "4")
    assert inference_streams() == 2
    monkeypatch.setenv("HEPNN_INFERENCE_STREAMS", "3")
    assert inference_streams() == 3
    monkeypatch.setenv("HEPNN_INFERENCE_STREAMS", "two")
    with pytest.raises(ValueError, match="HEPNN_INFERENCE_STREAMS='two'"):
        inference_streams()


def test_xla_is_used_where_it_is_faster_and_can_be_overridden(monkeypatch):
    """CPU: XLA for everything but image convolutions (oneDNN's are faster); HEPNN_XLA decides when set."""
    import tensorflow as tf

    monkeypatch.delenv("HEPNN_XLA", raising=False)
    dense = MODELS.get("dense")({"jet": (4,)}, units=(8,))
    cnn = MODELS.get("cnn")({"img": (8, 8, 1)}, filters=(4,), dense_units=(8,))
    gpu = bool(tf.config.list_logical_devices("GPU"))
    assert uses_xla(dense) is True
    assert uses_xla(cnn) is gpu
    assert uses_xla(_ShapeSpy(dense)) is False  # not a Keras model: plain tf.function
    monkeypatch.setenv("HEPNN_XLA", "1")
    assert uses_xla(cnn) is True
    monkeypatch.setenv("HEPNN_XLA", "0")
    assert uses_xla(dense) is False
    monkeypatch.setenv("HEPNN_XLA", "fast")
    with pytest.raises(ValueError, match="HEPNN_XLA='fast'"):
        uses_xla(dense)


def test_xla_and_graph_scores_agree(monkeypatch):
    rng = np.random.default_rng(4)
    model = MODELS.get("particlenet")({"trk": (9, 4)}, k=3, channels=[[8, 8]], dense_units=[8])
    x = {"trk": rng.normal(size=(40, 9, 4)).astype("float32")}
    x["trk"][:, 6:] = 0.0
    monkeypatch.setenv("HEPNN_XLA", "1")
    fused = predict(model, x, batch_size=16)
    clone = keras_clone(model)
    monkeypatch.setenv("HEPNN_XLA", "0")
    graph = predict(clone, x, batch_size=16)
    np.testing.assert_allclose(fused, graph, rtol=0, atol=1e-6)


def keras_clone(model):
    """The same model (weights too) as a new object, so that it gets its own forward function."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


@pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")
def test_a_model_xla_cannot_compile_is_scored_with_the_graph_and_a_warning(monkeypatch):
    """A custom layer with an op XLA has no kernel for (a NumPy function) must not break scoring."""
    import keras
    import tensorflow as tf

    class NumpyTimesTwo(keras.layers.Layer):
        def call(self, x):
            y = tf.numpy_function(lambda a: (2 * a).astype("float32"), [x], tf.float32)
            return tf.ensure_shape(y, x.shape)

    monkeypatch.delenv("HEPNN_XLA", raising=False)
    inputs = keras.Input((4,), name="jet")
    model = keras.Model(inputs, keras.layers.Dense(1)(NumpyTimesTwo()(inputs)))
    assert uses_xla(model)
    x = {"jet": np.random.default_rng(5).normal(size=(5, 4)).astype("float32")}
    with pytest.warns(RuntimeWarning, match="XLA cannot compile model"):
        got = predict(model, x, batch_size=4)
    np.testing.assert_allclose(got, model.predict(x, batch_size=4, verbose=0), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(predict(model, x, batch_size=4), got)  # the graph from now on, silently
