"""Fast batched inference: one compiled forward function per model.

``keras.Model.predict`` builds a data adapter, callbacks and a progress bar on every
call and runs each step through them; for the small networks of jet tagging that
overhead costs as much as the forward pass itself (about half the throughput of a Deep
Sets tagger on a laptop CPU). :func:`predict` runs ``model(x, training=False)`` through
one ``tf.function`` per model, kept for the model's lifetime, batch by batch.

**Numeric promise: a jet's score does not depend on how the jets were chunked.** The
kernels TensorFlow picks for a matrix product or a convolution depend on the batch
shape and on the CPU's instruction set, and two kernels may sum in a different order
(one float32 ulp apart). :func:`fixed_batches` therefore hands the model every jet in a
batch of exactly ``batch_size`` rows: a last, partial batch is filled up with copies of
its last jet, whose outputs are dropped. So the scores of a file are bit-identical
whether it is read in one piece, in chunks of any ``step_size``, block by block or on
Dask workers, on any CPU, for a given ``batch_size``. Different ``batch_size`` values
agree within float32 rounding (|Δ| <= 1e-6 for probabilities); see
``docs/reliability.md``. The function is traced once per batch shape.

**XLA.** The forward function is compiled by XLA (``jit_compile=True``) where that is
faster (:func:`uses_xla`): on a GPU for every model (Keras's own choice for
``model.predict`` there), on a CPU for every model without image convolutions. On the
2-core development machine XLA scores Deep Sets, PFN and EFN taggers 1.3x faster than
TensorFlow's graph, GRUs 1.5x, ParticleNet 1.16x and the Particle Transformer 1.06x,
while jet-image CNNs run 1.8x slower than with oneDNN's convolutions (``bench/README.md``).
The choice depends only on the model and the machine, so the promise above holds with
it; XLA and the graph agree within float32 rounding (within 3e-6 in a probability, 2e-5
for the Particle Transformer). ``HEPNN_XLA=0`` (or ``1``) overrides it.

**Two batches at a time.** On a CPU, :func:`predict` scores two batches at once, from two
threads (after the first batch, which traces the function): TensorFlow then always has the
next batch's operations at hand while one batch waits on a small operation, instead of
running them one after the other. On the 2-core development machine that scores ParticleNet
1.2x faster, GRUs 1.5x, the CNN 1.04x, Deep Sets as fast as before. Each batch is computed
as alone, so the scores are the same to the last bit. ``HEPNN_INFERENCE_STREAMS`` sets how
many batches (``1``: one after the other); by default 2, 1 where the reader would use one
thread (``HEPNN_READER_THREADS=1``, ``OMP_NUM_THREADS=1``, inside a Dask task) and on a GPU.

Examples
--------
>>> from hepnn.models.inference import predict
>>> scores = predict(model, {"jet": x}, batch_size=1024)     # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Mapping

import numpy as np

from .._threads import default_threads
from ..exceptions import ConfigError

__all__ = ["check_batch_size", "compiled", "fixed_batches", "inference_streams", "predict", "uses_xla"]


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` if it is an int >= 1, else ``ConfigError`` (a ``ValueError``) naming it."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        msg = f"batch_size: expected a positive int, received {batch_size!r}"
        raise ConfigError(msg)
    return int(batch_size)


class _OwnKey:
    """``fn`` as a callable object, so TensorFlow counts its traces apart.

    TensorFlow's "N out of the last M calls triggered tf.function retracing" warning
    counts traces per ``__code__``: every ``tf.function`` made from the same ``lambda`` or
    nested ``def`` (one per model, per explainer call) adds to one count, and loading a
    few models in one process (a report, k-fold taggers) warns although each function
    traced once. A callable object has no ``__code__``; TensorFlow then keys on the
    object itself.
    """

    def __init__(self, fn: Any):
        import inspect

        self._fn = fn
        self.__signature__ = inspect.signature(fn)
        self.__name__ = getattr(fn, "__name__", "fn")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)


def compiled(fn: Any, jit_compile: bool | None = None) -> Any:
    """``tf.function(fn, reduce_retracing=True)`` whose traces are counted for this function alone.

    Use it for every function hepnn compiles per model or per call, so that building
    many of them never prints TensorFlow's retracing warning.

    Examples
    --------
    >>> f = compiled(lambda x: 2 * x)                # doctest: +SKIP
    >>> float(f(1.0))                                # doctest: +SKIP
    2.0
    """
    import tensorflow as tf

    return tf.function(_OwnKey(fn), reduce_retracing=True, jit_compile=jit_compile)


#: convolution layers of rank >= 2, for which oneDNN's CPU kernels beat XLA's
_IMAGE_CONVOLUTIONS = ("Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv3DTranspose")


def uses_xla(model: Any) -> bool:
    """Whether :func:`predict` compiles ``model``'s forward pass with XLA.

    ``HEPNN_XLA=1`` or ``0`` decides when set. Otherwise XLA is used when every layer
    supports it (Keras's ``supports_jit``) and either a GPU is visible or the model has
    no image convolution (``Conv2D``, ``SeparableConv2D``, ...): on a CPU, TensorFlow's
    oneDNN convolutions are faster than XLA's, while everything else (dense layers,
    masked sums, recurrent cells, k-nearest-neighbour graphs, attention) runs faster
    fused by XLA.

    Examples
    --------
    >>> from hepnn.models import MODELS
    >>> uses_xla(MODELS.get("dense")({"jet": (4,)}, units=(8,)))     # doctest: +SKIP
    True
    """
    setting = os.environ.get("HEPNN_XLA", "").strip().lower()
    if setting in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        return setting in ("1", "true", "yes", "on")
    if setting:
        msg = f"HEPNN_XLA={setting!r}: expected 1 or 0 (or leave it unset for hepnn's choice)"
        raise ValueError(msg)
    layers = list(model._flatten_layers()) if hasattr(model, "_flatten_layers") else []
    if not layers or not all(getattr(layer, "supports_jit", True) for layer in layers):
        return False
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return True
    return not any(cls.__name__ in _IMAGE_CONVOLUTIONS for layer in layers for cls in type(layer).__mro__)

def inference_streams() -> int:
    """How many batches :func:`predict` scores at once (see the module docstring).

    Examples
    --------
    >>> import os; os.environ["HEPNN_INFERENCE_STREAMS"] = "1"
    >>> inference_streams()
    1
    >>> del os.environ["HEPNN_INFERENCE_STREAMS"]
    """
    setting = os.environ.get("HEPNN_INFERENCE_STREAMS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            msg = f"HEPNN_INFERENCE_STREAMS={setting!r}: expected a positive integer (1: one batch at a time)"
            raise ValueError(msg)
        return int(setting)
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return 1
    return min(2, default_threads())


_FORWARD: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


class _Forward:
    """``model(x, training=False)`` compiled once; under XLA, falls back to TensorFlow's graph
    (with a warning) when XLA cannot compile the model, e.g. a custom layer with an op XLA lacks."""

    def __init__(self, model: Any):
        self._ref = weakref.ref(model)  # the cache must not keep the model alive
        self._name = getattr(model, "name", type(model).__name__)
        self._xla = uses_xla(model)
        self._fn = self._compile()
        #: batch size and inputs' dtypes and shapes -> the outputs' shape (after the batch axis)
        #: and dtype, once the function was traced for them
        self.outputs: dict[tuple, tuple[tuple[int, ...], Any]] = {}

    def _compile(self) -> Any:
        ref = self._ref
        return compiled(lambda x: ref()(x, training=False), jit_compile=self._xla)

    def __call__(self, x: Any) -> Any:
        try:
            return self._fn(x)
        except Exception as err:  # noqa: BLE001 - only XLA's compilation errors are handled
            if not self._xla or "XLA" not in str(err):
                raise
            first = str(err).strip().splitlines()[0][:300]
            warnings.warn(f"XLA cannot compile model {self._name!r} ({first}); scoring it with TensorFlow's graph "
                          "instead (set HEPNN_XLA=0 to skip XLA)", RuntimeWarning, stacklevel=3)
            self._xla = False
            self._fn = self._compile()
            return self._fn(x)


def _forward(model: Any) -> Any:
    fn = _FORWARD.get(model)
    if fn is None:
        fn = _FORWARD[model] = _Forward(model)
    return fn


def fixed_batches(inputs: Mapping[str, np.ndarray], batch_size: int) -> Iterator[tuple[int, int, dict]]:
    """Split ``inputs`` into batches of exactly ``batch_size`` rows.

    Yields ``(start, n_real, batch)``: ``batch`` holds rows ``start:start + n_real`` of
    every array, and a last, partial batch is filled up to ``batch_size`` rows with
    copies of its last row (callers keep the first ``n_real`` outputs). Every batch
    thus has the same shape, so the kernels, and the numbers, are those of a full batch
    whatever the number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> [(start, n, b["x"][:, 0].tolist()) for start, n, b in fixed_batches({"x": np.arange(5.0)[:, None]}, 2)]
    [(0, 2, [0.0, 1.0]), (2, 2, [2.0, 3.0]), (4, 1, [4.0, 4.0])]
    """
    check_batch_size(batch_size)
    n = len(next(iter(inputs.values()))) if inputs else 0
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in inputs.items()}
        n_real = len(next(iter(batch.values())))
        if n_real < batch_size:
            fill = batch_size - n_real
            batch = {k: np.concatenate([v, np.repeat(v[-1:], fill, axis=0)]) for k, v in batch.items()}
        yield start, n_real, batch


def predict(model: Any, inputs: Mapping[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
    """``model(x, training=False)`` over ``inputs`` in batches of ``batch_size``, as numpy.

    Parameters
    ----------
    model : keras.Model
        A model with a single tensor output (every hepnn builder's tagger).
    inputs : dict of numpy arrays
        Keyed by the model's input names, equal lengths.
    batch_size : int

    Returns
    -------
    numpy.ndarray
        The model output, ``(n, ...)``, in the model's output dtype. Models with several
        outputs fall back to ``model.predict``.
    """
    check_batch_size(batch_size)
    inputs = dict(inputs)
    n = len(next(iter(inputs.values()))) if inputs else 0
    if len(getattr(model, "outputs", None) or [None]) != 1:
        return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
    fn = _forward(model)
    if n == 0:
        return np.asarray(fn(inputs))
    batches = fixed_batches(inputs, batch_size)
    signature = (batch_size, *sorted((k, np.asarray(v).dtype.str, np.shape(v)[1:]) for k, v in inputs.items()))
    known = fn.outputs.get(signature)
    if known is None:
        # the first batch of a new batch size alone: it traces (and compiles) the function in
        # this thread and gives the output's shape
        _, n_real, batch = next(batches)
        first = np.asarray(fn(batch))
        fn.outputs[signature] = known = (first.shape[1:], first.dtype)
        out = np.empty((n, *known[0]), dtype=known[1])
        out[:n_real] = first[:n_real]
    else:
        out = np.empty((n, *known[0]), dtype=known[1])

    def score(item: tuple[int, int, dict]) -> None:
        start, n_real, batch = item
        out[start:start + n_real] = np.asarray(fn(batch))[:n_real]

    streams = inference_streams() if n > batch_size else 1
    if streams <= 1:
        for item in batches:
            score(item)
    else:
        with ThreadPoolExecutor(streams, thread_name_prefix="hepnn-inference") as pool:
            list(pool.map(score, batches))  # each batch computed as alone: the same numbers
    return out
