"""The model-builder registry (names -> functions returning a ``keras.Model``).

Builders are plain functions; their keyword arguments are the options a config's
``model`` section may set. Registering a builder imports nothing heavy.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator

from ..exceptions import suggest
from ..registry import Registry

__all__ = ["MODELS", "register_model", "check_params"]

MODELS = Registry("model")

# arguments the training code passes itself; a config cannot set them
RESERVED = ("input_shapes", "n_outputs", "task", "mask_value")


def register_model(name: str | None = None) -> Callable:
    """Register a model builder under ``name`` (decorator).

    Examples
    --------
    >>> from hepnn.models.registry import MODELS, register_model
    >>> @register_model("tiny_example")
    ... def build_tiny(input_shapes, n_outputs=1, task="binary", units=4):
    ...     ...
    >>> "tiny_example" in MODELS
    True
    """
    return MODELS.register(name)


def check_params(name: str, params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(key, problem)`` for options the builder ``name`` does not accept."""
    builder = MODELS.get(name)
    signature = inspect.signature(builder)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    valid = [p for p in signature.parameters if p not in RESERVED]
    for key in params:
        if key not in valid:
            yield key, (
                f"unknown option {key!r} of model {name!r}{suggest(key, valid)} "
                f"(valid options: {', '.join(valid)})"
            )
