"""``occlusion``: occlusion sensitivity of jet images (a sliding patch set to a fill value)."""

from __future__ import annotations

import numpy as np

from .registry import positive_int_problem, raise_option_problems, register_explainer

__all__ = ["occlusion"]


def _applies(target):
    return None if target.of_kind("image") else "it needs an image input (pixels, pixels, channels)"


def _check(options):
    problems = False
    for key in ("patch_size", "stride"):
        problem = positive_int_problem(options[key])
        if problem:
            problems = True
            yield key, problem
    if not problems and options["stride"] > options["patch_size"]:
        # the pixels between two patches would never be covered and get 0, like pixels that do not matter
        yield "stride", (f"expected at most patch_size ({options['patch_size']}) so that every pixel is "
                         f"occluded, received {options['stride']}")


@register_explainer("occlusion", applies=_applies, check=_check)
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
        Step between patch positions in pixels (at most ``patch_size``: every pixel is covered).
    fill : float
        Value written into the patch.
    """
    raise_option_problems("occlusion", _check({"patch_size": patch_size, "stride": stride}))
    reference = target.predict(inputs)
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    for name in target.of_kind("image"):
        img = inputs[name]
        n, h, w, _ = img.shape
        total = np.zeros((n, h, w))
        count = np.zeros((h, w))
        ys = sorted(set(list(range(0, max(h - patch_size, 0) + 1, stride)) + [max(h - patch_size, 0)]))
        xs = sorted(set(list(range(0, max(w - patch_size, 0) + 1, stride)) + [max(w - patch_size, 0)]))

        def occluded_at(name=name, img=img, ys=ys, xs=xs):
            for y0 in ys:
                for x0 in xs:
                    window = img[:, y0:y0 + patch_size, x0:x0 + patch_size, :]
                    changed = np.flatnonzero(np.any(window != np.float32(fill), axis=(1, 2, 3)))
                    count[y0:y0 + patch_size, x0:x0 + patch_size] += 1
                    if len(changed):
                        occluded = img[changed].copy()
                        occluded[:, y0:y0 + patch_size, x0:x0 + patch_size, :] = fill
                        yield (y0, x0, changed), {**{k: inputs[k][changed] for k in inputs}, name: occluded}

        # the patches' variants are scored together, in full batches (hepnn.explain.target)
        for (y0, x0, changed), out in target.predict_each(occluded_at()):
            delta = np.zeros(n)
            delta[changed] = reference[changed] - out
            total[:, y0:y0 + patch_size, x0:x0 + patch_size] += delta[:, None, None]
        values[name] = np.repeat((total / np.maximum(count, 1))[..., None], img.shape[-1], axis=-1)
    return {"values": values, "outputs": reference,
            "extra": {"patch_size": patch_size, "stride": stride, "fill": fill}}
