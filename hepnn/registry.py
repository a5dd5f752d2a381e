"""A small generic registry: a decorator to add things and ``get`` to look them up.

Used for readers and representations, derived variables, models, explainers and plots.

Examples
--------
>>> from hepnn.registry import Registry
>>> activations = Registry("activation")
>>> @activations.register("double")
... def double(x):
...     return 2 * x
>>> activations.get("double")(3)
6
>>> activations.get(abs) is abs  # objects pass through
True
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .exceptions import UnknownNameError

__all__ = ["Registry"]


class Registry:
    """A mapping of names to objects of one kind.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages ("model", "explainer").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str | None = None, obj: Any = None) -> Callable:
        """Register ``obj`` under ``name`` (decorator when ``obj`` is omitted).

        A name can be registered once; a second registration raises ``ValueError``.
        """

        def add(target: Any) -> Any:
            key = name or getattr(target, "__name__", None)
            if not key:
                msg = f"cannot register {target!r} as a {self.kind}: give it a name"
                raise ValueError(msg)
            if key in self._items and self._items[key] is not target:
                msg = (
                    f"a {self.kind} named {key!r} is already registered "
                    f"({self._items[key]!r}); choose another name"
                )
                raise ValueError(msg)
            self._items[key] = target
            return target

        if obj is not None:
            return add(obj)
        return add

    def unregister(self, name: str) -> Any:
        """Remove and return the object registered as ``name`` (e.g. a plugin's or a test's)."""
        try:
            return self._items.pop(name)
        except KeyError:
            raise UnknownNameError(name, self.kind, self._items) from None

    def get(self, identifier: Any) -> Any:
        """Return the object registered as ``identifier``; non-strings pass through."""
        if not isinstance(identifier, str):
            return identifier
        try:
            return self._items[identifier]
        except KeyError:
            raise UnknownNameError(identifier, self.kind, self._items) from None

    def items(self) -> list[tuple[str, Any]]:
        """``(name, object)`` pairs in registration order."""
        return list(self._items.items())

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
