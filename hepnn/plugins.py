"""Find analyses: by path (a folder with ``config.yaml``) or by name (entry points).

Installed packages declare analyses in the ``hepnn.analyses`` entry-point group::

    [options.entry_points]
    hepnn.analyses =
        my_tagging = my_package.analysis:MyTagging

The object an entry point names is an :class:`~hepnn.analysis.Analysis` subclass
(its ``config.yaml`` sits beside the module) or a module/package folder holding
``config.yaml``. A module's analysis is the one ``Analysis`` subclass it defines or, for a
package, imports from its own submodules (``from .analysis import MyTagging`` in
``__init__.py``); none: the base class; more than one: a :class:`PluginError` (name the class
in the entry point). A name that two installed packages declare differently is a
:class:`PluginError` naming both. A bare name that is a folder without ``config.yaml`` in the
working directory (a data folder, say) does not hide the installed analysis of that name.
Setting ``HEPNN_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry points off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Iterable

from .analysis import Analysis
from .exceptions import ConfigError, HepnnError, PluginError, UnknownNameError

__all__ = ["ENTRY_POINT_GROUP", "find_analyses", "load_analysis", "load_analysis_class", "portable_target", "PluginError"]

ENTRY_POINT_GROUP = "hepnn.analyses"
DISABLE_VARIABLE = "HEPNN_DISABLE_PLUGIN_AUTOLOAD"


def autoload_enabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in ("1", "true", "yes", "on")


def _entry_points() -> dict:
    """Entry-point name -> entry point; a name two installed packages declare differently maps to all of them."""
    if not autoload_enabled():
        return {}
    found: dict = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        same = found.setdefault(ep.name, [])
        if all(other.value != ep.value for other in same):
            same.append(ep)
    return {name: eps[0] if len(eps) == 1 else tuple(eps) for name, eps in found.items()}


def _package(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"package {dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"


def _ambiguous(name: str, eps: tuple) -> PluginError:
    shown = "; ".join(f"{ep.value} ({_package(ep)})" for ep in eps)
    msg = (f"analysis plugin {name!r}: {len(eps)} installed packages declare it in the {ENTRY_POINT_GROUP} "
           f"entry-point group ({shown}); uninstall all but one of them, or run the analysis by its folder path")
    return PluginError(msg)


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
        if isinstance(ep, tuple):
            found[name] = "ambiguous: " + "; ".join(f"entry point {e.value} ({_package(e)})" for e in ep)
            continue
        dist = getattr(ep, "dist", None)
        package = f"{dist.name} {dist.version}" if dist is not None else ep.value
        found[name] = f"entry point {ep.value} ({package})"
    return found


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    # an identifier: a dot in the folder name (``ana.v2``) would make pickle look for a parent package
    folder = re.sub(r"\W", "_", path.parent.name)
    module_name = f"hepnn_analysis_{folder}_{digest}"
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


def _subclasses_in(module: ModuleType, package: bool = False) -> list[type[Analysis]]:
    """The Analysis subclasses ``module`` defines (with ``package``: or imports from its own submodules), each once."""
    inside = module.__name__ + "."
    classes: list[type[Analysis]] = []
    for obj in vars(module).values():
        if not (inspect.isclass(obj) and issubclass(obj, Analysis) and obj is not Analysis) or obj in classes:
            continue
        if obj.__module__ == module.__name__ or (package and obj.__module__.startswith(inside)):
            classes.append(obj)
    return classes


def _analysis_class_in(module: ModuleType, where: str) -> type[Analysis]:
    classes = _subclasses_in(module)
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        msg = f"analysis plugin {where}: expected exactly one hepnn.Analysis subclass, found {names}"
        raise PluginError(msg)
    return classes[0]


def _module_analysis(module: ModuleType, name: str, package: str, value: str) -> type[Analysis]:
    """The class of an entry point naming a module: its one Analysis subclass (defined there or, for a package,
    imported from its submodules), else the base class; more than one is ambiguous."""
    classes = _subclasses_in(module, package=hasattr(module, "__path__"))
    if len(classes) > 1:
        names = ", ".join(f"{c.__module__}:{c.__qualname__}" for c in classes)
        msg = (f"analysis plugin {name!r} ({package}): module {module.__name__} holds {len(classes)} hepnn.Analysis "
               f"subclasses ({names}) and the entry point {value} does not say which; point it at one class, "
               f"e.g. `{name} = {names.split(', ')[0]}`")
        raise PluginError(msg)
    return classes[0] if classes else Analysis


def _installed_name(target: str | os.PathLike) -> bool:
    """``target`` is a bare name (no folder part) an installed analysis declares: a folder of that name
    without ``config.yaml`` in the working directory (a data folder, say) does not hide it."""
    text = str(target)
    return Path(text).name == text and text in _entry_points()


def load_analysis_class(target: str | os.PathLike) -> tuple[type[Analysis], Path | None]:
    """Return the Analysis class and folder for a path or an installed analysis name."""
    path = Path(target)
    if path.is_dir() and not (path / "config.yaml").is_file() and not _installed_name(target):
        msg = f"{path}: not an analysis folder (no config.yaml)"
        raise ConfigError(msg)
    if path.is_dir() and (path / "config.yaml").is_file():
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
        # the folders `hepnn list` shows (analyses/<name>) as they are run: by their path
        valid = [*eps, *(str(Path(f)) for n, f in find_analyses([Path("analyses")]).items() if n not in eps)]
        if not autoload_enabled():
            msg = f"{name}: no such analysis folder, and entry points are disabled by {DISABLE_VARIABLE}"
            raise ConfigError(msg)
        raise UnknownNameError(name, "analysis (folder or installed plugin)", valid)
    ep = eps[name]
    if isinstance(ep, tuple):
        raise _ambiguous(name, ep)
    package = _package(ep)
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
        return _module_analysis(obj, name, package, ep.value), folder
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
    analysis.target = portable_target(target)
    return analysis


def portable_target(target: str | os.PathLike) -> str:
    """``target`` as another process or a later command finds the same analysis: an analysis path made
    absolute, else the installed name as given.

    Examples
    --------
    >>> portable_target("surely_not_installed_or_a_folder")
    'surely_not_installed_or_a_folder'
    """
    path = Path(target)
    if path.exists() and not (path.is_dir() and not (path / "config.yaml").is_file() and _installed_name(target)):
        return str(path.resolve())
    return str(target)
