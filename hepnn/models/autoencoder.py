"""``autoencoder``: dense and convolutional autoencoders for anomaly detection.

Train on ``(x, x)`` (e.g. on QCD jets only) with the input *array* as the target,
``fit({"jet": a}, a)``: the single output is not keyed by input name.
:func:`anomaly_score` is the per-jet reconstruction error and :func:`encoder` the
sub-model mapping the input to the latent space (the bottleneck layer is ``latent``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .._optional import require
from . import _options as opt
from . import blocks
from .inference import predict
from .registry import register_model

__all__ = ["build_autoencoder", "anomaly_score", "encoder"]

_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value")


def _check(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.choice("architecture", options["architecture"], ("auto", "dense", "conv"))
    yield from opt.units("units", options["units"])
    yield from opt.positive_int("latent_dim", options["latent_dim"])
    yield from opt.units("filters", options["filters"], allow_empty=False)
    yield from opt.positive_int("kernel_size", options["kernel_size"])
    yield from opt.choice("output_activation", options["output_activation"], ("linear", "sigmoid", "relu", "softplus"))


@register_model("autoencoder", check=_check, cost=8)
def build_autoencoder(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "autoencoder",
    mask_value: float = 0.0,
    *,
    architecture: str = "auto",
    units: Sequence[int] = (64, 32),
    latent_dim: int = 8,
    filters: Sequence[int] = (16, 32),
    kernel_size: int = 3,
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = False,
    l1: float = 0.0,
    l2: float = 0.0,
    output_activation: str = "linear",
):
    """Build an autoencoder reconstructing its single input.

    ``dense``: the input (flattened when it is a sequence or an image) goes through
    the encoder ``units``, the bottleneck ``Dense(latent_dim, name="latent")``, the
    mirrored decoder and a linear layer back to the input's shape. For sequences
    the padded slots enter the encoder as zeros (so the reconstruction does not depend
    on the pad value) and the padded slots of the reconstruction are set to
    ``mask_value`` exactly, so they cost no loss. The training loss (``training.loss``, ``mse`` by
    default) still averages over every slot of the batch, real or padded, so each real element
    counts the same and a jet weighs by its number of real elements;
    :func:`anomaly_score` averages each jet over its own real slots. ``conv`` (images): stride-2
    convolutions (``filters``), a dense bottleneck, and transposed convolutions back to the image size.

    Parameters
    ----------
    input_shapes : dict of str to tuple
        Exactly one input: ``(n_features,)``, ``(max_length, n_features)`` or
        ``(pixels, pixels, channels)``.
    n_outputs : int
        Ignored (the output has the input's shape).
    task : {"autoencoder"}
        Only ``autoencoder``.
    mask_value : float
        Feature value of padded sequence slots.
    architecture : {"auto", "dense", "conv"}
        ``auto``: ``conv`` for images, ``dense`` otherwise.
    units : list of int
        Dense encoder widths (the decoder mirrors them); may be empty.
    latent_dim : int
        Size of the bottleneck.
    filters : list of int
        Filters of the stride-2 convolutions of the conv encoder (mirrored in the decoder).
    kernel_size : int
        Convolution kernel size.
    activation, initializer, batch_norm, l1, l2
        As for :func:`hepnn.models.dense.build_dense`.
    output_activation : {"linear", "sigmoid", "relu", "softplus"}
        Activation of the reconstruction (``relu``/``softplus`` suit non-negative
        pixel intensities).

    Returns
    -------
    keras.Model
        Output: the reconstruction, same shape as the input (layer ``reconstruction``).

    Examples
    --------
    >>> from hepnn.models import MODELS
    >>> from hepnn.models.autoencoder import anomaly_score, encoder
    >>> model = MODELS.get("autoencoder")({"image": (16, 16, 1)}, latent_dim=4)  # doctest: +SKIP
    >>> encoder(model).output_shape  # doctest: +SKIP
    (None, 4)
    """
    options = {k: v for k, v in locals().items() if k not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, ("autoencoder",)), prefix="")
    opt.raise_problems(_check(options))

    keras = require("keras")
    inputs = blocks.make_inputs(input_shapes)
    if len(inputs) != 1:
        msg = f"model 'autoencoder' reconstructs exactly one input, received {len(inputs)}: {', '.join(inputs)}"
        raise ValueError(msg)
    (name, (x_in, kind)), = inputs.items()
    shape = tuple(input_shapes[name])
    if architecture == "auto":
        architecture = "conv" if kind == "image" else "dense"
    if architecture == "conv" and kind != "image":
        msg = (
            f"model.architecture: 'conv' needs an image input (pixels, pixels, channels), "
            f"received {name!r} of shape {shape}; use architecture 'dense'"
        )
        raise ValueError(msg)
    dense_kwargs = dict(activation=activation, initializer=initializer, batch_norm=batch_norm, l1=l1, l2=l2)
    init = blocks.kernel_initializer(initializer, activation)

    if architecture == "dense":
        x = x_in
        if kind == "sequence":
            mask = blocks.padding_mask(x_in, mask_value, name="padding_mask")
            x = blocks.zero_padding(x, mask, name="zero_padding")  # the encoder never sees the pad value
        x = keras.layers.Flatten(name="flatten")(x) if kind != "flat" else x
        x = blocks.dense_stack(x, tuple(units), name="encoder", **dense_kwargs)
        latent = keras.layers.Dense(latent_dim, kernel_regularizer=blocks.regularizer(l1, l2), name="latent")(x)
        x = blocks.dense_stack(latent, tuple(reversed(opt.as_units(units))), name="decoder", **dense_kwargs)
        last = "reconstruction" if kind == "flat" else "decoder_output"
        x = keras.layers.Dense(math.prod(shape), activation=output_activation, dtype="float32", name=last)(x)
        if kind != "flat":
            x = keras.layers.Reshape(shape, dtype="float32", name="reconstruction" if kind == "image" else "decoder_reshape")(x)
        if kind == "sequence":
            # lazy: needs Keras; `import hepnn.models` stays free of it
            from .layers import ApplyMask

            x = ApplyMask(mask_value, dtype="float32", name="reconstruction")([x, mask])  # float32 under mixed precision
    else:
        x = x_in
        for i, n in enumerate(opt.as_units(filters)):
            x = blocks.conv_layer(n, kernel_size, strides=2, initializer=init, l1=l1, l2=l2, name=f"encoder_conv{i}")(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"encoder_bn{i}")(x)
            x = keras.layers.Activation(activation, name=f"encoder_act{i}")(x)
        coded_shape = tuple(x.shape[1:])
        x = keras.layers.Flatten(name="flatten")(x)
        latent = keras.layers.Dense(latent_dim, kernel_regularizer=blocks.regularizer(l1, l2), name="latent")(x)
        x = keras.layers.Dense(math.prod(coded_shape), activation=activation, kernel_initializer=init, name="decoder_dense")(latent)
        x = keras.layers.Reshape(coded_shape, name="decoder_reshape")(x)
        for i, n in enumerate(reversed(opt.as_units(filters))):
            x = keras.layers.Conv2DTranspose(
                n, kernel_size, strides=2, padding="same", kernel_initializer=init,
                kernel_regularizer=blocks.regularizer(l1, l2), name=f"decoder_deconv{i}",
            )(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"decoder_bn{i}")(x)
            x = keras.layers.Activation(activation, name=f"decoder_act{i}")(x)
        crop = [x.shape[1] - shape[0], x.shape[2] - shape[1]]
        needs_crop = any(crop)
        x = keras.layers.Conv2D(
            shape[2], kernel_size, padding="same", activation=output_activation, dtype="float32",
            name="decoder_output" if needs_crop else "reconstruction",
        )(x)
        if needs_crop:
            x = keras.layers.Cropping2D(
                ((crop[0] // 2, crop[0] - crop[0] // 2), (crop[1] // 2, crop[1] - crop[1] // 2)),
                dtype="float32", name="reconstruction",
            )(x)
    return blocks.functional_model(inputs, x, name="autoencoder")


def encoder(model):
    """The sub-model mapping the autoencoder's input to its latent space.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`build_autoencoder` (or reloaded from its file).

    Returns
    -------
    keras.Model
        Same input as ``model``; output ``(batch, latent_dim)``, sharing weights.

    Examples
    --------
    >>> latent = encoder(model).predict(x)  # doctest: +SKIP
    """
    keras = require("keras")
    try:
        latent = model.get_layer("latent")
    except ValueError:
        msg = f"model {model.name!r} has no layer named 'latent': build it with the 'autoencoder' builder"
        raise ValueError(msg) from None
    return keras.Model(model.input, latent.output, name="encoder")


def anomaly_score(model, inputs, batch_size: int = 1024):
    """Per-jet mean squared reconstruction error (padded sequence slots ignored).

    Parameters
    ----------
    model : keras.Model
        An autoencoder from :func:`build_autoencoder`.
    inputs : array or dict of str to array
        What the model is called with (a one-entry dict or the array itself).
    batch_size : int
        Prediction batch size.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_jets,)``: the mean of ``(x - reconstruction)**2`` over the
        features (and, for sequences, over the real slots only; 0 for a jet without
        real elements). Larger means more anomalous.

    Examples
    --------
    >>> scores = anomaly_score(model, {"jet": x})  # doctest: +SKIP
    """
    import numpy as np

    x = inputs
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            msg = f"anomaly_score: expected one input, received {len(inputs)}: {', '.join(inputs)}"
            raise ValueError(msg)
        x = next(iter(inputs.values()))
    x = np.asarray(x, dtype="float32")
    name = model.input_names[0] if hasattr(model, "input_names") else model.inputs[0].name
    reconstruction = np.asarray(predict(model, {name: x}, batch_size=batch_size), dtype="float64")
    error = (x.astype("float64") - reconstruction) ** 2
    mask_layers = [layer for layer in model.layers if type(layer).__name__ == "ApplyMask"]
    if mask_layers and x.ndim == 3:
        mask_value = mask_layers[0].mask_value
        real = np.any(x != np.float32(mask_value), axis=-1)
        per_slot = error.mean(axis=-1) * real
        n_real = real.sum(axis=1)
        return np.where(n_real > 0, per_slot.sum(axis=1) / np.maximum(n_real, 1), 0.0)
    return error.reshape(len(x), -1).mean(axis=1)
