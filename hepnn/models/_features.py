"""Finding input features by name for builders that treat some features specially.

ParticleNet's kNN coordinates, the EFN's angular inputs and energy fraction and
ParT's four-momenta are columns of a sequence input. Options name them by the
variable names of ``data.inputs.<name>.variables`` (or give column indices); the
training code passes those names as the builder's ``feature_names`` argument
(:func:`hepnn.models.registry.context_options`). Plain Python, no Keras.
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

from ..exceptions import suggest

__all__ = ["ETA_NAMES", "PHI_NAMES", "Z_NAMES", "MOMENTUM_NAMES", "check_features", "resolve_features"]

# names that mean "(Δη, Δφ) to the jet axis" and "pT fraction", in order of preference
ETA_NAMES = ("rel_eta", "deta", "delta_eta", "part_deta", "etarel", "part_etarel")
PHI_NAMES = ("rel_phi", "dphi", "delta_phi", "part_dphi", "phirel", "part_phirel")
Z_NAMES = ("pt_frac", "z", "part_pt_frac", "ptrel", "part_ptrel")
MOMENTUM_NAMES = (
    ("px", "part_px"),
    ("py", "part_py"),
    ("pz", "part_pz"),
    ("energy", "e", "part_energy", "part_e"),
)


def check_features(key: str, value: Any, n: int | None = None) -> Any:
    """Yield a problem unless ``value`` is None or a list of feature names / indices (of length ``n``)."""
    if value is None:
        return
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, str) or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0) for v in value
    )
    if ok and n is not None and len(value) != n:
        ok = False
    if not ok:
        count = f"{n} " if n is not None else ""
        yield key, (
            f"expected null (find the features by their usual names) or a list of {count}feature names "
            f"(data.inputs.<input>.variables) or column indices, received {value!r}"
        )


def resolve_features(
    option: str,
    value: Sequence[str | int] | None,
    input_name: str,
    n_features: int,
    feature_names: Mapping[str, Sequence[str]] | None,
    candidates: Sequence[Sequence[str]],
    fallback: Sequence[int] | None = None,
) -> list[int]:
    """Column indices of the features ``value`` names in input ``input_name``.

    Parameters
    ----------
    option : str
        The option's name (for messages), e.g. ``"coordinates"``.
    value : list of str or int, or None
        Names (looked up in ``feature_names[input_name]``) or column indices; None:
        for each group of ``candidates`` the first name present.
    input_name, n_features
        The sequence input and its number of features.
    feature_names : mapping, optional
        Input name -> variable names (None when the builder is called directly).
    candidates : list of list of str
        Usual names, one group per wanted feature.
    fallback : list of int, optional
        Columns to use when ``value`` is None and no names are known.

    Examples
    --------
    >>> resolve_features("coordinates", None, "parts", 3, {"parts": ["log_pt", "rel_eta", "rel_phi"]},
    ...                  [ETA_NAMES, PHI_NAMES])
    [1, 2]
    >>> resolve_features("coordinates", [0, 2], "parts", 3, None, [ETA_NAMES, PHI_NAMES])
    [0, 2]
    """
    names = None if feature_names is None else feature_names.get(input_name)
    if names is not None and len(names) != n_features:
        names = None  # shapes win over stale names
    if value is None:
        if names is None:
            if fallback is None:
                msg = (
                    f"model.{option}: cannot find the features by name for input {input_name!r} "
                    f"(no feature names known); give column indices, e.g. {option}: "
                    f"{list(range(len(candidates)))}"
                )
                raise ValueError(msg)
            if any(not 0 <= int(i) < n_features for i in fallback):
                msg = (
                    f"model.{option}: input {input_name!r} has {n_features} features, too few for the default "
                    f"columns {list(fallback)}; name the features in data.inputs.{input_name}.variables "
                    f"or give model.{option} as column indices"
                )
                raise ValueError(msg)
            return [int(i) for i in fallback]
        out = []
        for group in candidates:
            found = next((names.index(n) for n in group if n in names), None)
            if found is None:
                msg = (
                    f"model.{option}: input {input_name!r} has none of the features {', '.join(group)} "
                    f"(its features: {', '.join(names)}); add one to data.inputs.{input_name}.variables "
                    f"or name the features with model.{option}"
                )
                raise ValueError(msg)
            out.append(found)
        return out
    out = []
    for v in value:
        if isinstance(v, str):
            if names is None:
                msg = (
                    f"model.{option}: feature {v!r} of input {input_name!r} cannot be found by name "
                    f"(no feature names known); give column indices instead"
                )
                raise ValueError(msg)
            if v not in names:
                msg = (
                    f"model.{option}: input {input_name!r} has no feature {v!r}{suggest(v, list(names))} "
                    f"(its features: {', '.join(names)})"
                )
                raise ValueError(msg)
            out.append(names.index(v))
        else:
            if not 0 <= int(v) < n_features:
                msg = f"model.{option}: column {v} is out of range for input {input_name!r} with {n_features} features"
                raise ValueError(msg)
            out.append(int(v))
    return out
