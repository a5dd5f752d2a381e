"""Find analyses: by path (a folder with ``config.yaml``) or by name (entry points).

Installed packages declare analyses in the ``hepnn.analyses`` entry-point group::

    [options.entry_points]
    hepnn.analyses =
        my_tagging = my_package.analysis:MyTagging

The object an entry point names is an :class:`~hepnn.analysis.Analysis` subclass
(its ``config.yaml`` sits beside the module) or a module/package folder holding
``config.yaml``. Setting ``HEPNN_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry points off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Iterable

from .analysis import Analysis
from .exceptions import ConfigError, HepnnError, PluginError, UnknownNameError

__all__ = ["ENTRY_POINT_GROUP", "find_analyses", "load_analysis", "load_analysis_class", "PluginError"]

ENTRY_POINT_GROUP = "hepnn.analyses"
DISABLE_VARIABLE = "HEPNN_DISABLE_PLUGIN_AUTOLOAD"


def autoload_enabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in ("1", "true", "yes", "on")


def _entry_points() -> dict:
    if not autoload_enabled():
        return {}
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def find_analyses(search: Iterable[str | os.PathLike] = ()) -> dict[str, str]:
    """Names of available analyses -> where they come from.

    Looks at entry points (unless disabled) and at sub-folders with ``config.yaml``
    of the folders in ``search`` (e.g. ``analyses/``).
    """
    found: dict[str, str] = {}
    for folder in search:
        folder = Path(folder)
        if folder.is_dir():
            for sub in sorted(folder.iterdir()):
                if (sub / "config.yaml").is_file():
                    found[sub.name] = str(sub)
    for name, ep in _entry_points().items():
        dist = getattr(ep, "dist", None)
        package = f"{dist.name} {dist.version}" if dist is not None else ep.value
        found[name] = f"entry point {ep.value} ({package})"
    return found


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"hepnn_analysis_{path.parent.name}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        msg = f"analysis plugin {path}: cannot be imported"
        raise PluginError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        msg = f"analysis plugin {path} failed to import: {type(err).__name__}: {err}"
        raise PluginError(msg) from err
    return module


def _analysis_class_in(module: ModuleType, where: str) -> type[Analysis]:
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Analysis) and obj is not Analysis
        and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        msg = f"analysis plugin {where}: expected exactly one hepnn.Analysis subclass, found {names}"
        raise PluginError(msg)
    return classes[0]


def load_analysis_class(target: str | os.PathLike) -> tuple[type[Analysis], Path | None]:
    """Return the Analysis class and folder for a path or an installed analysis name."""
    path = Path(target)
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            msg = f"{path}: not an analysis folder (no config.yaml)"
            raise ConfigError(msg)
        script = path / "analysis.py"
        if script.is_file():
            return _analysis_class_in(_import_file(script), str(script)), path.resolve()
        return Analysis, path.resolve()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        script = path.parent / "analysis.py"
        if script.is_file():
            return _analysis_class_in(_import_file(script), str(script)), path.resolve().parent
        return Analysis, path.resolve().parent
    name = str(target)
    eps = _entry_points()
    if name not in eps:
        valid = list(eps)
        if not autoload_enabled():
            msg = f"{name}: no such analysis folder, and entry points are disabled by {DISABLE_VARIABLE}"
            raise ConfigError(msg)
        raise UnknownNameError(name, "analysis (folder or installed plugin)", valid)
    ep = eps[name]
    dist = getattr(ep, "dist", None)
    package = f"package {dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"
    try:
        obj = ep.load()
    except Exception as err:
        msg = f"analysis plugin {name!r} ({package}, {ep.value}) failed to load: {type(err).__name__}: {err}"
        raise PluginError(msg) from err
    if inspect.isclass(obj) and issubclass(obj, Analysis):
        return obj, obj.default_directory()
    if isinstance(obj, ModuleType):
        folder = Path(obj.__file__).resolve().parent if getattr(obj, "__file__", None) else None
        if folder is None or not (folder / "config.yaml").is_file():
            msg = f"analysis plugin {name!r} ({package}): module {obj.__name__} has no config.yaml beside it"
            raise PluginError(msg)
        try:
            return _analysis_class_in(obj, f"{name!r} ({package})"), folder
        except PluginError:
            return Analysis, folder
    msg = f"analysis plugin {name!r} ({package}): {ep.value} is {obj!r}, not a hepnn.Analysis subclass or module"
    raise PluginError(msg)


def load_analysis(target: str | os.PathLike, overrides: Iterable[str] = ()) -> Analysis:
    """Instantiate the analysis at a path or with an installed name.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "demo"
    >>> folder.mkdir()
    >>> _ = (folder / "config.yaml").write_text("training: {epochs: 2}\\n")
    >>> load_analysis(folder).config.training.epochs
    2
    """
    cls, folder = load_analysis_class(target)
    path = Path(target)
    config = path if path.suffix in (".yaml", ".yml") and path.is_file() else None
    try:
        analysis = cls(config=config, directory=folder, overrides=overrides)
    except HepnnError:
        raise
    except Exception as err:
        msg = f"analysis {target}: {cls.__name__}() failed: {type(err).__name__}: {err}"
        raise PluginError(msg) from err
    # how a run trained with it finds it again (Analysis.record): a path made absolute, else the installed name
    analysis.target = str(path.resolve()) if path.exists() else str(target)
    return analysis
