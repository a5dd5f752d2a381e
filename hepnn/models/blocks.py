"""Building blocks shared by the model builders: inputs, dense stacks, branches, heads.

Keras is imported inside the functions, so importing this module is cheap.

The rank of an input shape tells its kind:

* ``(n_features,)``: ``"flat"`` (jet-level features);
* ``(max_length, n_features)``: ``"sequence"`` (tracks, constituents), where a slot is
  padding iff every feature equals ``mask_value``;
* ``(pixels, pixels, channels)``: ``"image"`` (jet images).

Each builder runs its main branch on the inputs of its kind and gives every other
input a small *side branch* (:func:`side_branch`): flat -> dense layer, sequence ->
Deep-Sets pooling, image -> small CNN with global pooling. The branch outputs are
concatenated and fed to a dense head (:func:`head`).

**Fusion** of jet-level features with a constituent or image tagger is this mechanism:
list a flat input (e.g. mass, τ21, τ32) in ``model.inputs`` beside the sequence or
image input, and it enters the head through its dense side branch (``branch_units``
wide). No option is needed; every builder (``rnn``, ``deepsets``, ``particlenet``,
``transformer``, ``efn``, ``pfn``, ``cnn``, ``resnet``) does it.
"""

from __future__ import annotations

from typing import Any, Sequence

from .._optional import require
from ._options import as_units
from .heads import output_layer

__all__ = [
    "KINDS",
    "input_kind",
    "make_inputs",
    "kernel_initializer",
    "regularizer",
    "dense_stack",
    "padding_mask",
    "zero_padding",
    "deepsets_branch",
    "conv_branch",
    "side_branch",
    "concatenate",
    "head",
]

KINDS = {1: "flat", 2: "sequence", 3: "image"}


def input_kind(name: str, shape: Sequence[int]) -> str:
    """``"flat"``, ``"sequence"`` or ``"image"`` from the rank of ``shape``.

    Examples
    --------
    >>> input_kind("tracks", (20, 5))
    'sequence'
    """
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    ok = (
        shape is not None
        and len(shape) in KINDS
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    )
    if not ok:
        msg = (
            f"input {name!r}: expected a shape (n_features,), (max_length, n_features) or "
            f"(pixels, pixels, channels) of positive ints without the batch axis, received {shape!r}"
        )
        raise ValueError(msg)
    return KINDS[len(shape)]


def make_inputs(input_shapes: dict[str, Sequence[int]]) -> dict[str, tuple[Any, str]]:
    """One ``keras.Input`` per entry: ``{name: (tensor, kind)}`` in the given order."""
    keras = require("keras")
    if not isinstance(input_shapes, dict) or not input_shapes:
        msg = (
            "input_shapes: expected a non-empty mapping of input name to shape, e.g. "
            f"{{'jet': (4,), 'tracks': (20, 5)}}, received {input_shapes!r}"
        )
        raise ValueError(msg)
    out = {}
    for name, shape in input_shapes.items():
        kind = input_kind(name, shape)
        out[name] = (keras.Input(shape=tuple(shape), name=name), kind)
    return out


def by_kind(inputs: dict[str, tuple[Any, str]], kind: str) -> dict[str, Any]:
    """The input tensors of one kind, ``{name: tensor}``."""
    return {name: tensor for name, (tensor, k) in inputs.items() if k == kind}


def require_kind(model: str, inputs: dict[str, tuple[Any, str]], kind: str, shape_hint: str) -> None:
    """Raise ``ValueError`` unless some input is of ``kind``."""
    if by_kind(inputs, kind):
        return
    got = ", ".join(f"{name} ({k})" for name, (_, k) in inputs.items())
    msg = (
        f"model {model!r} needs at least one {kind} input of shape {shape_hint}; "
        f"received inputs: {got}"
    )
    raise ValueError(msg)


def kernel_initializer(name: str, activation: str) -> str:
    """Resolve ``"auto"``: He for ReLU-like, LeCun normal for SELU, Glorot otherwise."""
    if name != "auto":
        return name
    if activation == "selu":
        return "lecun_normal"
    if activation in ("relu", "leaky_relu", "elu", "gelu", "swish"):
        return "he_uniform"
    return "glorot_uniform"


def regularizer(l1: float = 0.0, l2: float = 0.0):
    """A ``keras.regularizers.L1L2`` when either factor is non-zero, else ``None``."""
    if not l1 and not l2:
        return None
    keras = require("keras")
    return keras.regularizers.L1L2(l1=float(l1), l2=float(l2))


def _dropout(rate: float, activation: str, name: str):
    keras = require("keras")
    if activation == "selu":  # keeps SELU's self-normalisation
        return keras.layers.AlphaDropout(rate, name=name)
    return keras.layers.Dropout(rate, name=name)


def dense_stack(
    x,
    units: int | Sequence[int],
    *,
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    residual: bool = False,
    name: str = "dense",
):
    """Dense layers ``Dense -> [BatchNorm] -> activation -> [+ shortcut] -> [Dropout]``.

    Works on flat ``(batch, n)`` and per-element ``(batch, length, n)`` tensors.
    With ``residual``, each layer adds its input (through a linear projection, named
    ``{name}_proj{i}``, when the widths differ). Layers are named ``{name}_dense{i}``,
    ``{name}_bn{i}``, ``{name}_act{i}``, ``{name}_add{i}``, ``{name}_dropout{i}``.
    """
    keras = require("keras")
    init = kernel_initializer(initializer, activation)
    for i, n in enumerate(as_units(units)):
        shortcut = x
        x = keras.layers.Dense(
            n,
            kernel_initializer=init,
            kernel_regularizer=regularizer(l1, l2),
            use_bias=not batch_norm,
            name=f"{name}_dense{i}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation(activation, name=f"{name}_act{i}")(x)
        if residual:
            if shortcut.shape[-1] != n:
                shortcut = keras.layers.Dense(
                    n,
                    use_bias=False,
                    kernel_initializer="glorot_uniform",
                    kernel_regularizer=regularizer(l1, l2),
                    name=f"{name}_proj{i}",
                )(shortcut)
            x = keras.layers.Add(name=f"{name}_add{i}")([x, shortcut])
        if dropout:
            x = _dropout(dropout, activation, f"{name}_dropout{i}")(x)
    return x


def padding_mask(x, mask_value: float, name: str):
    """The float ``(batch, max_length)`` mask of real slots (:class:`~hepnn.models.layers.PaddingMask`)."""
    # lazy: needs Keras; `import hepnn.models` stays free of it
    from .layers import PaddingMask

    return PaddingMask(mask_value, name=name)(x)


def zero_padding(x, mask, name: str):
    """``x`` with its padded slots (``mask`` 0) set to 0 (:class:`~hepnn.models.layers.ZeroPadded`).

    For layers that see every slot (``Flatten``): the pad value, which may be any
    number (e.g. -999), then never reaches them.
    """
    # lazy: needs Keras; `import hepnn.models` stays free of it
    from .layers import ZeroPadded

    return ZeroPadded(name=name)([x, mask])


def deepsets_branch(
    x,
    units: int | Sequence[int],
    *,
    mask_value: float = 0.0,
    pooling: str = "sum",
    activation: str = "relu",
    initializer: str = "auto",
    l1: float = 0.0,
    l2: float = 0.0,
    name: str = "deepsets",
):
    """Per-element dense layers (Phi) then a masked pooling over the real slots.

    Padded slots (every feature == ``mask_value``) enter Phi as zeros and are
    excluded from the pooling exactly, so no pad value can reach the output; a jet
    without real elements pools to zeros. Output ``(batch, units[-1])``.
    """
    # lazy: needs Keras; `import hepnn.models` stays free of it
    from .layers import MaskedPooling

    mask = padding_mask(x, mask_value, name=f"{name}_mask")
    h = zero_padding(x, mask, name=f"{name}_zero_padding")  # Phi never sees the pad value: it cannot overflow
    h = dense_stack(
        h, units, activation=activation, initializer=initializer, l1=l1, l2=l2, name=f"{name}_phi"
    )
    return MaskedPooling(pooling, name=f"{name}_pool")([h, mask])


def conv_layer(
    filters: int,
    kernel_size: int,
    *,
    strides: int = 1,
    padding: str = "same",
    separable: bool = False,
    initializer: str = "he_uniform",
    l1: float = 0.0,
    l2: float = 0.0,
    use_bias: bool = True,
    name: str,
):
    """A ``Conv2D`` or (``separable``) ``SeparableConv2D`` layer without activation."""
    keras = require("keras")
    if separable:
        return keras.layers.SeparableConv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            depthwise_initializer=initializer,
            pointwise_initializer=initializer,
            depthwise_regularizer=regularizer(l1, l2),
            pointwise_regularizer=regularizer(l1, l2),
            use_bias=use_bias,
            name=name,
        )
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        kernel_initializer=initializer,
        kernel_regularizer=regularizer(l1, l2),
        use_bias=use_bias,
        name=name,
    )


def can_pool(x, pool_size: int) -> bool:
    """Whether both spatial axes of an image tensor are at least ``pool_size``."""
    return all(d is not None and d >= pool_size for d in x.shape[1:3])


def global_pool(x, mode: str, name: str):
    """``"average"``, ``"max"`` global pooling or ``"flatten"`` of an image tensor."""
    keras = require("keras")
    if mode == "average":
        return keras.layers.GlobalAveragePooling2D(name=name)(x)
    if mode == "max":
        return keras.layers.GlobalMaxPooling2D(name=name)(x)
    return keras.layers.Flatten(name=name)(x)


def conv_branch(x, units: int, *, activation: str = "relu", name: str = "conv_branch"):
    """Small CNN side branch: two 3x3 convolutions (max-pooled between) + global average."""
    keras = require("keras")
    init = kernel_initializer("auto", activation)
    for i, filters in enumerate((max(units // 2, 1), units)):
        x = conv_layer(filters, 3, initializer=init, name=f"{name}_conv{i}")(x)
        x = keras.layers.Activation(activation, name=f"{name}_act{i}")(x)
        if i == 0 and can_pool(x, 2):
            x = keras.layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
    return global_pool(x, "average", f"{name}_global")


def side_branch(x, kind: str, *, units: int = 32, mask_value: float = 0.0, activation: str = "relu", name: str):
    """The small branch for an input that is not of a builder's main kind."""
    if kind == "flat":
        return dense_stack(x, (units,), activation=activation, name=name)
    if kind == "sequence":
        return deepsets_branch(x, (units, units), mask_value=mask_value, activation=activation, name=name)
    return conv_branch(x, units, activation=activation, name=name)


def side_branches(inputs, main_kind: str, *, units: int, mask_value: float, activation: str) -> list:
    """Side branches for every input not of ``main_kind``, in input order."""
    return [
        side_branch(tensor, kind, units=units, mask_value=mask_value, activation=activation, name=f"{name}_branch")
        for name, (tensor, kind) in inputs.items()
        if kind != main_kind
    ]


def concatenate(features: list, name: str = "concatenate"):
    """Concatenate branch outputs (a single one passes through)."""
    keras = require("keras")
    if len(features) == 1:
        return features[0]
    return keras.layers.Concatenate(name=name)(features)


def head(
    features: list,
    units: int | Sequence[int],
    *,
    task: str,
    n_outputs: int,
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    residual: bool = False,
    name: str = "head",
):
    """Concatenate ``features``, apply a dense stack and the task's output layer."""
    x = concatenate(features)
    x = dense_stack(
        x,
        units,
        activation=activation,
        initializer=initializer,
        batch_norm=batch_norm,
        dropout=dropout,
        l1=l1,
        l2=l2,
        residual=residual,
        name=name,
    )
    return output_layer(task, n_outputs)(x)


def tagger_model(
    inputs: dict[str, tuple[Any, str]],
    features: list,
    main_kind: str,
    *,
    name: str,
    units: int | Sequence[int],
    task: str,
    n_outputs: int,
    branch_units: int,
    mask_value: float,
    **head_options,
):
    """The common end of every tagger: fusion, head and model.

    Inputs not of ``main_kind`` (e.g. jet-level features beside a constituent
    sequence) join ``features`` through their side branches; the concatenation goes
    through :func:`head` (``units``, ``task``, ``n_outputs`` and ``head_options``:
    activation, initializer, batch_norm, dropout, l1, l2) and the result is wrapped
    in a functional model called ``name``.
    """
    activation = head_options.get("activation", "relu")
    features = [
        *features,
        *side_branches(inputs, main_kind, units=branch_units, mask_value=mask_value, activation=activation),
    ]
    outputs = head(features, units, task=task, n_outputs=n_outputs, name="head", **head_options)
    return functional_model(inputs, outputs, name=name)


def functional_model(inputs: dict[str, tuple[Any, str]], outputs, name: str):
    """A functional ``keras.Model`` taking a dict keyed by input name."""
    keras = require("keras")
    return keras.Model(inputs={n: t for n, (t, _) in inputs.items()}, outputs=outputs, name=name)
