"""Custom Keras layers of hepnn (registered for safe-mode loading).

This module imports Keras at module level; it is imported only from inside model
builders and by :func:`hepnn.models.load_model`, so ``import hepnn.models`` stays
free of TensorFlow. Every layer implements ``get_config`` and is registered with
``keras.saving.register_keras_serializable(package="hepnn")``, so a saved
``.keras`` file reloads with ``safe_mode=True`` (no ``Lambda`` layers, no pickle).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["PaddingMask", "MaskedPooling", "ApplyMask", "ZeroPadded"]


@keras.saving.register_keras_serializable(package="hepnn")
class PaddingMask(keras.layers.Layer):
    """Float mask of the real slots of a padded sequence.

    A slot is padding iff every feature equals ``mask_value`` (as in
    ``keras.layers.Masking``). Input ``(batch, max_length, n_features)``, output
    ``(batch, max_length)`` with 1.0 for real slots and 0.0 for padding.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 2.0], [0.0, 0.0]]], dtype="float32")
    >>> np.asarray(PaddingMask()(x)).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, mask_value: float = 0.0, **kwargs):
        # compared in float32, also under mixed precision: a real slot whose features round to
        # mask_value in float16 (1e-8, say, for a pad value of 0) would count as padding
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, inputs):
        real = ops.any(ops.not_equal(inputs, self.mask_value), axis=-1)
        return ops.cast(real, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


@keras.saving.register_keras_serializable(package="hepnn")
class MaskedPooling(keras.layers.Layer):
    """Pool per-element features over the real slots only (Deep Sets / PFN pooling).

    Called on ``[features, mask]`` with features ``(batch, max_length, n)`` and a
    float mask ``(batch, max_length)`` from :class:`PaddingMask`; returns
    ``(batch, n)``. ``mode`` is ``"sum"`` (PFN), ``"mean"`` or ``"max"``. Padded
    slots never contribute; a jet without real elements pools to zeros.
    """

    MODES = ("sum", "mean", "max")

    def __init__(self, mode: str = "sum", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            msg = f"MaskedPooling: expected mode in {self.MODES}, received mode={mode!r}"
            raise ValueError(msg)
        self.mode = mode

    def call(self, inputs):
        features, mask = inputs
        mask = ops.cast(mask, features.dtype)
        weights = ops.expand_dims(mask, -1)
        if self.mode == "max":
            very_negative = ops.cast(-1e30, features.dtype)
            masked = ops.where(weights > 0, features, very_negative)
            pooled = ops.max(masked, axis=1)
            any_real = ops.max(weights, axis=1) > 0
            return ops.where(any_real, pooled, ops.zeros_like(pooled))
        total = ops.sum(features * weights, axis=1)
        if self.mode == "sum":
            return total
        count = ops.sum(weights, axis=1)
        return total / ops.maximum(count, ops.cast(1.0, features.dtype))

    def compute_output_shape(self, input_shape):
        features_shape = input_shape[0]
        return (features_shape[0], features_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="hepnn")
class ApplyMask(keras.layers.Layer):
    """Put ``mask_value`` back into the padded slots of a reconstructed sequence.

    Called on ``[reconstruction, mask]``; the padded slots of the output equal
    ``mask_value`` exactly, so an autoencoder trained on ``(x, x)`` spends no
    capacity and no loss on padding.
    """

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, inputs):
        reconstruction, mask = inputs
        weights = ops.expand_dims(ops.cast(mask, reconstruction.dtype), -1)
        return reconstruction * weights + self.mask_value * (1.0 - weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


@keras.saving.register_keras_serializable(package="hepnn")
class ZeroPadded(keras.layers.Layer):
    """Set the padded slots of a sequence to 0: ``[x (B, L, F), mask (B, L)] -> (B, L, F)``.

    For the layers that see every slot (the per-element networks of Deep Sets / PFN /
    EFN, ``Flatten`` in the TopoDNN-style dense network and the dense autoencoder):
    whatever the (finite) pad value (0, -999, 1e30...), they see zeros, so nothing
    computed from a padded slot can overflow.
    It has no ``mask_value`` (unlike :class:`ApplyMask`), so code that reads a model's
    pad value from its layers never mistakes this 0 for it.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 2.0], [999.0, 999.0]]], dtype="float32")
    >>> np.asarray(ZeroPadded()([x, np.array([[1.0, 0.0]], dtype="float32")])).tolist()
    [[[1.0, 2.0], [0.0, 0.0]]]
    """

    def call(self, inputs):
        x, mask = inputs
        # a product, not `where`, so that shap's DeepExplainer handles it; exact for any finite pad value
        return x * ops.expand_dims(ops.cast(mask, x.dtype), -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def compute_mask(self, inputs, mask=None):
        return None
