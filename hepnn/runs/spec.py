"""The run specification: one frozen object saying what a run is.

Task, class names, the model inputs (kind, shape, feature names, pad value), layout,
label and weight definitions and the preprocessing file are computed **once**, from the
config and the data, when a run starts (:meth:`RunSpec.from_config`), written to
``RUN_DIR/spec.json`` and read back by everything downstream (:func:`load_spec`).
Runs written before ``spec.json`` existed load too: their spec is rebuilt from
``config.yaml``, ``preprocessing.json`` and the class names in ``provenance.json``.

Examples
--------
>>> from hepnn.config import load_config
>>> cfg = load_config({"data": {"inputs": {"jet": {"kind": "flat", "variables": ["jet_pt", "jet_mass"]}},
...                             "files": [{"path": "qcd.root", "label": 0}, {"path": "top.root", "label": 1}]}})
>>> spec = RunSpec.from_config(cfg)
>>> spec.task, spec.classes, spec.names, spec.mask_value
('binary', ('qcd', 'top'), ('jet',), 0.0)
>>> RunSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._fileio import atomic_write_text
from ..config import Config, load_config
from ..exceptions import ConfigError, HepnnError, UnknownNameError, suggest
from ..io.labels import class_names

__all__ = ["RunSpec", "InputSpec", "load_spec", "model_inputs", "infer_task", "class_index", "check_evaluation_classes",
           "SPEC_FILE"]

#: file name of the specification inside a run directory
SPEC_FILE = "spec.json"
#: version of the spec.json format
FORMAT = 1


def model_inputs(config: Config) -> list[str]:
    """Names of the data inputs that feed the model (``model.inputs``, default: all)."""
    names = list(config.model.inputs) if config.model.inputs is not None else list(config.data.inputs)
    if not names:
        msg = "data.inputs: no inputs defined; add e.g. {jet: {kind: flat, variables: [jet_pt, jet_mass]}}"
        raise ConfigError(msg)
    return names


def infer_task(config: Config, n_classes: int) -> str:
    """``autoencoder`` for autoencoders, ``binary`` for two classes, else ``multiclass``."""
    if config.model.name == "autoencoder":
        return "autoencoder"
    return "binary" if n_classes <= 2 else "multiclass"


def class_index(classes: Any, name: str | None, key: str, default: int) -> int:
    """Index of class ``name`` (the value of config key ``key``) in ``classes``; ``default`` when unset.

    Examples
    --------
    >>> class_index(["qcd", "top"], "top", "evaluation.signal", 1), class_index(["qcd", "top"], None, "x", 1)
    (1, 1)
    >>> class_index(["qcd", "top"], "tpo", "evaluation.signal", 1)
    Traceback (most recent call last):
    ...
    hepnn.exceptions.ConfigError: evaluation.signal: unknown class 'tpo'; did you mean 'top'?; the classes are qcd, top
    """
    if not name:
        return default
    classes = list(classes)
    if name not in classes:
        msg = f"{key}: unknown class {name!r}{suggest(str(name), classes)}; the classes are {', '.join(classes)}"
        raise ConfigError(msg)
    return classes.index(name)


def check_evaluation_classes(config: Config, classes: Any) -> None:
    """``evaluation.signal`` and ``evaluation.background`` name classes of the run (checked before training)."""
    class_index(classes, config.evaluation.signal, "evaluation.signal", 0)
    class_index(classes, config.evaluation.background, "evaluation.background", 0)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its kind (``flat``, ``sequence``, ``image``), shape without the jet axis,
    feature (or channel) names and, for sequences, the value of padded slots."""

    name: str
    kind: str
    shape: tuple[int, ...] | None = None
    feature_names: tuple[str, ...] = ()
    pad_value: float | None = None


@dataclass(frozen=True)
class RunSpec:
    """What a run is; see the module docstring. Build with :meth:`from_config`, read with :func:`load_spec`."""

    task: str
    classes: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    layout: str = "per_jet"
    label: Mapping[str, Any] | None = None
    weight: str | None = None
    preprocessing: str | None = None
    mask_value: float = field(init=False)

    def __post_init__(self):
        values = sorted({i.pad_value for i in self.inputs if i.kind == "sequence" and i.pad_value is not None})
        if len(values) > 1:
            msg = f"data.inputs: sequence inputs of one model must share pad_value, received {values}"
            raise ConfigError(msg)
        object.__setattr__(self, "mask_value", float(values[0]) if values else 0.0)

    # --- derived ------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The model's input names, in order."""
        return tuple(i.name for i in self.inputs)

    @property
    def n_outputs(self) -> int:
        return 1 if self.task in ("binary", "autoencoder") else len(self.classes)

    @property
    def feature_names(self) -> dict[str, list[str]]:
        return {i.name: list(i.feature_names) for i in self.inputs}

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec

        raise UnknownNameError(name, "model input", list(self.names))

    # --- construction -------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Config, data: Mapping | None = None, *, classes=None,
                    input_shapes: Mapping[str, tuple] | None = None, preprocessing: str | None = None) -> RunSpec:
        """The spec of a run of ``config``, with class names and shapes taken from ``data`` where given.

        Class names: ``classes`` if given, else those the data carry (``JetData.class_names``),
        else :func:`hepnn.io.labels.class_names` of the data config (extended to the
        labels present in ``data``).
        """
        names = model_inputs(config)
        if classes is None:
            classes = getattr(data, "class_names", None) or None
        if not classes:
            labels = np.asarray(data["label"]) if data is not None and "label" in data else None
            classes = class_names(config.data, labels=labels)
        shapes = dict(input_shapes or {})
        known = getattr(data, "feature_names", None) or {}
        inputs = []
        for name in names:
            if name not in config.data.inputs:
                msg = (f"model.inputs: {name!r} is not a data input; "
                       f"the data inputs are {', '.join(config.data.inputs) or '(none)'}")
                raise ConfigError(msg)
            cfg = config.data.inputs[name]
            kind = getattr(cfg, "kind", "flat")
            shape = shapes.get(name)
            if shape is None and data is not None and name in data and np.ndim(data[name]) > 1:
                shape = np.shape(data[name])[1:]
            features = known.get(name) or (cfg.channels if kind == "image" else cfg.variables)
            inputs.append(InputSpec(
                name=name, kind=kind, shape=None if shape is None else tuple(int(d) for d in shape),
                feature_names=tuple(str(getattr(f, "name", f)) for f in features),
                pad_value=float(cfg.pad_value) if kind == "sequence" else None,
            ))
        label = config.data.label
        return cls(
            task=infer_task(config, len(classes)), classes=tuple(str(c) for c in classes), inputs=tuple(inputs),
            layout=config.data.layout,
            label=_plain(asdict(label)) if label is not None else {
                "file_groups": [{"path": g.path, "label": g.label} for g in config.data.files if g.label is not None]},
            weight=config.data.weight, preprocessing=preprocessing,
        )

    # --- files --------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "task": self.task, "classes": list(self.classes),
            "inputs": [{**asdict(i), "shape": None if i.shape is None else list(i.shape),
                        "feature_names": list(i.feature_names)} for i in self.inputs],
            "mask_value": self.mask_value, "layout": self.layout, "label": _plain(self.label),
            "weight": self.weight, "preprocessing": self.preprocessing,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "spec") -> RunSpec:
        try:
            inputs = tuple(InputSpec(name=i["name"], kind=i["kind"],
                                     shape=None if i.get("shape") is None else tuple(i["shape"]),
                                     feature_names=tuple(i.get("feature_names", ())), pad_value=i.get("pad_value"))
                           for i in d["inputs"])
            return cls(task=d["task"], classes=tuple(d["classes"]), inputs=inputs, layout=d.get("layout", "per_jet"),
                       label=d.get("label"), weight=d.get("weight"), preprocessing=d.get("preprocessing"))
        except (KeyError, TypeError) as err:
            msg = (f"{where}: not a hepnn run specification (missing or malformed {err}); delete it to rebuild it "
                   "from config.yaml, or retrain the run")
            raise HepnnError(msg) from None

    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write ``RUN_DIR/spec.json`` atomically."""
        return atomic_write_text(Path(run_dir) / SPEC_FILE, json.dumps(self.to_dict(), indent=2) + "\n")


def load_spec(run_dir: str | os.PathLike, config: Config | None = None) -> RunSpec:
    """The spec of a run: ``RUN_DIR/spec.json``, or for runs written before it, rebuilt from
    ``config.yaml`` (or ``config``), ``preprocessing.json`` and the classes in ``provenance.json``."""
    path = Path(run_dir)
    if (path / SPEC_FILE).is_file():
        try:
            saved = json.loads((path / SPEC_FILE).read_text())
        except ValueError as err:
            msg = f"{path / SPEC_FILE}: unreadable ({err}); delete it to rebuild it from {path / 'config.yaml'}"
            raise HepnnError(msg) from None
        return RunSpec.from_dict(saved, where=str(path / SPEC_FILE))
    if config is None:
        if not (path / "config.yaml").is_file():
            msg = (f"{path}: neither {SPEC_FILE} nor config.yaml found, so this is not a run directory; "
                   f"train one with `hepnn train CONFIG --out {path}`")
            raise HepnnError(msg)
        config = load_config(path / "config.yaml")
    classes = None
    if (path / "provenance.json").is_file():
        try:
            classes = json.loads((path / "provenance.json").read_text()).get("classes")
        except ValueError:
            classes = None
    prep = "preprocessing.json" if (path / "preprocessing.json").is_file() else None
    return RunSpec.from_config(config, classes=classes, preprocessing=prep)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
