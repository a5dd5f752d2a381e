"""``occlusion``: occlusion sensitivity of jet images (a sliding patch set to a fill value)."""

from __future__ import annotations

import numpy as np

from .registry import register_explainer

__all__ = ["occlusion"]


def _applies(target):
    return None if target.of_kind("image") else "it needs an image input (pixels, pixels, channels)"


@register_explainer("occlusion", applies=_applies)
def occlusion(target, inputs, patch_size: int = 4, stride: int = 2, fill: float = 0.0) -> dict:
    """Cover a ``patch_size`` x ``patch_size`` square with ``fill`` and record the output drop.

    ``values[image][i, y, x, c]`` is the mean of ``output(x_i) - output(x_i occluded)``
    over the patches covering pixel (y, x) (all channels are occluded together and
    share the value). An all-zero image occluded with ``fill=0`` gets exactly zero.

    Parameters
    ----------
    patch_size : int
        Side of the square patch in pixels.
    stride : int
        Step between patch positions in pixels.
    fill : float
        Value written into the patch.
    """
    if patch_size < 1 or stride < 1:
        msg = f"explain.options.occlusion: patch_size and stride must be positive ints, received {patch_size}, {stride}"
        raise ValueError(msg)
    reference = target.predict(inputs)
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    for name in target.of_kind("image"):
        img = inputs[name]
        n, h, w, _ = img.shape
        total = np.zeros((n, h, w))
        count = np.zeros((h, w))
        ys = sorted(set(list(range(0, max(h - patch_size, 0) + 1, stride)) + [max(h - patch_size, 0)]))
        xs = sorted(set(list(range(0, max(w - patch_size, 0) + 1, stride)) + [max(w - patch_size, 0)]))
        for y0 in ys:
            for x0 in xs:
                occluded = img.copy()
                window = occluded[:, y0:y0 + patch_size, x0:x0 + patch_size, :]
                changed = np.any(window != np.float32(fill), axis=(1, 2, 3))
                if np.any(changed):
                    window[...] = fill
                    x = dict(inputs)
                    x[name] = occluded[changed]
                    for other in inputs:
                        if other != name:
                            x[other] = inputs[other][changed]
                    delta = np.zeros(n)
                    delta[changed] = reference[changed] - target.predict(x)
                    total[:, y0:y0 + patch_size, x0:x0 + patch_size] += delta[:, None, None]
                count[y0:y0 + patch_size, x0:x0 + patch_size] += 1
        values[name] = np.repeat((total / np.maximum(count, 1))[..., None], img.shape[-1], axis=-1)
    return {"values": values, "outputs": reference,
            "extra": {"patch_size": patch_size, "stride": stride, "fill": fill}}
