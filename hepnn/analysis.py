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

from .config import load_config
from .exceptions import ConfigError

__all__ = ["Analysis", "DATA_HOOKS"]

#: hooks that decide which jets a run sees and their labels: a run trained with them records them
#: (``provenance.json`` ``analysis``), and its test split is only read again with the analysis
DATA_HOOKS = ("select", "labels")


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

    def select(self, jets: Mapping[str, Any]) -> Any:
        """Return a boolean mask of jets to keep (``None``: keep all), after config cuts.

        ``jets`` holds the jet-level branches the config reads (inputs, cuts, label, weight,
        ``data.spectators``): list a branch only this hook needs in ``data.spectators``.
        """
        return None

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
        hooks = [h for h in DATA_HOOKS if getattr(type(self), h, None) is not getattr(Analysis, h)]
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "target": target, "data_hooks": hooks}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} at {self.directory}>"
