"""The base class of analyses: a config plus hooks that override hepnn's defaults.

An analysis is a folder with ``config.yaml`` and, optionally, ``analysis.py``
holding one :class:`Analysis` subclass. Installed packages expose analyses
through the ``hepnn.analyses`` entry-point group (see :mod:`hepnn.plugins`).

Examples
--------
>>> import numpy as np
>>> from hepnn import Analysis
>>> class HighPt(Analysis):
...     def select(self, jets):
...         return jets["jet_pt"] > 600
>>> HighPt(config={}).select({"jet_pt": np.array([550.0, 620.0])}).tolist()
[False, True]
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Mapping

from ._plugin_settings import DATA_HOOKS, default_hook, instance_settings, overridden_data_hooks, settings_fingerprint
from .config import load_config
from .exceptions import ConfigError

__all__ = ["Analysis", "DATA_HOOKS", "instance_settings", "overridden_data_hooks"]

class Analysis:
    """An analysis: its configuration and the hooks that customise each step.

    Parameters
    ----------
    config : Config, mapping, path or None
        The configuration; ``None`` reads ``config.yaml`` from :attr:`directory`.
    directory : path, optional
        The analysis folder (default: the folder of the module defining the class).
    overrides : iterable of str
        ``key=value`` overrides applied to the config.
    """

    #: name shown by ``hepnn list`` (default: the folder name)
    name: str | None = None
    #: config file inside the analysis folder
    config_file: str = "config.yaml"

    def __init__(self, config: Any = None, directory: str | os.PathLike | None = None, overrides=()):
        if directory is None:
            directory = self.default_directory()
        self.directory = Path(directory) if directory is not None else None
        if config is None:
            if self.directory is None or not (self.directory / self.config_file).is_file():
                msg = f"analysis {type(self).__name__}: no {self.config_file} in {self.directory}"
                raise ConfigError(msg)
            config = self.directory / self.config_file
        self.config = load_config(config, overrides)
        if self.name is None:
            self.name = self.config.name or (self.directory.name if self.directory else type(self).__name__)

    @classmethod
    def default_directory(cls) -> Path | None:
        """The folder of the module that defines the class (where its config lives)."""
        if cls is Analysis:
            return None
        try:
            return Path(inspect.getfile(cls)).resolve().parent
        except (TypeError, OSError):
            return None

    # --- hooks: override in subclasses -------------------------------------------

    @default_hook
    def select(self, jets: Mapping[str, Any]) -> Any:
        """Return a boolean mask of jets to keep (``None``: keep all), after config cuts.

        ``jets`` holds the jet-level branches the config reads (inputs, cuts, label, weight,
        ``data.spectators``): list a branch only this hook needs in ``data.spectators``.
        """
        return None

    @default_hook
    def labels(self, jets: Mapping[str, Any]) -> Any:
        """Return integer labels per jet (``None``: use the config's label rule)."""
        return None

    def build_model(self, config: Any, input_shapes: Mapping[str, tuple], n_outputs: int) -> Any:
        """Return a ``keras.Model`` (``None``: build ``config.model`` from the registry)."""
        return None

    def plots(self, run_dir: Path, results: Mapping[str, Any]) -> list:
        """Draw extra plots into the report folder ``run_dir`` (``OUT/report`` under ``hepnn run``);
        return the written paths (a path, a list of paths, or None).

        ``results`` maps each variant to ``{"run_dir", "metrics", "test", "train"}``.
        """
        return []

    def record(self) -> dict[str, Any]:
        """What a run trained with this analysis records of it (``provenance.json`` ``analysis``).

        ``target`` is how :func:`hepnn.plugins.load_analysis` finds it again (a folder or an
        installed name); ``data_hooks`` the :data:`DATA_HOOKS` it overrides, without which the
        run's data cannot be read again.

        Examples
        --------
        >>> import numpy as np
        >>> class HighPt(Analysis):
        ...     def select(self, jets):
        ...         return jets["jet_pt"] > 600
        >>> HighPt(config={}, directory="/ana/high_pt").record()["data_hooks"]
        ['select']
        """
        target = getattr(self, "target", None) or (str(self.directory) if self.directory is not None else None)
        hooks = overridden_data_hooks(self)
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "target": target, "data_hooks": hooks}

    def cache_key(self) -> str | None:
        """What the jets this analysis selects and labels depend on besides its code, for the stream
        cache (``make_dataset(cache_dir=...)``, ``training.stream_cache``); ``None``: unknown.

        The stream cache key holds the plugin's class and the source of its module, and this key:
        two instances of one class with different settings (a cut threshold given to ``__init__``)
        get different caches. The default is a fingerprint of the public instance attributes
        (:func:`instance_settings`: ``vars(self)`` without names starting with ``_``, which count
        as internal state), the config and folder included, when all are plain data (numbers,
        text, paths, lists, dicts, numpy values, config objects). When one is not (a model, a
        function, an open file), it returns ``None``, and the cache then serves only this very
        instance in this process (epoch 0 still feeds the later epochs of a run), with a warning
        in the log. Override it to return a text (or JSON data) that changes whenever a setting
        that changes ``select`` or ``labels`` changes, so that a cache is shared across processes;
        settings kept in ``_`` attributes must enter it there.

        Examples
        --------
        >>> class Cut(Analysis):
        ...     def __init__(self, threshold, **kw):
        ...         super().__init__(**kw)
        ...         self.threshold = threshold
        ...     def select(self, jets):
        ...         return jets["jet_pt"] > self.threshold
        >>> Cut(500.0, config={}).cache_key() == Cut(600.0, config={}).cache_key()
        False
        >>> Cut(500.0, config={}).cache_key() == Cut(500.0, config={}).cache_key()
        True
        """
        return settings_fingerprint(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} at {self.directory}>"
