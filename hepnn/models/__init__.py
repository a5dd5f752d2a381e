"""Model builders: registered functions that return functional ``keras.Model`` objects.

Importing this package registers every builder but imports neither TensorFlow nor
Keras; they are imported when a model is built or loaded.

===============  =======================================================
name             main branch
===============  =======================================================
``dense``        MLP on flat features
``cnn``          convolution blocks on jet images (``separable`` option)
``resnet``       residual CNN on jet images
``rnn``          LSTM / GRU over masked sequences
``deepsets``     Particle-Flow Network: per-element MLP, masked sum, MLP
``autoencoder``  dense or convolutional autoencoder (anomaly detection)
``particlenet``  EdgeConv blocks on dynamic kNN graphs (ParticleNet)
``transformer``  Particle Transformer (ParT): attention with pair features
``efn``          Energy Flow Network: IRC-safe, (Δη, Δφ) weighted by pT fraction
``pfn``          Particle Flow Network: per-particle MLP on all features, sum
===============  =======================================================

Examples
--------
>>> import hepnn.models
>>> hepnn.models.MODELS.names()
['autoencoder', 'cnn', 'deepsets', 'dense', 'efn', 'particlenet', 'pfn', 'resnet', 'rnn', 'transformer']
"""

from __future__ import annotations

import os
import sys

from . import autoencoder, cnn, deepsets, dense, efn, particlenet, rnn, transformer  # noqa: F401  (registers the builders)
from .registry import MODELS, build_model, register_model
from .._memory import tensor_allocator
from .._optional import require
from ..exceptions import InputDataError

__all__ = ["MODELS", "register_model", "build_model", "load_model"]

if "keras" in sys.modules:  # cheap then: lets a plain keras.saving.load_model find our layers
    from . import layers, particle_layers  # noqa: F401


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model file saved by hepnn, in Keras safe mode.

    The hepnn custom layers are registered first, so this works in a fresh process;
    ``safe_mode=True`` refuses files that would execute code (``Lambda`` layers).
    (A plain ``keras.saving.load_model`` also works once ``hepnn.models.layers`` is
    imported, which ``import hepnn.models`` does when Keras was imported before it.)

    Examples
    --------
    >>> model = hepnn.models.load_model("run/model.keras")  # doctest: +SKIP
    """
    path = os.fspath(path)
    _check_archive(path)
    keras = require("keras")
    tensor_allocator()  # inference temporaries reuse memory instead of faulting it in at each batch
    # lazy: the custom layers need Keras, which `import hepnn.models` does not import
    from . import layers, particle_layers  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - a damaged archive fails deep inside Keras or h5py
        if "safe_mode" in str(err):  # a file that would run code: Keras' own message says what to do
            raise
        raise _corrupt(path, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None


def _corrupt(path: str, why: str):
    return InputDataError(f"cannot read model file {path}: not a valid Keras archive ({why}); re-train or restore it")


def _check_archive(path: str) -> None:
    """A missing model file is "not found"; one that is no intact ``.keras`` zip archive is "corrupt"."""
    import zipfile

    if not os.path.exists(path):
        msg = f"model file not found: {path}; train the run with `hepnn train CONFIG --out RUN_DIR`"
        raise InputDataError(msg)
    if os.path.isdir(path):
        raise _corrupt(path, "a directory, not a file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = sorted({"config.json", "model.weights.h5"} - names)
            if missing:
                raise _corrupt(path, f"the archive has no {', '.join(missing)}")
            bad = archive.testzip()
            if bad is not None:
                raise _corrupt(path, f"checksum error in {bad}")
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise _corrupt(path, f"{type(err).__name__}: {err}") from None
