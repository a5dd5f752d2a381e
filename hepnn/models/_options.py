"""Checks of model-builder options, in plain Python (no Keras).

Every builder validates its options before it builds anything, and the same checks
run when a config is loaded (:func:`hepnn.models.registry.check_params` calls the
``check_options`` attribute a builder carries), so a typo such as
``activation: relux`` fails at ``load_config`` time with the option's full path.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..exceptions import ConfigError, suggest

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "TASKS",
    "Problems",
    "choice",
    "units",
    "fraction",
    "non_negative",
    "positive_int",
    "boolean",
    "raise_problems",
    "as_units",
]

ACTIVATIONS = ("relu", "leaky_relu", "selu", "elu", "tanh", "sigmoid", "gelu", "swish")
INITIALIZERS = (
    "auto",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
)
TASKS = ("binary", "multiclass", "regression", "autoencoder")

Problems = Iterator[tuple[str, str]]


def choice(key: str, value: Any, valid: Sequence[Any]) -> Problems:
    """Yield a problem when ``value`` is not one of ``valid``."""
    if value not in valid:
        shown = ", ".join(repr(v) for v in valid)
        yield key, f"expected one of {shown}{suggest(str(value), [str(v) for v in valid])}, received {value!r}"


def units(key: str, value: Any, *, allow_empty: bool = True) -> Problems:
    """Yield a problem unless ``value`` is a positive int or a list of positive ints."""
    items = [value] if is_int(value) else value
    ok = isinstance(items, (list, tuple)) and all(is_int(v) and v > 0 for v in items)
    if ok and not allow_empty and len(items) == 0:
        ok = False
    if not ok:
        what = "a positive int or a list of positive ints"
        if not allow_empty:
            what += " (at least one)"
        yield key, f"expected {what}, received {value!r}"


def fraction(key: str, value: Any) -> Problems:
    """Yield a problem unless ``0 <= value < 1``."""
    if not (_is_real(value) and 0 <= value < 1):
        yield key, f"expected a number in [0, 1), received {value!r}"


def non_negative(key: str, value: Any) -> Problems:
    """Yield a problem unless ``value >= 0``."""
    if not (_is_real(value) and value >= 0):
        yield key, f"expected a number >= 0, received {value!r}"


def positive_int(key: str, value: Any) -> Problems:
    """Yield a problem unless ``value`` is an int > 0."""
    if not (is_int(value) and value > 0):
        yield key, f"expected a positive int, received {value!r}"


def real(key: str, value: Any) -> Problems:
    """Yield a problem unless ``value`` is a real number."""
    if not _is_real(value):
        yield key, f"expected a number, received {value!r}"


def boolean(key: str, value: Any) -> Problems:
    """Yield a problem unless ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        yield key, f"expected true or false, received {value!r}"


def common(options: dict[str, Any]) -> Problems:
    """Checks of the options most builders share (those present in ``options``)."""
    checks: dict[str, Callable[[str, Any], Problems]] = {
        "activation": lambda k, v: choice(k, v, ACTIVATIONS),
        "initializer": lambda k, v: choice(k, v, INITIALIZERS),
        "batch_norm": boolean,
        "dropout": fraction,
        "l1": non_negative,
        "l2": non_negative,
        "residual": boolean,
        "branch_units": positive_int,
        "dense_units": units,
    }
    for key, check in checks.items():
        if key in options:
            yield from check(key, options[key])


def check_task(task: Any, n_outputs: Any, valid: Sequence[str]) -> Problems:
    """Check ``task`` against the tasks a builder supports and ``n_outputs`` against it."""
    yield from choice("task", task, valid)
    if not (is_int(n_outputs) and n_outputs > 0):
        yield "n_outputs", f"expected a positive int, received {n_outputs!r}"
    elif task == "multiclass" and n_outputs < 2:
        yield "n_outputs", f"expected at least 2 classes for task 'multiclass', received {n_outputs!r}"


def raise_problems(problems: Iterable[tuple[str, str]], prefix: str = "model.") -> None:
    """Raise :class:`ConfigError` for the first problem, naming ``model.<option>``."""
    for key, problem in problems:
        msg = f"{prefix}{key}: {problem}"
        raise ConfigError(msg)


def as_units(value: int | Sequence[int]) -> tuple[int, ...]:
    """``64 -> (64,)``, ``[64, 32] -> (64, 32)``."""
    if is_int(value):
        return (int(value),)
    return tuple(int(v) for v in value)


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
