"""``rnn``: LSTM or GRU layers over masked sequences (tracks, constituents)."""

from __future__ import annotations

from typing import Any, Sequence

from .._optional import require
from . import _options as opt
from . import blocks
from .registry import register_model

__all__ = ["build_rnn"]

_TASKS = ("binary", "multiclass", "regression")
_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value")


def _check(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.choice("cell", options["cell"], ("lstm", "gru"))
    yield from opt.units("units", options["units"], allow_empty=False)
    yield from opt.boolean("bidirectional", options["bidirectional"])
    yield from opt.fraction("recurrent_dropout", options["recurrent_dropout"])
    yield from opt.boolean("cudnn", options["cudnn"])


@register_model("rnn", check=_check, cost=3, requires="sequence")
def build_rnn(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    cell: str = "lstm",
    units: Sequence[int] = (64,),
    bidirectional: bool = False,
    recurrent_dropout: float = 0.0,
    cudnn: bool = False,
    dense_units: Sequence[int] = (64,),
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
):
    """Build a recurrent network (RNNIP style) over sequence inputs.

    Each sequence input goes through ``Masking(mask_value)`` and a stack of
    recurrent layers (one per entry of ``units``; all but the last return
    sequences). Padded slots (every feature == ``mask_value``) are skipped, wherever
    they are. Flat and image inputs get side branches; everything is concatenated
    into a dense head.

    Parameters
    ----------
    input_shapes : dict of str to tuple
        Input name -> shape; at least one sequence ``(max_length, n_features)``.
    n_outputs : int
        Output units.
    task : {"binary", "multiclass", "regression"}
        Chooses the output layer.
    mask_value : float
        Feature value of padded slots.
    cell : {"lstm", "gru"}
        Recurrent cell.
    units : list of int
        Width of each stacked recurrent layer, e.g. ``[64, 32]``.
    bidirectional : bool
        Wrap each recurrent layer in ``Bidirectional`` (outputs concatenated).
    recurrent_dropout : float
        Dropout on the recurrent state (slows training on CPU; off by default).
    cudnn : bool
        Allow the fused cuDNN kernel on a GPU (much faster). Off by default: cuDNN
        accepts only right-padded sequences with at least one real element per jet,
        and Keras then fails at run time on a jet without tracks or on padding
        elsewhere than at the end. Turn on only for data that guarantees both.
    dense_units : list of int
        Hidden widths of the dense head.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`hepnn.models.dense.build_dense`, for the head; ``l1``/``l2``
        also regularise the input kernels of the recurrent layers (not their
        ``recurrent_kernel``).
    branch_units : int
        Width of the side branches (fusion: a flat input of jet-level features in
        ``model.inputs`` enters the head through its side branch).

    Returns
    -------
    keras.Model
        Output ``(batch, n_outputs)``.

    Examples
    --------
    >>> from hepnn.models import MODELS
    >>> model = MODELS.get("rnn")({"tracks": (15, 6), "jet": (4,)}, cell="gru")  # doctest: +SKIP
    """
    options = {k: v for k, v in locals().items() if k not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check(options))

    keras = require("keras")
    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("rnn", inputs, "sequence", "(max_length, n_features)")
    layer_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    widths = opt.as_units(units)
    features = []
    for name, x in blocks.by_kind(inputs, "sequence").items():
        x = keras.layers.Masking(mask_value=mask_value, name=f"{name}_masking")(x)
        for i, n in enumerate(widths):
            last = i == len(widths) - 1
            layer = layer_class(
                n,
                return_sequences=not last,
                recurrent_dropout=recurrent_dropout,
                use_cudnn="auto" if cudnn else False,
                kernel_regularizer=blocks.regularizer(l1, l2),
                name=f"{name}_{cell}{i}",
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"{name}_bidirectional{i}")
            x = layer(x)
        features.append(x)
    return blocks.tagger_model(inputs, features, "sequence", name="rnn", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               batch_norm=batch_norm, dropout=dropout, l1=l1, l2=l2)
