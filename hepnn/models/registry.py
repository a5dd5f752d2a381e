"""The model-builder registry (names -> functions returning a ``keras.Model``).

Builders are plain functions; their keyword arguments are the options a config's
``model`` section may set. Registering a builder imports nothing heavy.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator

from ..exceptions import suggest
from ..registry import Registry

__all__ = ["MODELS", "register_model", "check_params", "build_model", "context_options", "relative_cost"]

MODELS = Registry("model")

# arguments the training code passes itself; a config cannot set them
RESERVED = ("input_shapes", "n_outputs", "task", "mask_value")
# context the training code passes to the builders that accept it (not a config option):
# ``feature_names`` = {input name: [variable names]} from ``data.inputs``
CONTEXT = ("feature_names",)


def register_model(name: str | None = None, check: Callable | None = None, cost: float = 1.0,
                   requires: str | None = None) -> Callable:
    """Register a model builder under ``name`` (decorator).

    Parameters
    ----------
    name : str, optional
        The name a config's ``model.name`` uses (default: the function's name).
    check : callable, optional
        ``check(options) -> iterable of (option, problem)``, run on the builder's
        defaults updated with a config's options when the config is loaded, so bad
        option values fail early. It must not import Keras.
    cost : float, optional
        Its training time per jet and epoch relative to the dense network's at the
        sizes of a typical config (a hint: ``hepnn run --jobs`` starts the costliest
        variants first, so the last to finish are short; it changes no number).
    requires : str, optional
        The input kind (``"image"``, ``"sequence"``, ...) the builder needs at least one
        input of; a config whose model inputs have none fails when it is loaded.

    Examples
    --------
    >>> from hepnn.models.registry import MODELS, register_model
    >>> @register_model("tiny_example")
    ... def build_tiny(input_shapes, n_outputs=1, task="binary", units=4):
    ...     ...
    >>> "tiny_example" in MODELS
    True
    >>> _ = MODELS.unregister("tiny_example")  # leave the registry as it was
    """

    def add(builder: Callable) -> Callable:
        if check is not None:
            builder.check_options = check
        builder.relative_cost = float(cost)
        builder.required_kind = requires
        return MODELS.register(name)(builder)

    return add


def check_params(name: str, params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(key, problem)`` for options the builder ``name`` does not accept.

    Unknown options are reported first; when all are known, the builder's own
    value checks (``check_options``) run on its defaults updated with ``params``.
    """
    builder = MODELS.get(name)
    signature = inspect.signature(builder)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    valid = [p for p in signature.parameters if p not in RESERVED + CONTEXT]
    unknown = False
    for key in params:
        if key not in valid:
            unknown = True
            yield key, (
                f"unknown option {key!r} of model {name!r}{suggest(key, valid)} "
                f"(valid options: {', '.join(valid)})"
            )
    check = getattr(builder, "check_options", None)
    if unknown or check is None:
        return
    options = {
        key: p.default
        for key, p in signature.parameters.items()
        if key not in RESERVED + CONTEXT and p.default is not p.empty
    }
    options.update(params)
    for key, problem in check(options):
        if key not in RESERVED + CONTEXT:
            yield key, problem


def relative_cost(name: str) -> float:
    """The ``cost`` a builder was registered with (1 for an unknown name or a builder without one).

    Examples
    --------
    >>> relative_cost("dense"), relative_cost("particlenet") > relative_cost("deepsets")
    (1.0, True)
    """
    try:
        builder = MODELS.get(name)
    except KeyError:
        return 1.0
    return float(getattr(builder, "relative_cost", 1.0))


def build_model(name: str, input_shapes: dict[str, tuple], **kwargs: Any):
    """Build the registered model ``name`` (a thin wrapper over ``MODELS.get(name)``).

    Examples
    --------
    >>> from hepnn.models import build_model
    >>> model = build_model("dense", {"jet": (4,)}, units=(8,))  # doctest: +SKIP
    """
    return MODELS.get(name)(input_shapes, **kwargs)


def context_options(builder: Callable, config: Any, input_names: Any = None) -> dict[str, Any]:
    """The :data:`CONTEXT` arguments ``builder`` accepts, taken from ``config``.

    ``feature_names`` maps each data input (of ``input_names``, default all) to its
    variable names (``data.inputs.<name>.variables``; an image input to its channels),
    so a builder can find features by name (e.g. ParticleNet's (Δη, Δφ) coordinates).

    Examples
    --------
    >>> from hepnn.config import load_config
    >>> config = load_config({"data": {"inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}})
    >>> context_options(MODELS.get("particlenet"), config)
    {'feature_names': {'jet': ['jet_pt']}}
    """
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    if "feature_names" in params:
        inputs = getattr(getattr(config, "data", None), "inputs", None) or {}
        names = list(inputs) if input_names is None else [n for n in input_names if n in inputs]
        feature_names = {}
        for name in names:
            spec = inputs[name]
            variables = getattr(spec, "variables", None) or getattr(spec, "channels", None) or ()
            feature_names[name] = [str(v) for v in variables]
        out["feature_names"] = feature_names
    return out
