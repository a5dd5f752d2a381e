"""``feature_maps``: what the convolutions of an image model learned and what they see.

The first convolution's kernels (the learned filters), and the feature maps (layer
activations) of chosen convolution layers for the given jet images: per jet and
averaged per class. The per-pixel values are the mean activation of the first chosen
layer, resized to the image (where the network "looks"); plots come from
:mod:`hepnn.plotting.filters` and go into the run's report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..exceptions import UnknownNameError
from ..plotting import save_figure
from ..plotting.common import pyplot
from ..plotting.filters import plot_conv_filters, plot_feature_maps
from .gradcam import conv_layers, image_input_of
from .registry import register_explainer

__all__ = ["feature_maps", "write_feature_map_plots"]


def _applies(target):
    if not target.of_kind("image"):
        return "it needs an image input (pixels, pixels, channels)"
    if not conv_layers(target.model):
        return "the model has no Conv2D layer"
    return None


def _kernel(layer) -> np.ndarray:
    """``(kh, kw, in, out)``: a Conv2D kernel, or a separable convolution's depthwise x pointwise product."""
    if hasattr(layer, "depthwise_kernel"):
        depthwise = np.asarray(layer.depthwise_kernel)  # (kh, kw, in, multiplier)
        pointwise = np.asarray(layer.pointwise_kernel)  # (1, 1, in * multiplier, out)
        kh, kw, n_in, mult = depthwise.shape
        return np.einsum("hwim,imo->hwio", depthwise, pointwise[0, 0].reshape(n_in, mult, -1))
    return np.asarray(layer.kernel)


@register_explainer("feature_maps", applies=_applies)
def feature_maps(target, inputs, layers: list | None = None, n_examples: int = 4, labels=None) -> dict:
    """Learned filters of the first convolution and feature maps of chosen layers.

    Parameters
    ----------
    layers : list of str, optional
        Convolution layers whose feature maps are recorded (default: the first and
        the last Conv2D layer).
    n_examples : int
        Jets whose individual feature maps are kept (the first ones).
    labels : array, optional
        Class labels of the jets (given by ``explain_run``): feature maps are
        averaged per class.

    Returns
    -------
    dict
        ``values``: per jet, the mean activation of the first chosen layer, resized to
        the image it sees (``extra["image"]``) and copied into each of its channels; ``extra``: ``filters`` (the first
        convolution's kernel ``(kh, kw, in, out)``), ``layers``, and per layer ``i``
        ``mean_maps_<i>`` ``(n_classes, h, w, channels)`` with ``classes`` (the labels
        of its rows) and ``example_maps_<i>`` ``(n_examples, h, w, channels)``.
    """
    import tensorflow as tf

    keras = target.keras
    model = target.model
    convs = conv_layers(model)
    names = [c.name for c in convs]
    if layers is None:
        chosen = [convs[0]] if len(convs) == 1 else [convs[0], convs[-1]]
    else:
        if isinstance(layers, str):
            layers = [layers]
        missing = [n for n in layers if n not in names]
        if missing:
            raise UnknownNameError(missing[0], "convolution layer", names)
        chosen = [convs[names.index(n)] for n in layers]
    struct = getattr(model, "_inputs_struct", None) or model.inputs
    probe = keras.Model(struct, [layer.output for layer in chosen])
    image = image_input_of(target, chosen[0])
    h, w = target.shapes[image][:2]
    n = len(inputs[image])
    outputs: list[list[np.ndarray]] = [[] for _ in chosen]
    for start in range(0, n, target.batch_size):
        batch = {k: tf.constant(v[start:start + target.batch_size]) for k, v in inputs.items()}
        got = probe(batch, training=False)
        got = got if isinstance(got, (list, tuple)) else [got]
        for i, g in enumerate(got):
            outputs[i].append(np.asarray(g))
    maps = [np.concatenate(o) if o else np.zeros((0,) + tuple(layer.output.shape[1:])) for o, layer in zip(outputs, chosen)]
    labels = np.zeros(n, dtype=int) if labels is None or len(labels) != n else np.asarray(labels, dtype=int)
    classes = np.unique(labels)
    extra: dict = {"filters": _kernel(convs[0]), "filters_layer": convs[0].name, "image": image,
                   "layers": [layer.name for layer in chosen], "classes": classes}
    for i, m in enumerate(maps):
        extra[f"mean_maps_{i}"] = np.stack([m[labels == c].mean(axis=0) for c in classes]) if n else m
        extra[f"example_maps_{i}"] = m[: max(int(n_examples), 0)]
    first = maps[0].mean(axis=-1, keepdims=True)
    resized = tf.image.resize(first, (h, w), method="bilinear").numpy()[..., 0] if n else np.zeros((0, h, w))
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    values[image] = np.repeat(resized[..., None], target.shapes[image][-1], axis=-1)
    return {"values": values, "extra": extra}


def write_feature_map_plots(expl, out_dir, class_names=None) -> list[Path]:
    """PNG plots of a ``feature_maps`` explanation in ``out_dir``: ``filters.png`` and
    ``feature_maps_<layer>.png`` (class averages, then the example jets)."""
    plt = pyplot()
    out_dir = Path(out_dir)
    written: list[Path] = []
    extra = expl.extra
    if "filters" in extra:
        res = plot_conv_filters(np.asarray(extra["filters"]))
        res.figure.suptitle(f"learned filters of {extra.get('filters_layer', 'the first convolution')}", fontsize=10)
        written.extend(save_figure(res.figure, out_dir / "filters", formats=("png",)))
        plt.close(res.figure)
    classes = [int(c) for c in np.asarray(extra.get("classes", []))]
    for i, layer in enumerate(extra.get("layers", [])):
        means = np.asarray(extra.get(f"mean_maps_{i}", np.zeros((0,))))
        if means.ndim != 4 or not len(means):
            continue
        rows = {}
        for c, m in zip(classes, means):
            label = class_names[c] if class_names is not None and c < len(class_names) else f"class {c}"
            rows[f"mean {label}"] = m
        for j, m in enumerate(np.asarray(extra.get(f"example_maps_{i}", np.zeros((0,))))[:2]):
            rows[f"jet {j}"] = m
        res = plot_feature_maps(rows)
        res.figure.suptitle(f"feature maps of {layer}", fontsize=10)
        written.extend(save_figure(res.figure, out_dir / f"feature_maps_{layer}", formats=("png",)))
        plt.close(res.figure)
    return written


feature_maps.write_plots = write_feature_map_plots
