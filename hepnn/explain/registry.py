"""The explainer registry and :func:`explain`, the Python entry point.

An explainer is a function ``fn(target, inputs, **options) -> dict`` registered with
:func:`register_explainer`; ``target`` is a :class:`~hepnn.explain.target.Target`
and ``inputs`` a dict of numpy arrays keyed by input name. The dict it returns has
``values`` (input name -> array shaped like the input) and optionally
``base_values``, ``outputs`` and ``extra``; an explainer whose rows are not the
explained jets (activation maximisation: one per unit) returns their ``inputs``
too, and its Explanation gets no ``labels``. Its keyword arguments are the options a config's
``explain.options.<method>`` may set.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..exceptions import ConfigError, InputDataError, suggest
from ..registry import Registry
from .explanation import Explanation
from .target import Target

__all__ = ["EXPLAINERS", "register_explainer", "explain", "check_options", "applies", "raise_option_problems",
           "positive_int_problem", "check_inputs", "option_names"]

EXPLAINERS = Registry("explainer")


class NotApplicableError(ValueError):
    """The explainer cannot explain this model (e.g. Grad-CAM without an image input)."""


def register_explainer(name: str | None = None, applies: Callable | None = None, check: Callable | None = None) -> Callable:
    """Register an explainer (decorator).

    Parameters
    ----------
    name : str, optional
        The name used by ``--method`` and ``explain.methods`` (default: the function name).
    applies : callable, optional
        ``applies(target) -> str | None``: why the explainer does not apply to a model
        (None when it does).
    check : callable, optional
        ``check(options) -> iterable of (option, problem)``, run on the explainer's defaults
        updated with a config's ``explain.options.<name>`` when the config is loaded, so bad
        values fail at ``hepnn config check``. It must not import Keras.

    Examples
    --------
    >>> from hepnn.explain import register_explainer
    >>> @register_explainer("constant_example")
    ... def constant(target, inputs, value=1.0):
    ...     return {"values": {k: np.full(v.shape, value) for k, v in inputs.items()}}
    >>> _ = EXPLAINERS.unregister("constant_example")  # leave the registry as it was
    """

    def add(fn: Callable) -> Callable:
        fn.applies = applies
        fn.check_options = check
        return EXPLAINERS.register(name)(fn)

    return add


def option_names(fn: Callable) -> list[str]:
    """The options (keyword arguments after ``target, inputs``) explainer ``fn`` takes."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_options(method: str, options: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` naming ``explain.options.<method>.<key>`` for unknown options."""
    fn = EXPLAINERS.get(method)
    valid = option_names(fn)
    for key in options:
        if key not in valid:
            msg = (f"explain.options.{method}.{key}: unknown option{suggest(key, valid)}; "
                   f"valid options of {method!r}: {', '.join(valid) or '(none)'}")
            raise ConfigError(msg)
    check = getattr(fn, "check_options", None)
    if check is not None:
        defaults = {p.name: p.default for p in list(inspect.signature(fn).parameters.values())[2:]
                    if p.default is not inspect.Parameter.empty}
        raise_option_problems(method, check({**defaults, **options}))


def raise_option_problems(method: str, problems: Any) -> None:
    """Raise ``ConfigError`` naming ``explain.options.<method>.<key>`` for the first ``(key, problem)``."""
    for key, problem in problems:
        msg = f"explain.options.{method}.{key}: {problem}"
        raise ConfigError(msg)


def positive_int_problem(value: Any) -> str | None:
    """``"expected a positive int, received ..."`` unless ``value`` is an int >= 1."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return None
    return f"expected a positive int, received {value!r}"


def applies(method: str, target) -> str | None:
    """Why ``method`` cannot explain ``target``'s model, or None."""
    check = getattr(EXPLAINERS.get(method), "applies", None)
    return None if check is None else check(target)


def check_inputs(target, inputs: Mapping[str, np.ndarray], labels: Any = None) -> None:
    """Raise ``InputDataError`` unless every input holds the same number (>= 1) of finite jets
    shaped as the model expects, and ``labels`` (when given) has one entry per jet."""
    n_jets = {}
    for name in target.names:
        x = inputs[name]
        expected = target.shapes[name]
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            msg = (f"inputs[{name!r}]: expected an array of shape (n_jets, {', '.join(map(str, expected))}), "
                   f"received shape {x.shape}")
            raise InputDataError(msg)
        n_jets[name] = len(x)
        if len(x) == 0:
            msg = f"inputs[{name!r}]: received 0 jets; pass at least one jet to explain"
            raise InputDataError(msg)
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            msg = (f"inputs[{name!r}]: {int(bad.sum())} of {len(x)} jets hold NaN or infinite values "
                   f"(first: jet {int(np.flatnonzero(bad)[0])}); remove or fill them before explaining")
            raise InputDataError(msg)
    if len(set(n_jets.values())) > 1:
        sizes = ", ".join(f"{k}: {v}" for k, v in n_jets.items())
        msg = f"inputs: every input must hold the same jets, received different numbers of jets ({sizes})"
        raise InputDataError(msg)
    n = next(iter(n_jets.values()))
    if labels is not None and (np.ndim(labels) != 1 or len(labels) != n):
        msg = f"labels: expected one label per jet ({n}), received shape {np.shape(labels)}"
        raise InputDataError(msg)


def explain(
    model: Any,
    inputs: Mapping[str, np.ndarray],
    method: str = "permutation",
    *,
    task: str | None = None,
    class_index: int | None = None,
    mask_value: float | None = None,
    feature_names: Mapping[str, Sequence[str]] | None = None,
    labels: Any = None,
    **options: Any,
) -> Explanation:
    """Explain ``model`` on ``inputs`` with the explainer ``method``.

    Parameters
    ----------
    model : keras.Model or Target
        A hepnn model taking a dict keyed by input name.
    inputs : dict of str to array
        The jets to explain, keyed by input name.
    method : str
        A name in :data:`EXPLAINERS`.
    task, class_index, mask_value
        What is explained (see :class:`~hepnn.explain.target.Target`); guessed from the model.
    feature_names : dict of str to list of str, optional
    labels : array, optional
        Class labels of the jets (for :meth:`Explanation.by_class` and label-based metrics).
    **options
        The explainer's own options (see its docstring); unknown ones raise ``ConfigError``.

    Returns
    -------
    Explanation

    Examples
    --------
    >>> expl = explain(model, {"jet": x}, method="integrated_gradients", n_steps=32)  # doctest: +SKIP
    """
    fn = EXPLAINERS.get(method)
    name = method if isinstance(method, str) else getattr(fn, "__name__", "explainer")
    if isinstance(method, str):
        check_options(method, options)
    if isinstance(model, Target):  # what it explains is fixed: an option that differs would be ignored
        for key, value in (("task", task), ("class_index", class_index), ("mask_value", mask_value)):
            if value is not None and value != getattr(model, key):
                msg = (f"{key}: received {value!r}, but the Target passed as model explains {key}="
                       f"{getattr(model, key)!r}; build a new Target(model.model, {key}={value!r}) instead")
                raise ConfigError(msg)
    target = model if isinstance(model, Target) else Target(model, task=task, class_index=class_index,
                                                             mask_value=mask_value)
    missing = [n for n in target.names if n not in inputs]
    if missing:
        msg = f"inputs: the model needs {', '.join(target.names)}; missing {', '.join(missing)} (received {', '.join(inputs)})"
        raise ValueError(msg)
    x = {n: np.asarray(inputs[n], dtype=np.float32) for n in target.names}
    check_inputs(target, x, labels)
    reason = getattr(fn, "applies", None) and fn.applies(target)
    if reason:
        raise NotApplicableError(f"explainer {name!r} does not apply to this model: {reason}")
    options = dict(options)
    if labels is not None and "labels" in option_names(fn):
        options.setdefault("labels", np.asarray(labels))
    if feature_names is not None and "feature_names" in option_names(fn):
        options.setdefault("feature_names", dict(feature_names))
    start = time.perf_counter()
    result = fn(target, x, **options)
    seconds = time.perf_counter() - start
    values = target.zero_masked({k: np.asarray(v) for k, v in result["values"].items()}, result.get("inputs", x))
    names = {}
    for n in target.names:
        given = (feature_names or {}).get(n)
        n_feat = target.shapes[n][-1]
        names[n] = [str(s) for s in given] if given is not None else [f"{n}_{i}" for i in range(n_feat)]
    extra = dict(result.get("extra", {}))
    extra["seconds"] = seconds
    outputs = result.get("outputs")
    if outputs is None:
        outputs = target.predict(x)
    base = result.get("base_values")
    if labels is not None and ("inputs" in result or len(np.asarray(labels)) != len(np.asarray(outputs))):
        labels = None  # rows are not the jets (activation maximisation: one row per unit), also when as many
    return Explanation(
        method=name, values=values, inputs=result.get("inputs", x), feature_names=names,
        base_values=None if base is None else np.asarray(base, dtype=np.float64),
        outputs=np.asarray(outputs), labels=None if labels is None else np.asarray(labels), extra=extra,
    )
