"""``efn`` and ``pfn``: Energy / Particle Flow Networks (arXiv:1810.05165).

The EFN is infrared and collinear safe by construction: its per-particle network Phi
sees only the angular coordinates (Δη, Δφ) and the latent sum is weighted by each
particle's pT fraction z, ``O = F(sum_i z_i Phi(Δη_i, Δφ_i))``. Its filters Phi_l(Δη, Δφ)
can be drawn in the plane (:func:`efn_filters`, :func:`hepnn.plotting.efn.plot_efn_filters`):
the "intrinsically explainable" tagger. The PFN's Phi sees every feature:
``O = F(sum_i Phi(x_i))``.

z must reach the model in physical units (not standardised): give the sequence input
``standardize: false`` and standardise the other variables one by one, e.g.::

    particles:
      kind: sequence
      variables: [rel_eta, rel_phi, pt_frac, log_pt]
      standardize: false
      transforms: {log_pt: {standardize: true}}
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np

from . import _options as opt
from . import blocks
from ._features import ETA_NAMES, PHI_NAMES, Z_NAMES, check_features, resolve_features
from .registry import register_model

__all__ = ["build_efn", "build_pfn", "efn_filters"]

_TASKS = ("binary", "multiclass", "regression")
_RESERVED = ("input_shapes", "n_outputs", "task", "mask_value", "feature_names")


def _check_efn(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.units("phi_units", options["phi_units"], allow_empty=False)
    yield from check_features("coordinates", options["coordinates"], 2)
    yield from check_features("z", options["z"] if options["z"] is None or isinstance(options["z"], (list, tuple))
                              else [options["z"]], 1)


@register_model("efn", check=_check_efn, cost=1.5, requires="sequence")
def build_efn(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    phi_units: Sequence[int] = (100, 100, 128),
    dense_units: Sequence[int] = (100, 100, 100),
    coordinates: Sequence[str | int] | None = None,
    z: str | int | None = None,
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = True,
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
    feature_names: Mapping[str, Sequence[str]] | None = None,
):
    """Build an Energy Flow Network (arXiv:1810.05165), infrared and collinear safe.

    For each sequence input: Phi (``phi_units``, shared per particle) of the two
    angular ``coordinates`` only; the latent vectors summed over the real particles
    weighted by the pT fraction ``z`` (raw, not standardised); then F
    (``dense_units``) and the output layer. A particle with z = 0 changes nothing
    (infrared safety); splitting a particle into two with the same direction and the
    same summed z changes nothing (collinear safety); the order of the particles and
    the padding do not matter.

    **Fusion**: every other input (e.g. a flat input of jet-level features in
    ``model.inputs``) gets a side branch concatenated into F's input (which makes the
    model as IRC safe as those features).

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
    phi_units : list of int
        Widths of Phi; the last is the latent dimension (the number of filters).
    dense_units : list of int
        Widths of F.
    coordinates : list of 2 str or int, optional
        (Δη, Δφ) by feature name or column; default: the features named like Δη and
        Δφ (``rel_eta``/``deta``..., ``rel_phi``/``dphi``...), or columns 0 and 1 when
        the names are unknown.
    z : str or int, optional
        The pT-fraction feature (e.g. ``pt_frac``) by name or column; default: a feature
        named ``pt_frac``/``z``..., or column 2 when the names are unknown.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`hepnn.models.dense.build_dense`; ``batch_norm`` and ``dropout``
        apply to F only (Phi stays a pure function of the angles).
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
    >>> model = MODELS.get("efn")({"parts": (30, 3)}, phi_units=[16, 8])  # doctest: +SKIP
    """
    options = {key: v for key, v in locals().items() if key not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check_efn(options))

    # lazy: needs Keras; `import hepnn.models` stays free of it
    from .particle_layers import SelectFeatures, WeightedSum

    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("efn", inputs, "sequence", "(max_length, n_features)")
    features = []
    for name, x in blocks.by_kind(inputs, "sequence").items():
        n_features = x.shape[-1]
        angles = resolve_features("coordinates", coordinates, name, n_features, feature_names,
                                  [ETA_NAMES, PHI_NAMES], fallback=[0, 1])
        z_value = None if z is None else [z]
        (z_column,) = resolve_features("z", z_value, name, n_features, feature_names, [Z_NAMES], fallback=[2])
        mask = blocks.padding_mask(x, mask_value, name=f"{name}_mask")
        x = blocks.zero_padding(x, mask, name=f"{name}_zero_padding")  # Phi never sees the pad value
        h = SelectFeatures(angles, name=f"{name}_angles")(x)
        weight = SelectFeatures([z_column], name=f"{name}_z")(x)
        h = blocks.dense_stack(h, phi_units, activation=activation, initializer=initializer, l1=l1, l2=l2,
                               name=f"{name}_phi")
        features.append(WeightedSum(name=f"{name}_energy_flow")([h, weight, mask]))
    return blocks.tagger_model(inputs, features, "sequence", name="efn", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               batch_norm=batch_norm, dropout=dropout, l1=l1, l2=l2)


def _check_pfn(options: dict[str, Any]) -> opt.Problems:
    yield from opt.common(options)
    yield from opt.units("phi_units", options["phi_units"], allow_empty=False)


@register_model("pfn", check=_check_pfn, cost=1.5, requires="sequence")
def build_pfn(
    input_shapes: dict[str, tuple],
    n_outputs: int = 1,
    task: str = "binary",
    mask_value: float = 0.0,
    *,
    phi_units: Sequence[int] = (100, 100, 128),
    dense_units: Sequence[int] = (100, 100, 100),
    activation: str = "relu",
    initializer: str = "auto",
    batch_norm: bool = True,
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    branch_units: int = 32,
):
    """Build a Particle Flow Network (arXiv:1810.05165): ``F(sum_i Phi(x_i))`` over all features.

    The paper's sizes by default (Phi 100, 100, 128; F 100, 100, 100); a masked *sum*
    over the real particles, so the output does not depend on their order nor on the
    padding. The same network as ``deepsets`` with ``pooling: sum``, under its
    paper's name and sizes.

    **Fusion**: every other input (e.g. a flat input of jet-level features in
    ``model.inputs``) gets a side branch concatenated into F's input.

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
    phi_units : list of int
        Widths of the per-particle network Phi; the last is the latent dimension.
    dense_units : list of int
        Widths of F.
    activation, initializer, batch_norm, dropout, l1, l2
        As for :func:`hepnn.models.dense.build_dense`; ``batch_norm`` and ``dropout``
        apply to F only.
    branch_units : int
        Width of the side branches.

    Returns
    -------
    keras.Model
        Output ``(batch, n_outputs)``.

    Examples
    --------
    >>> from hepnn.models import MODELS
    >>> model = MODELS.get("pfn")({"parts": (30, 4)}, phi_units=[16, 16])  # doctest: +SKIP
    """
    options = {key: v for key, v in locals().items() if key not in _RESERVED}
    opt.raise_problems(opt.check_task(task, n_outputs, _TASKS), prefix="")
    opt.raise_problems(_check_pfn(options))

    inputs = blocks.make_inputs(input_shapes)
    blocks.require_kind("pfn", inputs, "sequence", "(max_length, n_features)")
    features = [
        blocks.deepsets_branch(x, phi_units, mask_value=mask_value, pooling="sum", activation=activation,
                               initializer=initializer, l1=l1, l2=l2, name=name)
        for name, x in blocks.by_kind(inputs, "sequence").items()
    ]
    return blocks.tagger_model(inputs, features, "sequence", name="pfn", units=dense_units, task=task,
                               n_outputs=n_outputs, branch_units=branch_units, mask_value=mask_value,
                               activation=activation, initializer=initializer,
                               batch_norm=batch_norm, dropout=dropout, l1=l1, l2=l2)


def efn_filters(model, extent: float = 0.8, n_grid: int = 65, input_name: str | None = None):
    """Evaluate an EFN's per-particle filters Phi_l(Δη, Δφ) on a square grid.

    Parameters
    ----------
    model : keras.Model
        A model built by :func:`build_efn` (trained or not).
    extent : float
        The grid spans ``[-extent, extent]`` in both coordinates (in the units of the
        model's coordinate features).
    n_grid : int
        Points per axis.
    input_name : str, optional
        The sequence input (default: the first with an EFN branch).

    Returns
    -------
    dict
        ``eta`` and ``phi`` (1-D grids), ``filters`` ``(n_filters, n_grid, n_grid)``
        indexed ``[l, i_phi, i_eta]``, and ``input``.

    Examples
    --------
    >>> grid = efn_filters(model, extent=0.8, n_grid=33)  # doctest: +SKIP
    >>> grid["filters"].shape  # doctest: +SKIP
    (128, 33, 33)
    """
    names = [layer.name for layer in model.layers]
    candidates = [n[: -len("_energy_flow")] for n in names if n.endswith("_energy_flow")]
    if not candidates:
        msg = f"model {model.name!r} has no EFN branch (no layer named '<input>_energy_flow'); build it with 'efn'"
        raise ValueError(msg)
    if input_name is None:
        input_name = candidates[0]
    elif input_name not in candidates:
        msg = f"efn_filters: input {input_name!r} has no EFN branch; choose one of {', '.join(candidates)}"
        raise ValueError(msg)
    # {input}_phi_dense0, _bn0, _act0, ...: not the layers of another input named "{input}_phi"
    own = re.compile(rf"{re.escape(input_name)}_phi_[a-z]+\d+")
    phi_layers = [layer for layer in model.layers if own.fullmatch(layer.name)]
    axis = np.linspace(-extent, extent, int(n_grid), dtype="float32")
    eta, phi = np.meshgrid(axis, axis)  # [i_phi, i_eta]
    h = np.stack([eta.ravel(), phi.ravel()], axis=-1)
    for layer in phi_layers:
        h = layer(h)
    values = np.asarray(h).reshape(len(axis), len(axis), -1)
    return {"eta": axis, "phi": axis, "filters": np.moveaxis(values, -1, 0), "input": input_name}
