"""The search space of ``hepnn tune``: which config keys to vary, and over what.

``SPACE.yaml`` maps dotted config paths to one of::

    model.units: {int: [16, 256], log: true}             # an integer range (optional step)
    training.optimizer.learning_rate: {float: [1e-4, 1e-2], log: true}
    model.cell: [lstm, gru]                              # categorical choices
    model.params_list: [[16, 16], [64, 64]]              # choices may be lists or mappings

Every key is checked against the base config before any trial runs, by loading the
config with each end of the range (or each choice) as a ``--set`` override, so a typo
fails at once with the config loader's message and suggestion.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import load_config
from ..config.loader import safe_load_yaml
from ..exceptions import ConfigError, suggest

__all__ = ["Dimension", "SearchSpace", "load_space"]

_RANGE_KEYS = {"int": {"int", "log", "step"}, "float": {"float", "log", "step"}}
_SCALARS = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Dimension:
    """One searched config key.

    Parameters
    ----------
    key : str
        Dotted config path, e.g. ``training.optimizer.learning_rate``.
    kind : {"int", "float", "categorical"}
    low, high : number, optional
        Inclusive, finite range of ``int`` and ``float`` dimensions (``nan`` and ``inf`` are refused).
    log : bool
        Sample the range uniformly in log space.
    step : number, optional
        Step of a discrete range.
    choices : tuple, optional
        The values of a categorical dimension (scalars, lists or mappings).

    Examples
    --------
    >>> Dimension("model.cell", "categorical", choices=("lstm", "gru")).override("gru")
    'model.cell="gru"'
    """

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = field(default=())

    @property
    def encoded(self) -> bool:
        """True when choices are not plain scalars (Optuna stores them as JSON strings)."""
        return self.kind == "categorical" and not all(isinstance(c, _SCALARS) for c in self.choices)

    def suggest(self, trial) -> Any:
        """Draw this dimension's value from an Optuna trial (decoded to the config value)."""
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)
        return self.decode(trial.suggest_categorical(self.key, self.optuna_choices()))

    def optuna_choices(self) -> list:
        return [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices)

    def decode(self, value: Any) -> Any:
        """The config value of an Optuna parameter value."""
        return json.loads(value) if self.encoded and isinstance(value, str) else value

    def edges(self) -> list:
        """The values checked against the config: both ends of a range, every choice."""
        return [self.low, self.high] if self.kind in ("int", "float") else list(self.choices)

    def grid(self) -> list:
        """Every value of a discrete dimension (Optuna parameter values)."""
        if self.kind == "categorical":
            return self.optuna_choices()
        if self.kind == "int" or self.step is not None:
            step = self.step or 1
            n = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
            values = [self.low + i * step for i in range(n)]
            return [int(v) for v in values] if self.kind == "int" else [round(v, 12) for v in values]
        msg = (
            f"{self.key}: a grid search needs discrete dimensions, received a continuous float range "
            f"[{self.low}, {self.high}]; add `step:` or list the values"
        )
        raise ConfigError(msg)

    def override(self, value: Any) -> str:
        """The ``--set`` string that puts ``value`` (a config value) at this key."""
        return f"{self.key}={json.dumps(value)}"


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of :class:`Dimension`.

    Examples
    --------
    >>> space = SearchSpace.from_mapping({"model.units": [[8], [16, 16]], "training.epochs": {"int": [1, 3]}})
    >>> [d.key for d in space], len(space.grid())
    (['model.units', 'training.epochs'], 6)
    """

    dimensions: tuple[Dimension, ...]

    def __iter__(self):
        return iter(self.dimensions)

    def __len__(self) -> int:
        return len(self.dimensions)

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    @classmethod
    def from_mapping(cls, data: Any, source: str = "space") -> SearchSpace:
        if not isinstance(data, Mapping) or not data:
            msg = (
                f"{source}: expected a mapping of dotted config keys to ranges or choices, e.g. "
                f"{{model.units: {{int: [16, 256], log: true}}}}, received {data!r}"
            )
            raise ConfigError(msg)
        return cls(tuple(_parse_dimension(str(k), v, source) for k, v in data.items()))

    def suggest(self, trial) -> dict[str, Any]:
        """Config values of every dimension drawn from ``trial``, keyed by dotted path."""
        return {d.key: d.suggest(trial) for d in self.dimensions}

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Config values from Optuna parameters (e.g. ``study.best_params``)."""
        return {d.key: d.decode(params[d.key]) for d in self.dimensions if d.key in params}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """``--set`` strings for config values keyed by dotted path."""
        by_key = {d.key: d for d in self.dimensions}
        return [by_key[k].override(v) for k, v in values.items()]

    def grid(self) -> list[dict[str, Any]]:
        """Every point of a discrete space, as Optuna parameters, in a fixed order."""
        axes = [d.grid() for d in self.dimensions]
        return [dict(zip(self.keys, point)) for point in itertools.product(*axes)]

    def touches_data(self) -> bool:
        """True when a dimension changes ``data.*`` (the data must be reloaded per trial)."""
        return any(k.split(".")[0] == "data" for k in self.keys)

    def validate(self, config: Any, overrides: Iterable[str] = ()) -> None:
        """Load ``config`` with every edge value of every dimension; raise ConfigError naming the key."""
        _register_models()
        overrides = list(overrides)
        for dim in self.dimensions:
            for value in dim.edges():
                try:
                    load_config(config, [*overrides, dim.override(value)])
                except ConfigError as err:
                    msg = f"search space key {dim.key!r} (value {value!r}) is not valid for the config: {err}"
                    raise ConfigError(msg) from None


def _register_models() -> None:
    """Import the model builders, so that model options are checked by name."""
    try:
        # lazy: `import hepnn.tune` stays light; the builders register only when a space is checked
        import hepnn.models  # noqa: F401
    except ModuleNotFoundError:  # pragma: no cover - keras missing; the config check is then shallower
        pass


def _parse_dimension(key: str, spec: Any, source: str) -> Dimension:
    where = f"{source}: {key}"
    if not key or any(not part.isidentifier() and not part.isdigit() for part in key.split(".")):
        msg = f"{where}: expected a dotted config path such as training.optimizer.learning_rate"
        raise ConfigError(msg)
    if isinstance(spec, list):
        if not spec:
            msg = f"{where}: empty list of choices; list at least one value"
            raise ConfigError(msg)
        encoded = [json.dumps(c, sort_keys=True) for c in spec]
        if len(set(encoded)) != len(encoded):
            msg = f"{where}: duplicate choices in {spec!r}"
            raise ConfigError(msg)
        return Dimension(key, "categorical", choices=tuple(spec))
    if not isinstance(spec, Mapping):
        msg = (
            f"{where}: expected a list of choices, {{int: [lo, hi]}} or {{float: [lo, hi]}}, "
            f"received {spec!r}"
        )
        raise ConfigError(msg)
    kinds = [k for k in ("int", "float") if k in spec]
    if len(kinds) != 1:
        msg = f"{where}: expected exactly one of 'int' or 'float' (or a list of choices), received keys {sorted(spec)}"
        raise ConfigError(msg)
    kind = kinds[0]
    unknown = set(spec) - _RANGE_KEYS[kind]
    if unknown:
        name = sorted(unknown)[0]
        msg = f"{where}: unknown key {name!r}{suggest(name, _RANGE_KEYS[kind])}; valid keys: {', '.join(sorted(_RANGE_KEYS[kind]))}"
        raise ConfigError(msg)
    bounds = spec[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list) or len(bounds) != 2
        or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
    ):
        msg = f"{where}: expected {kind}: [low, high] with two {kind} values, received {bounds!r}"
        raise ConfigError(msg)
    low, high = bounds
    if not all(math.isfinite(b) for b in bounds):
        msg = f"{where}: expected finite bounds, received {bounds!r}; give numbers such as {kind}: [1, 100]"
        raise ConfigError(msg)
    if low > high:
        msg = f"{where}: low {low} is above high {high}"
        raise ConfigError(msg)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        msg = f"{where}.log: expected true or false, received {log!r}"
        raise ConfigError(msg)
    if log and low <= 0:
        msg = f"{where}: a log range needs low > 0, received {low}"
        raise ConfigError(msg)
    step = spec.get("step")
    if step is not None:
        if not isinstance(step, number) or isinstance(step, bool) or not 0 < step < math.inf:
            msg = f"{where}.step: expected a positive {kind}, received {step!r}"
            raise ConfigError(msg)
        if log and not (kind == "int" and step == 1):
            msg = f"{where}: log and step cannot be combined (Optuna samples a log range continuously)"
            raise ConfigError(msg)
    return Dimension(key, kind, low=low, high=high, log=log, step=step)


def load_space(source: str | os.PathLike | Mapping) -> SearchSpace:
    """Read and check a search space from a YAML file or a mapping.

    Examples
    --------
    >>> load_space({"training.optimizer.learning_rate": {"float": [1e-4, 1e-2], "log": True}}).keys
    ['training.optimizer.learning_rate']
    """
    if isinstance(source, Mapping):
        return SearchSpace.from_mapping(source)

    path = Path(source)
    if not path.is_file():
        msg = f"--space {source}: no such file"
        raise ConfigError(msg)
    return SearchSpace.from_mapping(safe_load_yaml(path), source=str(path))
