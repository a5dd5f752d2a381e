"""The search space of ``hepnn tune``: which config keys to vary, and over what.

``SPACE.yaml`` maps dotted config paths to one of::

    model.units: {int: [16, 256], log: true}             # an integer range (optional step)
    training.optimizer.learning_rate: {float: [1e-4, 1e-2], log: true}
    model.cell: [lstm, gru]                              # categorical choices
    model.params_list: [[16, 16], [64, 64]]              # choices may be lists or mappings

Ranges are inclusive and every trial draws a value inside them:

- ``int: [low, high]`` draws Python ``int`` values, ``low <= value <= high`` (both ends included);
  the bounds must be integers. ``step: s`` (a positive integer) draws ``low, low + s, ..., high``,
  so ``high - low`` must be a multiple of ``s`` (a range that would never reach ``high`` is refused,
  with the nearest valid ends). ``log: true`` samples uniformly in log space and needs ``low >= 1``;
  it cannot be combined with a step other than 1.
- ``float: [low, high]`` draws Python ``float`` values; ``log: true`` needs ``low > 0`` and no step;
  ``step`` follows the ``int`` rules.
- A list of choices draws one of them, stored in the study exactly as trained. Choices must be
  distinct Python values: ``[1, true]``, ``[0, false]`` and ``[1, 1.0]`` are refused, since Python
  (and so Optuna) takes ``true == 1`` and ``1 == 1.0``, and a trial that trained with ``true`` was
  recorded (in ``trials.csv`` and ``best_config.yaml``) as ``1``. Quote one of them (``"1"``) if
  a string is meant.

Each key is searched once: a key inside another searched key (``training.optimizer`` and
``training.optimizer.learning_rate``) is refused, since one drawn value would overwrite the other
and the study would record a value its trial did not train with. So is a ``--set`` override of a
searched key (or of a key inside one), which every trial would replace.

These rules hold for a :class:`Dimension` built in Python as for a ``SPACE.yaml`` file: an invalid
one is a :class:`~hepnn.exceptions.ConfigError` naming the key and value before any trial runs.

Every key is also checked against the base config before any trial runs, by loading the
config with values the sampler can draw as ``--set`` overrides (both ends of a range, a
non-integral inner value of a ``float`` range, each choice), so a typo fails at once with the
config loader's message and suggestion, and so does a ``float`` range on an integer key.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import load_config
from ..config.loader import parse_override, safe_load_yaml
from ..exceptions import ConfigError, suggest

__all__ = ["Dimension", "SearchSpace", "load_space"]

_RANGE_KEYS = {"int": {"int", "log", "step"}, "float": {"float", "log", "step"}}
_SCALARS = (bool, int, float, str, type(None))
_KINDS = ("int", "float", "categorical")
#: where inside a continuous float range an inner value is checked against the config: the golden
#: section, integral only by accident (unlike the middle or a quarter of a range such as [1, 3])
_INNER = (3 - math.sqrt(5)) / 2


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
        The values of a categorical dimension (scalars, lists or mappings), distinct as Python
        values (``1``, ``True`` and ``1.0`` are equal in Python, so two of them are refused).

    Raises
    ------
    ConfigError
        When the dimension breaks a rule of :mod:`hepnn.tune.space` (checked here, so a space built
        in Python is refused before any trial as a ``SPACE.yaml`` file is): ``int`` bounds and step
        that are not integers, ``low > high``, a log range with ``low < 1`` (int) or ``low <= 0``
        (float), a log range with a step, a step that does not reach ``high``, or choices that
        Python considers equal.

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

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):  # numpy numbers (np.int64(16), np.float32(0.1)) as Python's
            object.__setattr__(self, name, _plain_number(getattr(self, name)))
        _check_dimension(self)

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
        """The values checked against the config, as the sampler draws them: every choice, both ends of
        an ``int`` range, and of a ``float`` range both ends as floats plus a non-integral inner value
        when it has one (an integer config key accepts ``3.0`` but not the ``2.37`` a trial draws).

        Examples
        --------
        >>> Dimension("x", "float", 0, 1, step=0.25).edges()
        [0.0, 1.0, 0.25]
        """
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [self.low, self.high]
        inner = self._inner_float()
        return [float(self.low), float(self.high)] + ([] if inner is None else [inner])

    def _inner_float(self) -> float | None:
        """A non-integral value the sampler can draw strictly inside a float range, or None."""
        low, high = float(self.low), float(self.high)
        if self.step is None:
            return low + (high - low) * _INNER if low < high else None
        for k in range(1, 5):  # the first steps: one of them is non-integral when any value is
            value = round(low + k * self.step, 12)
            if value >= high:
                return None
            if not value.is_integer():
                return value
        return None

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

    def __post_init__(self) -> None:
        _check_keys([d.key for d in self.dimensions])

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
        dimensions = tuple(_parse_dimension(str(k), v, source) for k, v in data.items())
        try:
            return cls(dimensions)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

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
        """Load ``config`` with every edge value of every dimension; raise ConfigError naming the key.

        A ``--set`` override of a searched key (or of a key inside one) is refused too: every trial's
        drawn value replaces it, so it would be silently ignored.
        """
        _register_models()
        overrides = list(overrides)
        self._check_overrides(overrides)
        for dim in self.dimensions:
            for value in dim.edges():
                try:
                    load_config(config, [*overrides, dim.override(value)])
                except ConfigError as err:
                    msg = f"search space key {dim.key!r} (value {value!r}) is not valid for the config: {err}"
                    raise ConfigError(msg) from None

    def _check_overrides(self, overrides: list[str]) -> None:
        for text in overrides:
            key = parse_override(text)[0]
            searched = next((k for k in self.keys if key == k or key.startswith(f"{k}.")), None)
            if searched is not None:
                msg = (f"--set {text}: the search space varies {searched!r}, so every trial replaces this value "
                       f"and it would be ignored; remove the --set, or {searched!r} from the search space")
                raise ConfigError(msg)


def _check_keys(keys: list[str]) -> None:
    """Refuse a key given twice, or a key inside another searched key (``training.optimizer`` and
    ``training.optimizer.learning_rate``): the later override replaces the earlier one's value, so the
    study would record a value the trial did not train with."""
    for i, key in enumerate(keys):
        for other in keys[i + 1:]:
            if key == other:
                msg = f"{key}: searched twice; keep one entry"
                raise ConfigError(msg)
            outer, inner = (key, other) if other.startswith(f"{key}.") else (other, key)
            if inner.startswith(f"{outer}."):
                msg = (f"{inner} is inside {outer}, also searched: the value drawn for one would overwrite the "
                       f"other's, and the study would record a value its trial did not train with; search only one "
                       f"of them (e.g. list whole {outer} values as choices)")
                raise ConfigError(msg)


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
        return _dimension(source, key=key, kind="categorical", choices=tuple(spec))
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
    if not isinstance(bounds, list) or len(bounds) != 2:
        msg = f"{where}: expected {kind}: [low, high] with two {kind} values, received {bounds!r}"
        raise ConfigError(msg)
    return _dimension(source, key=key, kind=kind, low=bounds[0], high=bounds[1], log=spec.get("log", False),
                      step=spec.get("step"))


def _dimension(source: str, **fields: Any) -> Dimension:
    """``Dimension(**fields)``, its error prefixed with the space file."""
    try:
        return Dimension(**fields)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _check_dimension(dim: Dimension) -> None:
    """Raise ConfigError naming the key when ``dim`` breaks a rule of this module's docstring."""
    if dim.kind not in _KINDS:
        msg = f"{dim.key}: unknown kind {dim.kind!r}{suggest(dim.kind, _KINDS)}; valid: {', '.join(_KINDS)}"
        raise ConfigError(msg)
    if dim.kind == "categorical":
        _check_choices(dim.key, list(dim.choices))
        return
    _check_bounds(dim)
    if dim.step is not None:
        _check_step(dim)


def _plain_number(value: Any) -> Any:
    """A numpy integer or float as a Python ``int`` or ``float`` (Optuna stores and compares those);
    anything else (``bool``, ``numpy.bool_``, strings, None) as it is, for the checks to name.

    Examples
    --------
    >>> import numpy as np
    >>> _plain_number(np.int64(16)), _plain_number(np.float32(0.5)), _plain_number(True)
    (16, 0.5, True)
    """
    if type(value) in (bool, int, float) or not isinstance(value, numbers.Real):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _check_bounds(dim: Dimension) -> None:
    key, kind, low, high = dim.key, dim.kind, dim.low, dim.high
    number = int if kind == "int" else (int, float)
    if not all(isinstance(b, number) and not isinstance(b, bool) for b in (low, high)):
        msg = (f"{key}: expected {kind}: [low, high] with two {kind} values, received {[low, high]!r}"
               + ("; write whole numbers such as int: [16, 256], or use float:" if kind == "int" else ""))
        raise ConfigError(msg)
    if not (math.isfinite(low) and math.isfinite(high)):
        msg = f"{key}: expected finite bounds, received {[low, high]!r}; give numbers such as {kind}: [1, 100]"
        raise ConfigError(msg)
    if low > high:
        msg = f"{key}: low {low} is above high {high}"
        raise ConfigError(msg)
    if not isinstance(dim.log, bool):
        msg = f"{key}.log: expected true or false, received {dim.log!r}"
        raise ConfigError(msg)
    if dim.log and kind == "int" and low < 1:
        msg = (f"{key}: an int log range needs low >= 1 (log(0) is undefined), received {low}; "
               f"use int: [1, {high}], or drop log: true")
        raise ConfigError(msg)
    if dim.log and low <= 0:
        msg = f"{key}: a log range needs low > 0, received {low}"
        raise ConfigError(msg)


def _check_step(dim: Dimension) -> None:
    key, kind, step = dim.key, dim.kind, dim.step
    number = int if kind == "int" else (int, float)
    if not isinstance(step, number) or isinstance(step, bool) or not 0 < step < math.inf:
        msg = f"{key}.step: expected a positive {kind}, received {step!r}"
        raise ConfigError(msg)
    if dim.log and not (kind == "int" and step == 1):
        msg = f"{key}: log and step cannot be combined (Optuna samples a log range continuously); drop one of them"
        raise ConfigError(msg)
    low, span, size = Decimal(str(dim.low)), Decimal(str(dim.high)) - Decimal(str(dim.low)), Decimal(str(step))
    if span % size:  # Optuna would cut the range to its last step, with a warning: high never drawn
        last = low + (span // size) * size
        cast = int if kind == "int" else float
        msg = (f"{key}: the range [{dim.low}, {dim.high}] with step {step} ends at {cast(last)} and never draws "
               f"{dim.high}; use high {cast(last)} or {cast(last + size)}, or a step that divides high - low")
        raise ConfigError(msg)


def _check_choices(key: str, choices: list) -> None:
    if not choices:
        msg = f"{key}: empty list of choices; list at least one value"
        raise ConfigError(msg)
    try:
        encoded = [json.dumps(c, sort_keys=True) for c in choices]
    except (TypeError, ValueError) as err:
        msg = f"{key}: choices must be YAML values (numbers, strings, booleans, null, lists, mappings): {err}"
        raise ConfigError(msg) from None
    if len(set(encoded)) != len(encoded):
        msg = f"{key}: duplicate choices in {choices!r}"
        raise ConfigError(msg)
    for i, a in enumerate(choices):
        for j in range(i + 1, len(choices)):
            if a == choices[j]:  # True == 1 == 1.0: one Optuna choice, recorded as the first of them
                msg = (f"{key}: choices {encoded[i]} and {encoded[j]} are equal in Python (true == 1, false == 0, "
                       "1 == 1.0), so Optuna cannot tell them apart and would record a trial trained with one as the "
                       "other; keep one of them, or quote one to make it a string")
                raise ConfigError(msg)


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
