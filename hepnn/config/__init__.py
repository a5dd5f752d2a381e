"""Configuration: YAML files read strictly into frozen dataclasses.

Examples
--------
>>> import hepnn
>>> config = hepnn.config.load_config({"training": {"epochs": 3}})
>>> config.training.epochs
3
>>> hepnn.config.load_config({"training": {"epoch": 3}})
Traceback (most recent call last):
...
hepnn.exceptions.ConfigError: training.epoch: unknown key 'epoch'; did you mean 'epochs'? ...
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._fileio import atomic_write_text
from ..exceptions import ConfigError, UnknownNameError
from .loader import dump_yaml, from_dict, parse_override, safe_load_yaml, set_path, to_dict
from .schema import *  # noqa: F403
from .schema import Config, DataConfig, ModelConfig, TrainingConfig  # noqa: F401
from .schema import with_overlay

__all__ = [
    "Config",
    "load_config",
    "load_raw",
    "dump_config",
    "save_config",
    "apply_overrides",
    "variant",
    "quick",
    "from_dict",
    "to_dict",
]


def load_raw(source: str | os.PathLike | Mapping | None) -> dict:
    """Read a config file (or copy a mapping) into plain data, without validation."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    data = safe_load_yaml(Path(source))
    if data is None:
        return {}
    if not isinstance(data, dict):
        msg = f"{source}: expected a mapping of sections (data, model, training, ...), received {type(data).__name__}"
        raise ConfigError(msg)
    return data


def apply_overrides(raw: dict, overrides: Iterable[str] = ()) -> dict:
    """Apply ``--set key=value`` overrides to raw config data (in place) and return it."""
    for item in overrides:
        key, value = parse_override(item)
        set_path(raw, key, value)
    return raw


def load_config(
    source: str | os.PathLike | Mapping | Config | None = None,
    overrides: Iterable[str] = (),
) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    source : path, mapping, Config or None
        A YAML file, a mapping of sections, an existing config, or ``None`` for defaults.
    overrides : iterable of str
        ``"section.key=value"`` strings (values are YAML), applied before validation.

    Returns
    -------
    Config
        With ``data.directory`` set to the config file's folder when the file did not set it.

    Raises
    ------
    ConfigError
        Naming the full path of the first bad key.
    """
    if isinstance(source, Config):
        raw = to_dict(source)
        base = None
    else:
        raw = load_raw(source)
        base = None if source is None or isinstance(source, Mapping) else Path(source).resolve().parent
    apply_overrides(raw, overrides)
    if base is not None and isinstance(raw.get("data"), dict) and raw["data"].get("directory") is None:
        raw["data"]["directory"] = str(base)
    return from_dict(Config, raw, "")


def variant(config: Config, name: str | None) -> Config:
    """The config of variant ``name`` (its overlay merged onto the base; ``None``: the base).

    A variant that changes ``model.name`` starts from the new model's defaults: the base's
    builder options (``units``, ``filters``, ...) belong to another model and are not inherited;
    ``model.inputs`` is. An option the new model does not know is an error naming it.
    """
    if name is None:
        return config

    if name not in config.variants:
        raise UnknownNameError(name, "variant", config.variants)
    full_name = f"{config.name}/{name}" if config.name else name
    return with_overlay(config, {**config.variants[name], "name": full_name}, f"variants.{name}")


def quick(config: Config) -> Config:
    """The config with its ``quick`` overlay merged in (``hepnn run --quick``)."""
    if not config.quick:
        return config
    return with_overlay(config, config.quick, "quick", clear=("quick",))


def dump_config(config: Config) -> str:
    """The config as YAML text (reloads to an equal object)."""
    return dump_yaml(to_dict(config))


def save_config(config: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config to ``path`` atomically."""
    return atomic_write_text(path, dump_config(config))


def replace(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for frozen configs."""
    return dataclasses.replace(config, **changes)
