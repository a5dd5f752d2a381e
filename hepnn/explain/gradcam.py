"""``gradcam``: Grad-CAM (Selvaraju et al. 2017) of a convolution layer of an image model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..exceptions import ConfigError, UnknownNameError
from ..models.inference import compiled
from .registry import register_explainer

__all__ = ["gradcam", "conv_layers", "image_input_of"]


def conv_layers(model) -> list:
    """The 2D convolution layers of a model, in order."""
    return [layer for layer in model.layers
            if "Conv2D" in type(layer).__name__ and "Transpose" not in type(layer).__name__]


def image_input_of(target, layer) -> str:
    """The image input whose convolution tower ``layer`` belongs to.

    The model's graph is followed back from the layer's output to the inputs it depends
    on. A model with several image inputs has a tower per image (``cnn``, ``resnet``);
    a layer that sees no image input, or several, is an error naming them.
    """
    model = target.model
    struct = getattr(model, "_inputs_struct", None)
    tensors = struct.items() if isinstance(struct, Mapping) else ((t.name.split(":")[0], t) for t in model.inputs)
    names = {id(t): n for n, t in tensors}
    found: set[str] = set()
    stack, seen = [layer.output], set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if id(tensor) in names:
            found.add(names[id(tensor)])
            continue
        operation, node_index, _ = tensor._keras_history
        stack.extend(operation._inbound_nodes[node_index].input_tensors)
    images = [n for n in target.of_kind("image") if n in found]
    if len(images) != 1:
        seen_images = f"the image inputs {images}" if images else "no image input"
        msg = (f"convolution layer {layer.name!r} sees {seen_images}; choose a layer of one image input's "
               f"convolutions (image inputs: {target.of_kind('image')})")
        raise ConfigError(msg)
    return images[0]


def _applies(target):
    if not target.of_kind("image"):
        return "it needs an image input (pixels, pixels, channels)"
    if not conv_layers(target.model):
        nested = [layer.name for layer in target.model.layers if getattr(layer, "layers", None)]
        return ("the model has no Conv2D layer at its top level" + (
            f" (one inside the nested model(s) {nested} is not reached: build the model with its "
            "layers at the top level)" if nested else ""))
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
        Name of the convolution layer; its map goes into the image input whose
        convolutions it belongs to, the other inputs get zeros. Default: for every
        image input, the last Conv2D layer of its convolutions (a model with two jet
        images gets a map of each).
    relu : bool
        Keep only positive evidence (the usual Grad-CAM); False keeps the sign.

    Returns
    -------
    dict
        ``values`` per input; ``extra``: ``layer`` (the layer of the first mapped image
        input) and ``layers`` (image input -> layer).
    """
    import tensorflow as tf

    keras = target.keras
    model = target.model
    convs = conv_layers(model)
    if layer is None:
        chosen: dict[str, object] = {}
        for conv in convs:  # the last one of each image input's convolutions wins
            chosen[image_input_of(target, conv)] = conv
        chosen = {image: chosen[image] for image in target.of_kind("image") if image in chosen}
    else:
        names = [c.name for c in convs]
        if layer not in names:
            raise UnknownNameError(layer, "convolution layer", names)
        conv = convs[names.index(layer)]
        chosen = {image_input_of(target, conv): conv}
    struct = getattr(model, "_inputs_struct", None) or model.inputs
    images = list(chosen)
    grad_model = keras.Model(struct, [*(chosen[image].output for image in images), model.outputs[0]])
    sizes = [target.shapes[image][:2] for image in images]

    @compiled
    def cams_of(batch):
        with tf.GradientTape() as tape:
            *maps, out = grad_model(batch, training=False)
            tape.watch(maps)
            y = target.reduce(out, batch)
        grads = tape.gradient(y, maps)
        cams = []
        for m, g, size in zip(maps, grads, sizes):
            weights = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
            cam = tf.reduce_sum(weights * m, axis=-1, keepdims=True)
            if relu:
                cam = tf.nn.relu(cam)
            cams.append(tf.image.resize(cam, size, method="bilinear")[..., 0])
        return cams

    n = len(inputs[images[0]])
    cams = [np.zeros((n, *size)) for size in sizes]
    for start in range(0, n, target.batch_size):
        batch = {k: tf.constant(v[start:start + target.batch_size]) for k, v in inputs.items()}
        for cam, got in zip(cams, cams_of(batch)):
            cam[start:start + target.batch_size] = got.numpy()
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    for image, cam in zip(images, cams):
        values[image] = np.repeat(cam[..., None], target.shapes[image][-1], axis=-1)
    return {"values": values, "extra": {"layer": chosen[images[0]].name,
                                        "layers": {image: chosen[image].name for image in images}}}
