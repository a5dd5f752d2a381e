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
    from .._optional import require

    keras = require("keras")
    from . import layers, particle_layers  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(os.fspath(path), safe_mode=True)
