"""``gradcam``: Grad-CAM (Selvaraju et al. 2017) of a convolution layer of an image model."""

from __future__ import annotations

import numpy as np

from ..exceptions import UnknownNameError
from ..models.inference import compiled
from .registry import register_explainer

__all__ = ["gradcam", "conv_layers"]


def conv_layers(model) -> list:
    """The 2D convolution layers of a model, in order."""
    return [layer for layer in model.layers
            if "Conv2D" in type(layer).__name__ and "Transpose" not in type(layer).__name__]


def _applies(target):
    if not target.of_kind("image"):
        return "it needs an image input (pixels, pixels, channels)"
    if not conv_layers(target.model):
        return "the model has no Conv2D layer"
    return None


@register_explainer("gradcam", applies=_applies)
def gradcam(target, inputs, layer: str | None = None, relu: bool = True) -> dict:
    """Class-activation map: feature maps of a conv layer weighted by their mean gradient.

    ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of the gradient of the
    explained output with respect to feature map ``A_k``, bilinearly resized to the
    image and copied into every channel of the image input the layer depends on.

    Parameters
    ----------
    layer : str, optional
        Name of the convolution layer (default: the last Conv2D layer).
    relu : bool
        Keep only positive evidence (the usual Grad-CAM); False keeps the sign.
    """
    import tensorflow as tf

    keras = target.keras
    model = target.model
    convs = conv_layers(model)
    if layer is None:
        chosen = convs[-1]
    else:
        names = [c.name for c in convs]
        if layer not in names:
            raise UnknownNameError(layer, "convolution layer", names)
        chosen = convs[names.index(layer)]
    struct = getattr(model, "_inputs_struct", None) or model.inputs
    grad_model = keras.Model(struct, [chosen.output, model.outputs[0]])
    image = target.of_kind("image")[0]
    h, w = target.shapes[image][:2]

    @compiled
    def cam_of(batch):
        with tf.GradientTape() as tape:
            maps, out = grad_model(batch, training=False)
            tape.watch(maps)
            y = target.reduce(out, batch)
        grads = tape.gradient(y, maps)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.reduce_sum(weights * maps, axis=-1, keepdims=True)
        if relu:
            cam = tf.nn.relu(cam)
        return tf.image.resize(cam, (h, w), method="bilinear")[..., 0]

    n = len(inputs[image])
    cams = np.zeros((n, h, w))
    for start in range(0, n, target.batch_size):
        batch = {k: tf.constant(v[start:start + target.batch_size]) for k, v in inputs.items()}
        cams[start:start + target.batch_size] = cam_of(batch).numpy()
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    values[image] = np.repeat(cams[..., None], target.shapes[image][-1], axis=-1)
    return {"values": values, "extra": {"layer": chosen.name}}
