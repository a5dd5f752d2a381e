"""``dense``: a multilayer perceptron on flat (jet-level) features."""

from __future__ import annotations

from typing import Any, Sequence

from .._optional import require
from . import _options as opt
from . import blocks
from .registry import register_model

__all__ = ["build_dense"]

_TASKS = ("binary", "multiclass", "regression")


def _check(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.units("units", options["units"], allow_empty=False)
    yield from opt.boolean("flatten_sequences", options["flatten_sequences"])


@register_model("dense", check=_check)
def build_dense(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    units: Sequence[int] = (128, 128, 64),
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    residual: bool = False,
    flatten_sequences: bool = False,
    branch_units: int = 32,
):
    """Build a dense network (MLP) on flat features.

    The flat inputs are concatenated and fed to the MLP. Sequence and image inputs
    get a small side branch (Deep-Sets pooling, small CNN) whose output joins the
    MLP input, or, with ``flatten_sequences``, are flattened into it (the TopoDNN
    style of a dense network on the leading constituents).

    Parameters
    ----------
    input_shapes : dict of str to tuple
        Input name -> shape without the batch axis: ``(n_features,)`` flat,
        ``(max_length, n_features)`` sequence, ``(pixels, pixels, channels)`` image.
    n_outputs : int
        Output units: 1 for binary, the number of classes for multiclass, the
        number of targets for regression.
    task : {"binary", "multiclass", "regression"}
        Chooses the output layer (sigmoid, softmax, linear).
    mask_value : float
        Feature value marking padded sequence slots (side branches ignore them).
    units : list of int
        Width of each hidden layer, e.g. ``[128, 128, 64]``.
    activation : {"relu", "leaky_relu", "selu", "elu", "tanh", "sigmoid", "gelu", "swish"}
        Hidden activation.
    initializer : {"auto", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"}
        Weight initialisation; ``auto`` picks He for ReLU-like activations, LeCun
        normal for SELU and Glorot otherwise.
    batch_norm : bool
        Batch normalisation after each hidden ``Dense`` (before the activation).
    dropout : float
        Dropout rate after each hidden layer (``AlphaDropout`` with SELU); 0 disables.
    l1, l2 : float
        L1 / L2 weight penalties on every kernel of the hidden layers (not on the side
        branches nor on the output layer).
    residual : bool
        Add each hidden layer's input to its output (linear projection when the
        widths differ).
    flatten_sequences : bool
        Flatten sequence and image inputs into the MLP input instead of giving them
        side branches; padded sequence slots enter as zeros, whatever ``mask_value``.
    branch_units : int
        Width of the side branches.

    Returns
    -------
    keras.Model
        Called with ``{name: array}``; output ``(batch, n_outputs)``.

    Examples
    --------
    >>> from hepnn.models import MODELS
    >>> model = MODELS.get("dense")({"jet": (6,)}, units=[32, 16])  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 1)
    """
    options = {k: v for k, v in locals().items() if k not in ("input_shapes", "n_outputs", "task", "mask_value")}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check(options))

    keras = require("keras")
    inputs = blocks.make_inputs(input_shapes)
    features = []
    for name, (tensor, kind) in inputs.items():
        if kind == "flat":
            features.append(tensor)
        elif flatten_sequences:
            if kind == "sequence":  # padded slots enter as zeros, whatever the pad value
                mask = blocks.padding_mask(tensor, mask_value, name=f"{name}_mask")
                tensor = blocks.zero_padding(tensor, mask, name=f"{name}_zero_padding")
            features.append(keras.layers.Flatten(name=f"{name}_flatten")(tensor))
        else:
            features.append(
                blocks.side_branch(
                    tensor, kind, units=branch_units, mask_value=mask_value, activation=activation, name=f"{name}_branch"
                )
            )
    outputs = blocks.head(
        features,
        units,
        task=task,
        n_outputs=n_outputs,
        activation=activation,
        initializer=initializer,
        batch_norm=batch_norm,
        dropout=dropout,
        l1=l1,
        l2=l2,
        residual=residual,
        name="mlp",
    )
    return blocks.functional_model(inputs, outputs, name="dense")
