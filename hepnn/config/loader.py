"""A strict loader from YAML / mappings into frozen dataclasses.

Every error names the full path of the offending key and says what was expected::

    data.inputs.tracks.max_length: expected a positive int, received 'ten'

Supported field types: ``int``, ``float``, ``str``, ``bool``, ``Literal[...]``,
``Optional[X]``, ``tuple[X, ...]`` (YAML lists), ``dict[str, X]``, nested
dataclasses and unions of dataclasses told apart by a ``kind`` field. A union
written ``Annotated[Union[...], registry]`` is dispatched through ``registry`` (kind
name -> dataclass): a dataclass registered there later is accepted too (input kinds).
Field metadata may carry ``check`` (a callable returning an error text or
``None``) and ``doc`` (a one-line description used by ``hepnn config show``).
A dataclass may name a field in ``__extra_field__`` that collects unknown keys
(the model section passes builder options through it).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union, get_args, get_origin, get_type_hints

import yaml

from ..exceptions import ConfigError, suggest

__all__ = ["from_dict", "to_dict", "safe_load_yaml", "dump_yaml", "set_path", "parse_override", "short_repr"]


# --- YAML ---------------------------------------------------------------------------


#: Most nodes a document may expand to once its aliases are followed (a config has hundreds):
#: a few bytes of nested aliases ("billion laughs") would otherwise expand to billions.
MAX_EXPANDED_NODES = 100_000

#: Longest value echoed in an error message (longer ones are cut, with their length).
MAX_ECHO = 200


def short_repr(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` cut to about ``limit`` characters, so that an error message stays one line.

    Examples
    --------
    >>> short_repr("x" * 1000).endswith("xxx... (1002 characters)")
    True
    >>> short_repr(float("nan"))
    '.nan'
    """
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, (list, tuple, dict)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class _YAMLProblem(Exception):
    """A document that parses but that hepnn refuses (duplicate key, alias bomb); ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``), refuses duplicate
    keys in a mapping and documents whose aliases expand to more than :data:`MAX_EXPANDED_NODES`."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *base' keys may be overridden: that is what merging is for
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                    seen.setdefault(key, line)
                except TypeError:
                    continue  # an unhashable key: SafeConstructor says so itself
                if first is not None:
                    msg = (f"duplicate key {short_repr(key)} (first at line {first}); "
                           "a mapping takes each key once: remove or rename one of them")
                    raise _YAMLProblem(msg, line)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def safe_load_yaml(source: str | Path, *, text: str | None = None) -> Any:
    """Read YAML safely (no object construction), naming the file on syntax errors."""
    if text is None:
        path = Path(source)
        try:
            text = path.read_text()
        except FileNotFoundError:
            missing = next((p for p in reversed(path.parents) if str(p) not in ("", ".") and not p.exists()), None)
            hint = f" (the folder {missing} does not exist)" if missing is not None else ""
            msg = f"{path}: config file not found{hint}"
            raise ConfigError(msg) from None
        except IsADirectoryError:
            msg = f"{path}: a folder, not a config file; give its config file (a .yaml), e.g. {path / 'config.yaml'}"
            raise ConfigError(msg) from None
        except NotADirectoryError:
            parent = next((p for p in reversed(path.parents) if p.is_file()), path.parent)
            msg = f"{path}: config file not found ({parent} is a file, not a folder: a run directory was expected?)"
            raise ConfigError(msg) from None
        except UnicodeDecodeError:
            msg = f"{path}: not a text file; a config is a YAML file"
            raise ConfigError(msg) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except _YAMLProblem as err:
        where = f"{source}: line {err.line}" if err.line else f"{source}"
        msg = f"{where}: {err}"
        raise ConfigError(msg) from None
    except yaml.YAMLError as err:
        text = str(err)
        if len(text) > 4 * MAX_ECHO:
            text = f"{text[:4 * MAX_ECHO]}... ({len(text)} characters)"
        msg = f"{source}: not valid YAML: {text}"
        raise ConfigError(msg) from None


def _check_expansion(root: Any) -> None:
    """Refuse recursive aliases and documents that expand to more than MAX_EXPANDED_NODES nodes.

    Counts each node once per place it appears (what a reader walking the data sees), with
    the count of every aliased node memoised: linear in the size of the text.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = node.value
            size = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = size
            if size > MAX_EXPANDED_NODES:
                line = node.start_mark.line + 1
                msg = (f"the document expands to more than {MAX_EXPANDED_NODES} values through nested "
                       "aliases (&anchor / *alias); a config needs far fewer: write the values out "
                       "or use fewer levels of aliases")
                raise _YAMLProblem(msg, line)
            continue
        if key in sizes:
            continue
        if key in active:
            line = node.start_mark.line + 1
            raise _YAMLProblem("recursive alias: a node contains itself; hepnn configs must be trees", line)
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        active.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            stack.extend((n, False) for pair in node.value for n in pair)
        else:
            stack.extend((n, False) for n in node.value)


def dump_yaml(data: Any) -> str:
    """Dump plain data to YAML with keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


# --- dataclass conversion -----------------------------------------------------------


def _describe(tp: Any) -> str:
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if tp is int:
        return "an int"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        return "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _fail(path: str, expected: str, value: Any) -> typing.NoReturn:
    msg = f"{path}: expected {expected}, received {short_repr(value)}"
    raise ConfigError(msg)


def _not_finite(path: str, value: float) -> typing.NoReturn:
    msg = f"{path}: {short_repr(value)} is not a finite number; give a finite value"
    raise ConfigError(msg)


def _check_finite(value: Any, path: str) -> None:
    """Free-form values (``Any``: builder and explainer options, overlays) hold no NaN or infinity."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            _not_finite(where, item)
        elif isinstance(item, Mapping):
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))


def _kind_registry(tp: Any) -> Any:
    """The registry of ``Annotated[Union[...], registry]`` (``None`` for other types)."""
    if get_origin(tp) is not Annotated:
        return None
    return next((m for m in tp.__metadata__ if callable(getattr(m, "items", None)) and callable(getattr(m, "get", None))), None)


def _convert(tp: Any, value: Any, path: str) -> Any:
    registry = _kind_registry(tp)
    if registry is not None:
        if value is None or not isinstance(value, Mapping):
            _fail(path, "a mapping", value)
        return _convert_tagged(dict(registry.items()), value, path)
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if tp is Any:
        _check_finite(value, path)
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            _fail(path, _describe(tp), value)
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, path)
        dcs = [a for a in options if dataclasses.is_dataclass(a)]
        if dcs and isinstance(value, Mapping) and len(dcs) == len(options):
            return _convert_tagged({k: cls for cls in dcs for k in get_args(get_type_hints(cls)["kind"])}, value, path)
        errors = []
        for option in options:
            try:
                return _convert(option, value, path)
            except ConfigError as err:
                errors.append(err)
        _fail(path, _describe(tp), value)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed):
            msg = f"{path}: expected one of {', '.join(repr(a) for a in allowed)}, received {short_repr(value)}"
            msg += suggest(str(value), [str(a) for a in allowed])
            raise ConfigError(msg)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            _fail(path, "an int", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, "a number", value)
        value = float(value)
        if not math.isfinite(value):
            _not_finite(path, value)
        return value
    if tp is str:
        if not isinstance(value, str):
            _fail(path, "a string", value)
        return value
    if origin in (tuple, list):
        args = get_args(tp)
        if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
            _fail(path, "a list", value)
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping):
        key_t, val_t = get_args(tp) or (Any, Any)
        if not isinstance(value, Mapping):
            _fail(path, "a mapping", value)
        out = {}
        for k, v in value.items():
            try:
                out[_convert(key_t, k, f"{path}") if key_t is not Any else k] = _convert(val_t, v, f"{path}.{k}")
            except ConfigError as err:
                # an entry without its 'kind' is often a misspelt name (`--set data.inputs.partcles.x=1`)
                others = [str(o) for o in value if o != k]
                hint = suggest(str(k), others) if "missing key 'kind'" in str(err) else ""
                if not hint:
                    raise
                msg = f"{err}; a new entry {k!r}, or a misspelt name{hint}"
                raise ConfigError(msg) from None
        return out
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    msg = f"hepnn internal: unsupported config type {tp!r} at {path}"
    raise TypeError(msg)


def _convert_tagged(kinds: Mapping[str, type], value: Mapping, path: str) -> Any:
    """A union of dataclasses is told apart by a ``kind`` field (``kinds``: kind -> dataclass)."""
    kind = value.get("kind")
    if kind is None:
        msg = f"{path}: missing key 'kind' (one of {', '.join(map(repr, kinds))})"
        raise ConfigError(msg)
    if kind not in kinds:
        msg = f"{path}.kind: expected one of {', '.join(map(repr, kinds))}, received {short_repr(kind)}"
        msg += suggest(str(kind), list(kinds))
        raise ConfigError(msg)
    return from_dict(kinds[kind], value, path)


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, strictly.

    Parameters
    ----------
    cls : dataclass type
    data : mapping (``None`` means all defaults)
    path : str
        Dotted path of ``data`` in the whole config, used in error messages.

    Examples
    --------
    >>> from hepnn.config import TrainingConfig
    >>> from_dict(TrainingConfig, {"epochs": 3}, "training").epochs
    3
    """
    if data is None:
        data = {}
    shorthand = getattr(cls, "__shorthand__", None)
    if shorthand is not None and not isinstance(data, Mapping):
        data = shorthand(data, path)
    if not isinstance(data, Mapping):
        _fail(path or "config", "a mapping", data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls, include_extras=True)
    extra_field = getattr(cls, "__extra_field__", None)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    prefix = f"{path}." if path else ""
    for key, value in data.items():
        if not isinstance(key, str) or key not in fields or key == extra_field:
            if extra_field is not None and isinstance(key, str):
                _check_finite(value, f"{prefix}{key}")
                extra[key] = value
                continue
            valid = [k for k in fields if k != extra_field]
            msg = f"{prefix}{key}: unknown key {short_repr(key)}{suggest(str(key), valid)}"
            msg += f" (valid keys: {', '.join(valid)})"
            raise ConfigError(msg)
        field = fields[key]
        check = field.metadata.get("check")
        try:
            converted = _convert(hints[key], value, f"{prefix}{key}")
        except ConfigError as err:
            describe = getattr(check, "describe", None)
            if describe is None or not str(err).startswith(f"{prefix}{key}: expected"):
                raise
            msg = f"{prefix}{key}: expected {describe(hints[key])}, received {short_repr(value)}"
            raise ConfigError(msg) from None
        if check is not None and converted is not None:
            problem = check(converted)
            if problem:
                msg = f"{prefix}{key}: expected {problem}, received {short_repr(value)}"
                raise ConfigError(msg)
        kwargs[key] = converted
    if extra_field is not None:
        kwargs[extra_field] = extra
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        msg = f"{prefix}{missing[0]}: required key is missing"
        raise ConfigError(msg)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        for subpath, problem in validate() or ():
            where = f"{prefix}{subpath}" if subpath else path
            msg = f"{where}: {problem}" if where else problem
            raise ConfigError(msg)
    return obj


def to_dict(obj: Any) -> Any:
    """Turn a config object back into plain data (lists, dicts, scalars) for YAML."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        extra_field = getattr(obj, "__extra_field__", None)
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            value = getattr(obj, f.name)
            if f.name == extra_field:
                out.update({k: to_dict(v) for k, v in value.items()})
            else:
                out[f.name] = to_dict(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# --- command-line overrides ---------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"training.epochs=3"`` into ``("training.epochs", 3)``; the value is YAML."""
    if "=" not in text:
        msg = f"--set {text!r}: expected a dotted key, '=' and a value, e.g. --set training.epochs=3"
        raise ConfigError(msg)
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key:
        msg = f"--set {text!r}: empty key"
        raise ConfigError(msg)
    return key, safe_load_yaml(f"--set {key}", text=raw) if raw.strip() else ""


def _join_dotted_keys(node: Any, parts: list[str]) -> list[str]:
    """``parts`` with runs joined where they name an existing key that holds dots (``top.root``)."""
    out, i = [], 0
    while i < len(parts):
        if isinstance(node, dict) and parts[i] not in node:
            for j in range(len(parts), i + 1, -1):
                if ".".join(parts[i:j]) in node:
                    out.append(".".join(parts[i:j]))
                    node, i = node[out[-1]], j
                    break
            else:
                out.append(parts[i])
                node, i = None, i + 1
            continue
        out.append(parts[i])
        node = node.get(parts[i]) if isinstance(node, dict) else None
        i += 1
    return out


def set_path(data: dict, dotted: str, value: Any) -> dict:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``, creating mappings; an existing key
    with dots in it is found too (``generate.samples.top.root.n_jets``).

    Examples
    --------
    >>> set_path({"samples": {"top.root": {"n_jets": 10}}}, "samples.top.root.n_jets", 5)
    {'samples': {'top.root': {'n_jets': 5}}}
    """
    node = data
    parts = _join_dotted_keys(data, dotted.split("."))
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            msg = f"--set {dotted}: {where} is {short_repr(child)}, not a mapping"
            raise ConfigError(msg)
        node = child
    node[parts[-1]] = value
    return data
