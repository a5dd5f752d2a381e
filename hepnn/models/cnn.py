"""``cnn`` and ``resnet``: convolutional networks on jet images."""

from __future__ import annotations

from typing import Any, Sequence

from .._optional import require
from . import _options as opt
from . import blocks
from .registry import register_model

__all__ = ["build_cnn", "build_resnet"]

_TASKS = ("binary", "multiclass", "regression")
_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value")
_IMAGE = "(pixels, pixels, channels)"


def _check_conv(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.units("filters", options["filters"], allow_empty=False)
    yield from opt.positive_int("kernel_size", options["kernel_size"])
    yield from opt.boolean("separable", options["separable"])
    yield from opt.choice("global_pooling", options["global_pooling"], ("average", "max", "flatten"))


def _check_cnn(options: dict[str, Any]) -> opt.Problems:
    yield from _check_conv(options)
    yield from opt.positive_int("convs_per_block", options["convs_per_block"])
    yield from opt.positive_int("strides", options["strides"])
    yield from opt.choice("padding", options["padding"], ("same", "valid"))
    yield from opt.choice("pooling", options["pooling"], ("max", "average", "none"))
    yield from opt.positive_int("pool_size", options["pool_size"])


def _check_resnet(options: dict[str, Any]) -> opt.Problems:
    yield from _check_conv(options)
    yield from opt.positive_int("blocks_per_stage", options["blocks_per_stage"])


@register_model("cnn", check=_check_cnn, cost=8, requires="image")
def build_cnn(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    filters: Sequence[int] = (32, 64, 64),
    convs_per_block: int = 2,
    kernel_size: int = 3,
    strides: int = 1,
    padding: str = "same",
    pooling: str = "max",
    pool_size: int = 2,
    separable: bool = False,
    global_pooling: str = "flatten",
    dense_units: Sequence[int] = (64,),
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
):
    """Build a jet-image CNN: convolution blocks, pooling and a dense head.

    Each block is ``convs_per_block`` convolutions (the first with ``strides``),
    each followed by optional batch normalisation and the activation, then a
    ``pool_size`` pooling (skipped once the image is smaller than the pool). Every
    image input gets its own convolution tower; flat and sequence inputs get side
    branches. The towers' outputs go through ``global_pooling`` and the dense head.

    Parameters
    ----------
    input_shapes : dict of str to tuple
        Input name -> shape without the batch axis; at least one image
        ``(pixels, pixels, channels)``. Others: ``(n_features,)`` flat or
        ``(max_length, n_features)`` sequence (side branches).
    n_outputs : int
        Output units (1 for binary, number of classes, number of targets).
    task : {"binary", "multiclass", "regression"}
        Chooses the output layer.
    mask_value : float
        Padding value of sequence side inputs.
    filters : list of int
        Filters of each block, e.g. ``[32, 64, 64]`` (three blocks).
    convs_per_block : int
        Convolutions per block.
    kernel_size : int
        Square kernel size.
    strides : int
        Stride of the first convolution of each block.
    padding : {"same", "valid"}
        Convolution padding; with ``valid`` every convolution shrinks the image by
        ``kernel_size - 1`` pixels, and a ``ValueError`` naming the block says when it
        no longer fits.
    pooling : {"max", "average", "none"}
        Pooling after each block.
    pool_size : int
        Pooling window and stride.
    separable : bool
        Depthwise-separable convolutions (``SeparableConv2D``) instead of ``Conv2D``.
    global_pooling : {"flatten", "average", "max"}
        How the last feature map becomes a vector.
    dense_units : list of int
        Hidden widths of the dense head.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`hepnn.models.dense.build_dense`; ``batch_norm`` applies to the
        convolutions only (not the head), ``l1``/``l2`` to the convolutions and the head,
        ``dropout`` to the head.
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
    >>> model = MODELS.get("cnn")({"image": (25, 25, 1)}, filters=[8, 16])  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 1)
    """
    options = {k: v for k, v in locals().items() if k not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check_cnn(options))

    keras = require("keras")
    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("cnn", inputs, "image", _IMAGE)
    init = blocks.kernel_initializer(initializer, activation)
    pool_layer = {"max": keras.layers.MaxPooling2D, "average": keras.layers.AveragePooling2D}.get(pooling)
    features = []
    for name, x in blocks.by_kind(inputs, "image").items():
        for b, n_filters in enumerate(opt.as_units(filters)):
            for c in range(convs_per_block):
                prefix = f"{name}_block{b}_"
                _check_room(x, name, b, c, kernel_size, padding)
                x = blocks.conv_layer(
                    n_filters,
                    kernel_size,
                    strides=strides if c == 0 else 1,
                    padding=padding,
                    separable=separable,
                    initializer=init,
                    l1=l1,
                    l2=l2,
                    use_bias=not batch_norm,
                    name=f"{prefix}conv{c}",
                )(x)
                if batch_norm:
                    x = keras.layers.BatchNormalization(name=f"{prefix}bn{c}")(x)
                x = keras.layers.Activation(activation, name=f"{prefix}act{c}")(x)
            if pool_layer is not None and blocks.can_pool(x, pool_size):
                x = pool_layer(pool_size, name=f"{name}_block{b}_pool")(x)
        features.append(blocks.global_pool(x, global_pooling, f"{name}_global"))
    return blocks.tagger_model(inputs, features, "image", name="cnn", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               dropout=dropout, l1=l1, l2=l2)


def _check_room(x, name: str, block: int, conv: int, kernel_size: int, padding: str) -> None:
    """Raise ``ValueError`` when a ``valid`` convolution no longer fits the (shrunken) image."""
    height, width = x.shape[1], x.shape[2]
    if padding != "valid" or all(d is None or d >= kernel_size for d in (height, width)):
        return
    msg = (
        f"model.padding: with 'valid' convolutions the image {name!r} has shrunk to {height}x{width} pixels "
        f"before convolution {conv} of block {block}, smaller than kernel_size={kernel_size}; "
        "use padding 'same', fewer filters (blocks), fewer convs_per_block or a smaller kernel_size"
    )
    raise ValueError(msg)


@register_model("resnet", check=_check_resnet, cost=12, requires="image")
def build_resnet(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    filters: Sequence[int] = (16, 32, 64),
    blocks_per_stage: int = 2,
    kernel_size: int = 3,
    separable: bool = False,
    global_pooling: str = "average",
    dense_units: Sequence[int] = (64,),
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = True,
    dropout: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
):
    """Build a residual CNN (ResNet) on jet images.

    A stem convolution with ``filters[0]`` filters, then one stage per entry of
    ``filters``, each of ``blocks_per_stage`` residual blocks
    ``conv -> [BN] -> act -> conv -> [BN] -> + shortcut -> act``. Every stage after
    the first halves the image with a stride-2 first convolution (while the image is
    at least 2 pixels wide) and a 1x1 projection on its shortcut.

    Parameters
    ----------
    input_shapes : dict of str to tuple
        Input name -> shape; at least one image ``(pixels, pixels, channels)``;
        flat and sequence inputs get side branches.
    n_outputs : int
        Output units.
    task : {"binary", "multiclass", "regression"}
        Chooses the output layer.
    mask_value : float
        Padding value of sequence side inputs.
    filters : list of int
        Filters of each stage.
    blocks_per_stage : int
        Residual blocks per stage.
    kernel_size : int
        Square kernel size.
    separable : bool
        Depthwise-separable convolutions.
    global_pooling : {"average", "max", "flatten"}
        How the last feature map becomes a vector.
    dense_units : list of int
        Hidden widths of the dense head.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`build_cnn` (``batch_norm`` defaults to on here).
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
    >>> model = MODELS.get("resnet")({"image": (32, 32, 1)}, filters=[8, 16])  # doctest: +SKIP
    """
    options = {k: v for k, v in locals().items() if k not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check_resnet(options))

    keras = require("keras")
    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("resnet", inputs, "image", _IMAGE)
    init = blocks.kernel_initializer(initializer, activation)

    def conv(x, n, strides, name, size=kernel_size):
        x = blocks.conv_layer(
            n, size, strides=strides, separable=separable and size > 1, initializer=init,
            l1=l1, l2=l2, use_bias=not batch_norm, name=name,
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return x

    features = []
    filters = opt.as_units(filters)
    for name, x in blocks.by_kind(inputs, "image").items():
        x = keras.layers.Activation(activation, name=f"{name}_stem_act")(conv(x, filters[0], 1, f"{name}_stem"))
        for s, n_filters in enumerate(filters):
            for b in range(blocks_per_stage):
                prefix = f"{name}_stage{s}_block{b}"
                strides = 2 if (s > 0 and b == 0 and blocks.can_pool(x, 2)) else 1
                shortcut = x
                h = conv(x, n_filters, strides, f"{prefix}_conv0")
                h = keras.layers.Activation(activation, name=f"{prefix}_act0")(h)
                h = conv(h, n_filters, 1, f"{prefix}_conv1")
                if strides != 1 or shortcut.shape[-1] != n_filters:
                    shortcut = conv(shortcut, n_filters, strides, f"{prefix}_proj", size=1)
                x = keras.layers.Add(name=f"{prefix}_add")([h, shortcut])
                x = keras.layers.Activation(activation, name=f"{prefix}_act1")(x)
        features.append(blocks.global_pool(x, global_pooling, f"{name}_global"))
    return blocks.tagger_model(inputs, features, "image", name="resnet", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               dropout=dropout, l1=l1, l2=l2)
