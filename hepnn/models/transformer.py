"""``transformer``: Particle Transformer, ParT (arXiv:2202.03772)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._optional import require
from . import _options as opt
from . import blocks
from ._features import MOMENTUM_NAMES, check_features, resolve_features
from .registry import register_model

__all__ = ["build_transformer"]

_TASKS = ("binary", "multiclass", "regression")
_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value", "feature_names")


def _check(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.units("embed_units", options["embed_units"], allow_empty=False)
    yield from opt.positive_int("num_heads", options["num_heads"])
    yield from opt.positive_int("num_layers", options["num_layers"])
    yield from opt.positive_int("num_class_layers", options["num_class_layers"])
    yield from opt.positive_int("ffn_ratio", options["ffn_ratio"])
    yield from opt.units("pair_units", options["pair_units"], allow_empty=True)
    yield from opt.boolean("pair_features", options["pair_features"])
    yield from opt.fraction("attention_dropout", options["attention_dropout"])
    yield from check_features("four_momentum", options["four_momentum"], 4)
    head_layers = options["dense_units"]
    if isinstance(head_layers, (list, tuple)) and len(head_layers) == 0:
        for key in ("l1", "l2", "batch_norm"):
            if options.get(key):
                yield key, (f"applies to the head's hidden layers (dense_units), and dense_units is empty (the ParT "
                            f"default: the class token goes straight to the output), so {key} would change nothing; "
                            "set dense_units (e.g. [128]) or remove it")
    embed = options["embed_units"]
    width = embed if opt.is_int(embed) else (embed[-1] if isinstance(embed, (list, tuple)) and embed else None)
    heads = options["num_heads"]
    if opt.is_int(width) and opt.is_int(heads) and heads > 0 and width % heads:
        yield "num_heads", f"the last embed_units width ({width}) must be divisible by num_heads, received num_heads={heads}"


@register_model("transformer", check=_check, cost=8, requires="sequence")
def build_transformer(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    embed_units: Sequence[int] = (128, 512, 128),
    num_heads: int = 8,
    num_layers: int = 8,
    num_class_layers: int = 2,
    ffn_ratio: int = 4,
    pair_features: bool = True,
    pair_units: Sequence[int] = (64, 64, 64),
    four_momentum: Sequence[str | int] | None = None,
    attention_dropout: float = 0.1,
    dense_units: Sequence[int] = (),
    activation: str = "gelu",
    initializer: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
    feature_names: Mapping[str, Sequence[str]] | None = None,
):
    """Build a Particle Transformer (ParT, arXiv:2202.03772).

    Each sequence input: a per-particle embedding MLP (``embed_units``), ``num_layers``
    particle-attention blocks (pre-norm multi-head self-attention and a feed-forward
    network, residual), then ``num_class_layers`` class-attention blocks where a
    learned class token attends to ``[token, particles]``; the token feeds the head.
    Padded slots (every feature == ``mask_value``) get an attention bias of -1e9
    (weight exactly 0) and are never attended to, so the output does not depend on
    the order of the particles nor on the padding.

    With ``pair_features``, the interaction features of every particle pair
    (ln Δ, ln kT, ln z, ln m², :class:`~hepnn.models.particle_layers.PairFeatures`) are
    computed *in the model* from the constituents' four-momenta ``(px, py, pz, E)``,
    embedded pointwise (``pair_units``, then one value per head) and added to the
    attention logits of every particle-attention block. The four-momentum features
    are columns of the sequence input, in physical units: give the input
    ``standardize: false`` and standardise the other variables one by one
    (``transforms: {log_pt: {standardize: true}}``). They feed only the pair features,
    not the particle embedding (unless they are the input's only features). ``Tagger.predict``, ``hepnn explain`` and the ONNX
    export then work as for any other model (the features are ordinary inputs).
    Without ``pair_features`` (the plain transformer) every feature is embedded.

    **Fusion**: every other input (e.g. a flat input of jet-level features in
    ``model.inputs``) gets a side branch concatenated with the class token into the head.

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
    embed_units : list of int
        The particle-embedding MLP; the last width is the attention width.
    num_heads : int
        Attention heads (must divide the attention width).
    num_layers, num_class_layers : int
        Particle-attention and class-attention blocks.
    ffn_ratio : int
        Feed-forward width as a multiple of the attention width.
    pair_features : bool
        Add the pairwise interaction features as attention bias (ParT); false: the
        plain transformer.
    pair_units : list of int
        The pointwise pair-embedding MLP (before the last layer, one unit per head).
    four_momentum : list of 4 str or int, optional
        The (px, py, pz, E) features by name or column; default: features named
        ``px, py, pz, energy`` (or ``part_px``...). Needed with ``pair_features``.
    attention_dropout : float
        Dropout on the attention weights and in the blocks.
    dense_units : list of int
        Hidden widths of the head (ParT: none, the token goes straight to the output).
    activation, initializer, batch_norm, dropout, l1, l2
        ``activation`` of the MLPs (GELU in the paper, here in its tanh approximation,
        which exports to ONNX); the rest for the head's hidden layers, as for
        :func:`hepnn.models.dense.build_dense`: with the default empty ``dense_units``
        there are none, so ``dropout`` does nothing and ``batch_norm``, ``l1``, ``l2`` are refused.
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
    >>> model = MODELS.get("transformer")({"parts": (30, 6)}, embed_units=[16], num_heads=2,
    ...                                   num_layers=1, num_class_layers=1, four_momentum=[2, 3, 4, 5])  # doctest: +SKIP
    """
    options = {key: v for key, v in locals().items() if key not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check(options))

    # lazy: needs Keras; `import hepnn.models` stays free of it
    from .layers import ApplyMask
    from .particle_layers import ClassToken, MaskedAttention, PairFeatures, SelectFeatures, gelu_tanh

    keras = require("keras")
    init = blocks.kernel_initializer(initializer, activation)
    activation = gelu_tanh if activation == "gelu" else activation  # exportable to ONNX
    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("transformer", inputs, "sequence", "(max_length, n_features)")
    embed = opt.as_units(embed_units)
    width = embed[-1]
    if width % num_heads:
        msg = f"model.num_heads: the attention width {width} is not divisible by num_heads={num_heads}"
        raise ValueError(msg)
    features = []
    for name, x in blocks.by_kind(inputs, "sequence").items():
        n_features = x.shape[-1]
        mask = blocks.padding_mask(x, mask_value, name=f"{name}_mask")
        h = x
        bias = None
        if pair_features:
            p4_columns = resolve_features("four_momentum", four_momentum, name, n_features, feature_names,
                                          MOMENTUM_NAMES, fallback=None if feature_names else list(range(4)))
            p4 = SelectFeatures(p4_columns, name=f"{name}_four_momentum")(x)
            rest = [i for i in range(n_features) if i not in p4_columns]
            if rest:
                h = SelectFeatures(rest, name=f"{name}_particle_features")(x)
            pairs = PairFeatures(name=f"{name}_pair_features")([p4, mask])
            u = keras.layers.BatchNormalization(name=f"{name}_pair_bn")(pairs)
            u = blocks.dense_stack(u, pair_units, activation=activation, initializer=init,
                                   name=f"{name}_pair_embed") if pair_units else u
            u = keras.layers.Dense(num_heads, name=f"{name}_pair_heads")(u)
            bias = keras.layers.Permute((3, 1, 2), name=f"{name}_pair_bias")(u)
        h = ApplyMask(0.0, name=f"{name}_zero_padding")([h, mask])
        h = blocks.dense_stack(h, embed, activation=activation, initializer=init, name=f"{name}_embed")
        h = ApplyMask(0.0, name=f"{name}_embed_masked")([h, mask])

        def ffn(t, prefix):
            t = keras.layers.LayerNormalization(name=f"{prefix}_ffn_norm")(t)
            t = keras.layers.Dense(width * ffn_ratio, activation=activation, name=f"{prefix}_ffn_dense0")(t)
            t = keras.layers.Dropout(attention_dropout, name=f"{prefix}_ffn_dropout")(t)
            return keras.layers.Dense(width, name=f"{prefix}_ffn_dense1")(t)

        for i in range(num_layers):
            prefix = f"{name}_block{i}"
            t = keras.layers.LayerNormalization(name=f"{prefix}_norm")(h)
            args = [t, t, mask] + ([bias] if bias is not None else [])
            t = MaskedAttention(num_heads, dropout=attention_dropout, use_bias_input=bias is not None,
                                name=f"{prefix}_attention")(args)
            t = keras.layers.Dropout(attention_dropout, name=f"{prefix}_dropout")(t)
            h = keras.layers.Add(name=f"{prefix}_add0")([h, t])
            h = keras.layers.Add(name=f"{prefix}_add1")([h, ffn(h, prefix)])
            h = ApplyMask(0.0, name=f"{prefix}_masked")([h, mask])
        cls = ClassToken(width, name=f"{name}_class_token")(h)
        particles = keras.layers.LayerNormalization(name=f"{name}_particles_norm")(h)
        for i in range(num_class_layers):
            prefix = f"{name}_class_block{i}"
            t = keras.layers.LayerNormalization(name=f"{prefix}_norm")(cls)
            t = MaskedAttention(num_heads, dropout=attention_dropout, prepend_query=True,
                                name=f"{prefix}_attention")([t, particles, mask])
            cls = keras.layers.Add(name=f"{prefix}_add0")([cls, t])
            cls = keras.layers.Add(name=f"{prefix}_add1")([cls, ffn(cls, prefix)])
        cls = keras.layers.LayerNormalization(name=f"{name}_class_norm")(cls)
        features.append(keras.layers.Flatten(name=f"{name}_class_output")(cls))
    return blocks.tagger_model(inputs, features, "sequence", name="transformer", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=init,
                               batch_norm=batch_norm, dropout=dropout, l1=l1, l2=l2)
