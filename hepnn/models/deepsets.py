"""``deepsets``: a permutation-invariant Particle-Flow Network over sequences."""

from __future__ import annotations

from typing import Any, Sequence

from . import _options as opt
from . import blocks
from .registry import register_model

__all__ = ["build_deepsets"]

_TASKS = ("binary", "multiclass", "regression")
_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value")


def _check(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.units("phi_units", options["phi_units"], allow_empty=False)
    yield from opt.choice("pooling", options["pooling"], ("sum", "mean", "max"))


@register_model("deepsets", check=_check, cost=1.5, requires="sequence")
def build_deepsets(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    phi_units: Sequence[int] = (64, 64, 128),
    pooling: str = "sum",
    dense_units: Sequence[int] = (64, 64),
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = True,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
):
    """Build a Deep Sets / Particle-Flow Network (arXiv:1810.05165).

    Per element: a shared MLP Phi (``phi_units``); per jet: a masked pooling of the
    Phi outputs over the real slots (padded slots, where every feature equals
    ``mask_value``, are excluded exactly); then the MLP F (``dense_units``) and the
    output layer. The output does not depend on the order of the elements nor on
    the padding; a jet without real elements pools to zeros (finite output). Each
    sequence input has its own Phi; flat and image inputs get side branches.

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
    phi_units : list of int
        Widths of the per-element network; the last is the latent dimension.
    pooling : {"sum", "mean", "max"}
        Masked pooling over elements (``sum`` as in the PFN).
    dense_units : list of int
        Widths of the per-jet network F.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`hepnn.models.dense.build_dense`; ``batch_norm`` and ``dropout``
        apply to F only (per-element batch statistics would mix in padded slots).
        ``batch_norm`` defaults to on here: a masked *sum* of up to ``max_length``
        elements is large, and without normalisation the first epochs saturate.
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
    >>> model = MODELS.get("deepsets")({"constituents": (30, 4)}, phi_units=[32, 32])  # doctest: +SKIP
    """
    options = {k: v for k, v in locals().items() if k not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check(options))

    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("deepsets", inputs, "sequence", "(max_length, n_features)")
    features = [
        blocks.deepsets_branch(
            x,
            phi_units,
            mask_value=mask_value,
            pooling=pooling,
            activation=activation,
            initializer=initializer,
            l1=l1,
            l2=l2,
            name=name,
        )
        for name, x in blocks.by_kind(inputs, "sequence").items()
    ]
    return blocks.tagger_model(inputs, features, "sequence", name="deepsets", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               batch_norm=batch_norm, dropout=dropout, l1=l1, l2=l2)
