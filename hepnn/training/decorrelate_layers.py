"""Keras layers of the mass-decorrelation training wrapper (:mod:`hepnn.training.decorrelate`).

A module of its own so that Keras is imported only when a run decorrelates.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .decorrelate import distance_correlation

__all__ = ["DiscoPenalty", "GradientReversal", "AdversaryLoss"]


def penalty_weights(label, weight, background_only, background: int = 0):
    """Per-jet weights of the penalty: the jet weights, zero for the jets whose label is not
    ``background`` when ``background_only``.

    Negative weights (NLO event weights) count as zero here: a distance correlation or an
    adversary's cross-entropy over signed weights is not defined (a batch whose weights sum
    to zero or less made the penalty infinite). The classification loss keeps them as they are.
    """
    w = ops.maximum(ops.reshape(ops.cast(weight, "float32"), (-1,)), 0.0)
    if background_only:
        w = w * ops.cast(ops.equal(ops.reshape(ops.cast(label, "float32"), (-1,)), float(background)), "float32")
    return w


@keras.saving.register_keras_serializable(package="hepnn")
class DiscoPenalty(keras.layers.Layer):
    """Pass the score through and add ``strength * dCorr^2(score, variable)`` to the loss.

    Inputs ``[score (n, 1), variable (n, 1), label (n, 1), weight (n, 1)]``; with
    ``background_only``, only the jets labelled ``background`` count.
    """

    def __init__(self, strength: float = 1.0, background_only: bool = True, background: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.strength, self.background_only = float(strength), bool(background_only)
        self.background = int(background)

    def call(self, inputs):
        score, variable, label, weight = inputs
        w = penalty_weights(label, weight, self.background_only, self.background)
        self.add_loss(self.strength * distance_correlation(score[:, 0], variable, w))
        return score

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "strength": self.strength, "background_only": self.background_only,
                "background": self.background}


@keras.saving.register_keras_serializable(package="hepnn")
class GradientReversal(keras.layers.Layer):
    """Identity forward; multiplies the gradient by ``-factor`` backward.

    ``factor`` is a non-trainable variable (set per epoch by :func:`callbacks`).
    """

    def __init__(self, factor: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_factor = float(factor)

    def build(self, input_shape):
        self.factor = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_factor), trainable=False, name="factor"
        )

    def call(self, x):
        f = ops.cast(self.factor, x.dtype)
        # value: (1 + f) x - f x = x; gradient: -f
        return ops.stop_gradient(x) * (1.0 + f) - f * x

    def get_config(self):
        return {**super().get_config(), "factor": self.initial_factor}


@keras.saving.register_keras_serializable(package="hepnn")
class AdversaryLoss(keras.layers.Layer):
    """Pass the score through and add the adversary's weighted cross-entropy on the variable's bin.

    Inputs ``[score, probabilities (n, bins), variable, label, weight]``; ``edges``
    are the inner bin edges (quantiles of the training background). The added
    loss has the gradient of the cross-entropy ``L_adv`` (the adversary minimises
    it; the gradient reversal turns it into ``-factor * L_adv`` for the classifier)
    and the value ``-factor * L_adv``, so the logged loss is the classifier's
    objective ``L_clf - factor * L_adv`` that early stopping should watch.
    """

    def __init__(self, edges=(), background_only: bool = True, factor: float = 1.0, background: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.edges = [float(e) for e in edges]
        self.background_only, self.background = bool(background_only), int(background)
        self.initial_factor = float(factor)

    def build(self, input_shape):
        self.factor = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_factor), trainable=False, name="factor"
        )

    def call(self, inputs):
        score, probs, variable, label, weight = inputs
        w = penalty_weights(label, weight, self.background_only, self.background)
        v = ops.reshape(ops.cast(variable, "float32"), (-1,))
        edges = ops.convert_to_tensor(np.asarray(self.edges, dtype="float32"))
        index = ops.sum(ops.cast(v[:, None] >= edges[None, :], "int32"), axis=1)
        picked = ops.sum(probs * ops.one_hot(index, len(self.edges) + 1), axis=1)
        nll = -ops.log(ops.clip(picked, 1e-7, 1.0))
        loss = ops.sum(w * nll) / ops.maximum(ops.sum(w), 1e-12)
        self.add_loss(loss - ops.stop_gradient((1.0 + ops.cast(self.factor, loss.dtype)) * loss))
        return score

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "edges": list(self.edges), "background_only": self.background_only,
                "factor": self.initial_factor, "background": self.background}
