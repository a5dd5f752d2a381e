"""What an analysis plugin instance is, as data: the data hooks it defines and its settings.

Used by :class:`hepnn.analysis.Analysis` (its ``record`` and ``cache_key``) and by the stream
cache (:mod:`hepnn.io.stream`), which sits below the analysis layer and so cannot import the
``Analysis`` class: the base class marks its own do-nothing hooks with :func:`default_hook`.

Examples
--------
>>> class Plugin:
...     threshold = 1.0
...     def __init__(self):
...         self.cut = 600.0
...     def select(self, jets):
...         return jets["jet_pt"] > self.cut
>>> overridden_data_hooks(Plugin()), instance_settings(Plugin())
(['select'], ({'cut': 600.0}, []))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Mapping

from .config import to_dict

__all__ = ["DATA_HOOKS", "default_hook", "overridden_data_hooks", "instance_settings", "settings_fingerprint"]

#: hooks that decide which jets a run sees and their labels: a run trained with them records them
#: (``provenance.json`` ``analysis``), and its test split is only read again with the analysis
DATA_HOOKS = ("select", "labels")

#: the attribute :func:`default_hook` sets on a base class's do-nothing hook
_DEFAULT_MARK = "__hepnn_default_hook__"


def default_hook(fn: Callable) -> Callable:
    """Mark ``fn`` as a base class's hook that changes nothing (a subclass overriding it is not marked)."""
    setattr(fn, _DEFAULT_MARK, True)
    return fn


def overridden_data_hooks(analysis: Any) -> list[str]:
    """The :data:`DATA_HOOKS` ``analysis`` defines: callables other than the base class's defaults."""
    hooks = []
    for name in DATA_HOOKS:
        hook = getattr(analysis, name, None)
        if callable(hook) and not getattr(getattr(hook, "__func__", hook), _DEFAULT_MARK, False):
            hooks.append(name)
    return hooks


def _plain_setting(value: Any) -> Any:
    """``value`` as JSON data (paths as text, numpy values as lists, config objects as dicts), or raise
    ``TypeError`` when it is not plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain_setting(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain_setting(v) for v in value), key=repr)
    if isinstance(value, Mapping):
        return {str(k): _plain_setting(v) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain_setting(to_dict(value))
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _plain_setting(value.tolist())
    msg = f"a {type(value).__module__}.{type(value).__qualname__} is not plain data"
    raise TypeError(msg)


def instance_settings(analysis: Any) -> tuple[dict[str, Any], list[str]]:
    """The public instance attributes of ``analysis`` (``vars``, names without a leading ``_``) as plain
    JSON data, and the names of those that are not plain data (objects, functions, models)."""
    settings, odd = {}, []
    for name, value in sorted(getattr(analysis, "__dict__", {}).items()):
        if name.startswith("_"):
            continue
        try:
            settings[name] = _plain_setting(value)
        except TypeError:
            odd.append(name)
    return settings, odd


def settings_fingerprint(analysis: Any) -> str | None:
    """A hash of :func:`instance_settings`, or ``None`` when one of them is not plain data (the
    default of :meth:`hepnn.analysis.Analysis.cache_key`, and the stream cache's key for a plugin
    object of another class)."""
    settings, odd = instance_settings(analysis)
    if odd:
        return None
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
