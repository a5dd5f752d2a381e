"""``particlenet``: EdgeConv blocks on dynamic k-nearest-neighbour graphs (arXiv:1902.08570)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._optional import require
from . import _options as opt
from . import blocks
from ._features import ETA_NAMES, PHI_NAMES, check_features, resolve_features
from .registry import register_model

__all__ = ["build_particlenet", "PRESETS"]

_TASKS = ("binary", "multiclass", "regression")
_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value", "feature_names")

# the paper's two configurations: (k, channels of each EdgeConv block, head widths)
PRESETS = {
    "full": {"k": 16, "channels": ((64, 64, 64), (128, 128, 128), (256, 256, 256)), "dense_units": (256,)},
    "lite": {"k": 7, "channels": ((32, 32, 32), (64, 64, 64)), "dense_units": (128,)},
}


def _check(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common({k: v for k, v in options.items() if v is not None})
    yield from opt.choice("preset", options["preset"], tuple(PRESETS))
    if options["k"] is not None:
        yield from opt.positive_int("k", options["k"])
    channels = options["channels"]
    if channels is not None:
        ok = isinstance(channels, (list, tuple)) and len(channels) > 0 and all(
            isinstance(block, (list, tuple)) and len(block) > 0 and all(opt.is_int(c) and c > 0 for c in block)
            for block in channels
        )
        if not ok:
            yield "channels", (
                "expected a list of EdgeConv blocks, each a list of positive channel widths, "
                f"e.g. [[32, 32, 32], [64, 64, 64]], received {channels!r}"
            )
    yield from opt.boolean("shortcut", options["shortcut"])
    yield from opt.choice("pooling", options["pooling"], ("mean", "max", "sum"))
    yield from check_features("coordinates", options["coordinates"])


@register_model("particlenet", check=_check, cost=8, requires="sequence")
def build_particlenet(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    preset: str = "lite",
    k: int | None = None,
    channels: Sequence[Sequence[int]] | None = None,
    coordinates: Sequence[str | int] | None = None,
    shortcut: bool = True,
    pooling: str = "mean",
    dense_units: Sequence[int] | None = None,
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = True,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
    feature_names: Mapping[str, Sequence[str]] | None = None,
):
    """Build ParticleNet (arXiv:1902.08570): a jet as a point cloud, EdgeConv blocks, pooling.

    Each sequence input (constituents ``(max_length, n_features)``) goes through
    EdgeConv blocks. A block finds the ``k`` nearest neighbours of every particle (the
    first block in the ``coordinates`` features, e.g. (Δη, Δφ); the later blocks in the
    previous block's learned features), applies a shared MLP (``channels``) to each
    edge ``(x_i, x_j - x_i)``, averages over the edges and adds a shortcut (a linear
    projection of ``x_i``). Padded slots (every feature == ``mask_value``) are never
    anyone's neighbour and never enter the pooling, so the output does not depend on
    the order of the particles nor on the padding. Then a masked pooling over the
    particles and the dense head.

    **Fusion**: every other input (e.g. a flat input of jet-level features such as the
    mass and τ21, listed in ``model.inputs``) gets a side branch (``branch_units``)
    concatenated into the head, as in every hepnn builder.

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
    preset : {"lite", "full"}
        ParticleNet-Lite (k=7, blocks [32]*3, [64]*3, head [128]) or the paper's
        ParticleNet (k=16, blocks [64]*3, [128]*3, [256]*3, head [256]); ``k``,
        ``channels`` and ``dense_units`` given explicitly override the preset.
    k : int, optional
        Neighbours per particle (capped at ``max_length - 1``).
    channels : list of list of int, optional
        Widths of the edge MLP of each EdgeConv block.
    coordinates : list of str or int, optional
        The features spanning the first block's graph, by name (variables of the
        input, e.g. ``[rel_eta, rel_phi]``) or column index; default: the features
        named like Δη and Δφ (``rel_eta``/``deta``..., ``rel_phi``/``dphi``...), or the
        first two columns when the feature names are unknown (builder called directly).
    shortcut : bool
        Add the projected input of each block to its output (ResNet-style).
    pooling : {"mean", "max", "sum"}
        Masked pooling over the real particles after the last block.
    dense_units : list of int, optional
        Hidden widths of the head.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`hepnn.models.dense.build_dense`; ``batch_norm`` normalises
        the input and the edge MLPs (as in the paper), not the head; ``dropout`` applies to the head.
    branch_units : int
        Width of the side branches (fusion of other inputs).
    feature_names : dict of str to list of str, optional
        Input name -> feature names; passed by the training code, not a config option.

    Returns
    -------
    keras.Model
        Output ``(batch, n_outputs)``.

    Examples
    --------
    >>> from hepnn.models import MODELS
    >>> model = MODELS.get("particlenet")({"parts": (30, 4)}, k=4, channels=[[16, 16]])  # doctest: +SKIP
    """
    options = {key: v for key, v in locals().items() if key not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check(options))
    defaults = PRESETS[preset]
    k = defaults["k"] if k is None else k
    channels = defaults["channels"] if channels is None else channels
    dense_units = defaults["dense_units"] if dense_units is None else dense_units

    # lazy: needs Keras; `import hepnn.models` stays free of it
    from .layers import ApplyMask, MaskedPooling
    from .particle_layers import EdgeAggregate, KNNEdges, SelectFeatures

    keras = require("keras")
    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("particlenet", inputs, "sequence", "(max_length, n_features)")
    init = blocks.kernel_initializer(initializer, activation)
    features = []
    for name, x in blocks.by_kind(inputs, "sequence").items():
        n_features = x.shape[-1]
        columns = resolve_features(
            "coordinates", coordinates, name, n_features, feature_names, [ETA_NAMES, PHI_NAMES],
            fallback=list(range(min(2, n_features))),
        )
        mask = blocks.padding_mask(x, mask_value, name=f"{name}_mask")
        points = SelectFeatures(columns, name=f"{name}_coordinates")(x)
        h = ApplyMask(0.0, name=f"{name}_zero_padding")([x, mask])
        if batch_norm:
            h = ApplyMask(0.0, name=f"{name}_input_bn_mask")([keras.layers.BatchNormalization(name=f"{name}_input_bn")(h), mask])
        for b, widths in enumerate(channels):
            prefix = f"{name}_edgeconv{b}"
            edges, edge_mask = KNNEdges(k, name=f"{prefix}_knn")([points, h, mask])
            e = edges
            for i, width in enumerate(opt.as_units(widths)):
                e = keras.layers.Dense(width, use_bias=not batch_norm, kernel_initializer=init,
                                       kernel_regularizer=blocks.regularizer(l1, l2), name=f"{prefix}_dense{i}")(e)
                if batch_norm:
                    e = keras.layers.BatchNormalization(name=f"{prefix}_bn{i}")(e)
                e = keras.layers.Activation(activation, name=f"{prefix}_act{i}")(e)
            out = EdgeAggregate(name=f"{prefix}_aggregate")([e, edge_mask])
            if shortcut:
                sc = keras.layers.Dense(out.shape[-1], use_bias=not batch_norm, kernel_initializer=init,
                                        kernel_regularizer=blocks.regularizer(l1, l2), name=f"{prefix}_shortcut")(h)
                if batch_norm:
                    sc = keras.layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(sc)
                out = keras.layers.Add(name=f"{prefix}_add")([out, sc])
            out = keras.layers.Activation(activation, name=f"{prefix}_out")(out)
            h = ApplyMask(0.0, name=f"{prefix}_masked")([out, mask])
            points = h
        features.append(MaskedPooling(pooling, name=f"{name}_pool")([h, mask]))
    return blocks.tagger_model(inputs, features, "sequence", name="particlenet", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               batch_norm=False, dropout=dropout, l1=l1, l2=l2)
