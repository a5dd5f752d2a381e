"""The configuration schema: frozen dataclasses whose defaults are hepnn's defaults.

A config file has the sections ``data``, ``model``, ``training``, ``evaluation``,
``explain``, ``plots`` (and ``generate`` for analyses that make their own samples).
Every key is documented by the ``doc`` metadata of its field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator, Literal, Optional, Union

from ..exceptions import ConfigError, suggest
from ..registry import Registry
from .loader import from_dict, short_repr, to_dict

__all__ = [
    "Config",
    "DataConfig",
    "FileGroup",
    "Cut",
    "LabelConfig",
    "JetAxisConfig",
    "ConstituentsConfig",
    "SortBy",
    "TransformConfig",
    "FlatInput",
    "SequenceInput",
    "ImageInput",
    "INPUT_CONFIGS",
    "SplitConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "EarlyStoppingConfig",
    "ReweightConfig",
    "AugmentConfig",
    "DecorrelateConfig",
    "TrainingConfig",
    "EvaluationConfig",
    "ExplainConfig",
    "PlotsConfig",
    "GenerateSample",
    "BaselineConfig",
    "GenerateConfig",
]


# --- checks (return what was expected, or None) ----------------------------------


def positive(value: Any) -> str | None:
    if value <= 0:
        return positive.describe(type(value))
    return None


def _type_name(tp: Any) -> str:
    return {"int": "int", "float": "number"}.get(getattr(tp, "__name__", ""), "number")


positive.describe = lambda tp: f"a positive {_type_name(tp)}"


def non_negative(value: Any) -> str | None:
    if value < 0:
        return non_negative.describe(type(value))
    return None


non_negative.describe = lambda tp: f"a non-negative {_type_name(tp)}"


def fraction(value: float) -> str | None:
    if not 0.0 <= value <= 1.0:
        return "a number between 0 and 1"
    return None


def open_fraction(value: float) -> str | None:
    if not 0.0 < value < 1.0:
        return "a number strictly between 0 and 1"
    return None


def fractions(values: tuple) -> str | None:
    if any(not 0.0 < v < 1.0 for v in values):
        return "numbers strictly between 0 and 1"
    return None


def at_least_two(value: int) -> str | None:
    if value < 2:
        return "an int of 2 or more"
    return None


def non_empty(value: Any) -> str | None:
    if len(value) == 0:
        return "a non-empty value"
    return None


def _doc(text: str, check: Any = None) -> dict:
    meta = {"doc": text}
    if check is not None:
        meta["check"] = check
    return meta


# --- data ---------------------------------------------------------------------------


def _file_shorthand(value: Any, path: str) -> Any:
    return {"path": value} if isinstance(value, str) else value


@dataclass(frozen=True)
class FileGroup:
    """A group of files (glob) with one tree and optionally a constant label."""

    path: str = field(metadata=_doc(
        "file name or glob ('**' matches any depth of folders); relative paths resolve against data.directory. "
        "Or one remote file's URL, read by uproot as written (root://host//eos/.../f.root needs fsspec-xrootd, "
        "https://... aiohttp; no globs: list the files)"))
    tree: str = field(default="Events", metadata=_doc("TTree or RNTuple name inside the files"))
    label: Optional[int] = field(
        default=None, metadata=_doc("constant class index of every jet in these files (0, 1, ...)", non_negative)
    )
    name: Optional[str] = field(default=None, metadata=_doc(
        "class name of that label (default: the file name without .root and glob characters, or its folder's)"))
    weight: float = field(default=1.0, metadata=_doc("weight applied to every jet of the group", positive))

    __shorthand__ = staticmethod(_file_shorthand)


@dataclass(frozen=True)
class Cut:
    """A jet selection on one jet-level branch: ``{variable: Jet_pt, min: 20}``.

    A cut compares a branch with one value per jet (per_event layout: per jet of the collection, or
    per event, given to each of its jets). The derived variables of :mod:`hepnn.io.derived` are
    per constituent, so naming one here is an error that says so.
    """

    variable: str = field(metadata=_doc(
        "jet-level branch (per_event layout: a branch of the jet collection or a per-event branch); the derived "
        "variables (log_pt, delta_r, ...) are per constituent, not per jet, so they cannot be cut on: select on "
        "them in an analysis plugin's select(jets) hook"))
    min: Optional[float] = field(default=None, metadata=_doc("keep jets with value >= min"))
    max: Optional[float] = field(default=None, metadata=_doc("keep jets with value < max"))
    abs_min: Optional[float] = field(default=None, metadata=_doc("keep jets with |value| >= abs_min"))
    abs_max: Optional[float] = field(default=None, metadata=_doc("keep jets with |value| < abs_max"))
    equals: Optional[float] = field(default=None, metadata=_doc("keep jets with value == equals"))

    def validate(self):
        if all(getattr(self, k) is None for k in ("min", "max", "abs_min", "abs_max", "equals")):
            yield "", "a cut needs at least one of min, max, abs_min, abs_max, equals"


@dataclass(frozen=True)
class LabelConfig:
    """Labels from a branch with a class mapping (``{light: 0, c: 4, b: 5}``).

    Class indices follow the mapping's order; jets whose value is not in the
    mapping are dropped. With two classes the second one is the signal (label 1).
    """

    branch: str = field(metadata=_doc("jet-level branch holding the truth value"))
    classes: dict[str, int] = field(metadata=_doc("class name -> branch value, in class-index order", non_empty))

    def validate(self):
        if len(set(self.classes.values())) != len(self.classes):
            yield "classes", "each class needs its own branch value"


@dataclass(frozen=True)
class JetAxisConfig:
    """Branches of the jet four-momentum (the axis for relative coordinates)."""

    pt: str = field(default="jet_pt", metadata=_doc("jet pT branch"))
    eta: str = field(default="jet_eta", metadata=_doc("jet eta branch"))
    phi: str = field(default="jet_phi", metadata=_doc("jet phi branch"))
    energy: Optional[str] = field(default=None, metadata=_doc("jet energy branch (for log_e_frac)"))
    mass: Optional[str] = field(default=None, metadata=_doc("jet mass branch"))


@dataclass(frozen=True)
class ConstituentsConfig:
    """Where the constituent four-momenta are: (px, py, pz, energy) or (pt, eta, phi[, energy|mass]).

    With pt, eta, phi the energy (or mass) branch is needed only by what uses the energy (the
    derived variables energy, log_e and log_e_frac): jet images and the other derived variables
    need pt, eta and phi alone. An input that needs the energy without one is an error naming it.
    """

    collection: Optional[str] = field(default=None, metadata=_doc("per-event collection name (e.g. PFCand)"))
    link: Optional[str] = field(default=None, metadata=_doc("per-event branch with the index of the owning jet"))
    associate_dr: Optional[float] = field(
        default=None, metadata=_doc("associate unlinked constituents to jets by dR < this", positive)
    )
    px: Optional[str] = None
    py: Optional[str] = None
    pz: Optional[str] = None
    energy: Optional[str] = None
    pt: Optional[str] = None
    eta: Optional[str] = None
    phi: Optional[str] = None
    mass: Optional[str] = None
    theta: Optional[str] = field(default=None, metadata=_doc("track polar angle branch (tracks: theta, qoverp, phi)"))
    qoverp: Optional[str] = field(default=None, metadata=_doc("track charge over momentum branch (tracks: theta, qoverp, phi)"))

    def validate(self):
        cartesian = (self.px, self.py, self.pz, self.energy)
        polar = (self.pt, self.eta, self.phi)
        track = (self.theta, self.qoverp, self.phi)
        if all(cartesian) or all(polar) or all(track):
            return
        yield "", (
            "constituents need px, py, pz, energy; or pt, eta, phi (plus energy or mass for the energy "
            "variables energy, log_e, log_e_frac); or, for tracks, theta, qoverp, phi"
        )


@dataclass(frozen=True)
class SortBy:
    """Order of sequence elements."""

    variable: str = field(metadata=_doc("variable to sort by"))
    descending: bool = field(default=True, metadata=_doc("largest first"))
    absolute: bool = field(default=False, metadata=_doc("sort by |value|"))

    __shorthand__ = staticmethod(lambda v, path: {"variable": v} if isinstance(v, str) else v)


@dataclass(frozen=True)
class TransformConfig:
    """Per-variable transforms, applied in the order abs, log, clip, standardize."""

    abs: bool = field(default=False, metadata=_doc("take |x|"))
    log: bool = field(default=False, metadata=_doc("take log(x); x must be > 0 (after abs)"))
    log1p: bool = field(default=False, metadata=_doc("take log(1 + x)"))
    clip: Optional[tuple[float, ...]] = field(default=None, metadata=_doc("[low, high] limits"))
    standardize: bool = field(default=False, metadata=_doc("(x - mean) / std fitted on the training split"))

    def validate(self):
        if self.clip is not None and (len(self.clip) != 2 or self.clip[0] >= self.clip[1]):
            yield "clip", f"expected [low, high] with low < high, received {list(self.clip)!r}"
        if self.log and self.log1p:
            yield "log1p", "choose one of log and log1p"


# a memory size as uproot reads it (uproot._util.memory_size): a number and a unit of bytes
_MEMORY_SIZE = re.compile(r"^\s*([+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?)\s*([kmgtpezy]?i?b)\s*$", re.IGNORECASE)


def step_size_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as a chunk size (entries, or bytes like ``"100 MB"``), or None.

    Examples
    --------
    >>> step_size_problem("100 MB") is None and step_size_problem(5000) is None
    True
    >>> step_size_problem("100 MBB")
    "expected a positive number of entries or a size like '100 MB' (units B, kB, MB, GB, KiB, MiB, ...), received '100 MBB'"
    """
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if value > 0:
            return None
    elif isinstance(value, str):
        match = _MEMORY_SIZE.match(value)
        if match and float(match.group(1)) > 0:
            return None
    return ("expected a positive number of entries or a size like '100 MB' (units B, kB, MB, GB, KiB, MiB, ...), "
            f"received {short_repr(value)}")


_INPUT_COMMON_DOC = "per-variable transforms"


def _check_transforms(variables: tuple[str, ...], transforms: dict) -> Iterator[tuple[str, str]]:
    """A transform keyed by a name that is not one of the input's variables would never apply."""
    for name in transforms:
        if name not in variables:
            yield (f"transforms.{name}", f"{name!r} is not a variable of this input{suggest(str(name), list(variables))}; "
                   f"its variables: {', '.join(variables)}")


@dataclass(frozen=True)
class FlatInput:
    """Jet-level variables -> ``(n_jets, n_features)``."""

    kind: Literal["flat"] = "flat"
    variables: tuple[str, ...] = field(default=(), metadata=_doc(
        "jet-level branches (the derived variables are per constituent: use them in a sequence input)", non_empty))
    transforms: dict[str, TransformConfig] = field(default_factory=dict, metadata=_doc(_INPUT_COMMON_DOC))
    standardize: bool = field(default=True, metadata=_doc("standardise every variable (fit on training split)"))

    def validate(self):
        yield from _check_transforms(self.variables, self.transforms)


@dataclass(frozen=True)
class SequenceInput:
    """Constituents or tracks -> ``(n_jets, max_length, n_features)`` plus a mask."""

    kind: Literal["sequence"] = "sequence"
    variables: tuple[str, ...] = field(default=(), metadata=_doc("per-element branches or derived variables", non_empty))
    collection: Optional[str] = field(default=None, metadata=_doc("per-event collection (per_event layout)"))
    link: Optional[str] = field(default=None, metadata=_doc("branch with the index of the owning jet"))
    associate_dr: Optional[float] = field(
        default=None, metadata=_doc("associate unlinked elements to the nearest jet within dR", positive)
    )
    sort_by: Optional[SortBy] = field(default=None, metadata=_doc("ordering of the elements"))
    max_length: int = field(default=50, metadata=_doc("elements kept per jet", positive))
    pad_value: float = field(default=0.0, metadata=_doc("value of padded slots"))
    transforms: dict[str, TransformConfig] = field(default_factory=dict, metadata=_doc(_INPUT_COMMON_DOC))
    standardize: bool = field(default=True, metadata=_doc("standardise every variable (fit on training split, padding excluded)"))

    def validate(self):
        if self.link and self.associate_dr:
            yield "associate_dr", "give either link or associate_dr, not both"
        yield from _check_transforms(self.variables, self.transforms)


@dataclass(frozen=True)
class ImageInput:
    """Constituents -> jet images ``(n_jets, pixels, pixels, n_channels)`` in (eta, phi)."""

    kind: Literal["image"] = "image"
    pixels: int = field(default=37, metadata=_doc("pixels per side", positive))
    extent: float = field(default=1.6, metadata=_doc("half-width of the image in eta and phi", positive))
    channels: tuple[Literal["pt", "charged_pt", "neutral_pt", "multiplicity", "charged_multiplicity"], ...] = field(
        default=("pt",), metadata=_doc("image channels", non_empty)
    )
    preprocess: tuple[Literal["center", "rotate", "flip", "normalize"], ...] = field(
        default=("center", "rotate", "flip", "normalize"), metadata=_doc("preprocessing steps, in order")
    )
    center: Literal["centroid", "leading_subjet", "axis"] = field(
        default="centroid", metadata=_doc("what 'center' puts at the origin")
    )
    charge: Optional[str] = field(default=None, metadata=_doc("constituent charge branch (charged channels)"))
    intensity_power: float = field(
        default=1.0, metadata=_doc("pixel values to this power after preprocessing (0.5: square root, less peaked)", positive)
    )
    standardize: bool = field(default=False, metadata=_doc(
        "per-pixel standardisation: every pixel and channel shifted by its mean and divided by its standard "
        "deviation over the training jets (saved with the run)"))


#: input kind -> its config dataclass; ``data.inputs`` entries are read through it, so a kind
#: registered with :func:`hepnn.io.representations.register_input_kind` is accepted by the loader
INPUT_CONFIGS = Registry("input kind")
INPUT_CONFIGS.register("flat", FlatInput)
INPUT_CONFIGS.register("sequence", SequenceInput)
INPUT_CONFIGS.register("image", ImageInput)

#: the built-in kinds (documentation, typing); the loader dispatches through INPUT_CONFIGS
InputConfig = Annotated[Union[FlatInput, SequenceInput, ImageInput], INPUT_CONFIGS]


@dataclass(frozen=True)
class SplitConfig:
    """Deterministic train/val/test assignment from a hash of (file, entry, jet, seed) (``by: event``:
    of (file, entry, seed))."""

    train: float = field(default=0.7, metadata=_doc("fraction of jets for training", fraction))
    val: float = field(default=0.1, metadata=_doc("fraction for validation", fraction))
    test: float = field(default=0.2, metadata=_doc("fraction for testing", fraction))
    seed: int = field(default=42, metadata=_doc("seed of the split hash"))
    by: Literal["jet", "event"] = field(default="jet", metadata=_doc(
        "jet: each jet is drawn on its own; event: the jets of one entry share their split (per_event "
        "layout: no event has jets in training and in test)"))

    def validate(self):
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            yield "", f"train + val + test must be 1, received {total:g}"


@dataclass(frozen=True)
class DataConfig:
    """Where the jets are and how they become tensors."""

    layout: Literal["per_jet", "per_event"] = field(default="per_jet", metadata=_doc("one jet per entry or jet collections per event"))
    files: tuple[FileGroup, ...] = field(default=(), metadata=_doc("file groups"))
    directory: Optional[str] = field(default=None, metadata=_doc("base directory of relative file paths (default: the config's folder)"))
    jets: str = field(default="Jet", metadata=_doc("jet collection name in per_event layout"))
    cuts: tuple[Cut, ...] = field(default=(), metadata=_doc("jet selection"))
    label: Optional[LabelConfig] = field(default=None, metadata=_doc(
        "labels from a branch (else from file groups; giving both is an error)"))
    weight: Optional[str] = field(default=None, metadata=_doc(
        "per-jet weight branch (per_event layout: a per-event branch such as genWeight is given to each jet of the event)"))
    spectators: tuple[str, ...] = field(default=(), metadata=_doc("jet variables carried along for plots (pT, mass, ...)"))
    jet_axis: Optional[JetAxisConfig] = field(default=None, metadata=_doc("jet four-momentum branches"))
    constituents: Optional[ConstituentsConfig] = field(default=None, metadata=_doc("constituent four-momentum branches"))
    inputs: dict[str, InputConfig] = field(default_factory=dict, metadata=_doc("named model inputs"))
    split: SplitConfig = field(default_factory=SplitConfig, metadata=_doc("train/val/test split"))
    step_size: Union[int, str] = field(default="100 MB", metadata=_doc("entries or bytes per chunk read"))
    shuffle_buffer: int = field(default=10000, metadata=_doc("jets in the tf.data shuffle buffer", positive))
    on_nan: Literal["error", "replace"] = field(default="error", metadata=_doc(
        "what to do with NaN/inf values (error: stop, naming file and branch; replace: use nan_value). A NaN or "
        "infinite label (data.label.branch) is an error under 'error', and under 'replace' its jet is dropped "
        "like any value not in data.label.classes (counted in the dropped-labels warning)"))
    nan_value: float = field(default=0.0, metadata=_doc("replacement when on_nan is 'replace'"))
    skip_bad_files: bool = field(default=False, metadata=_doc(
        "skip unreadable files with a warning; a file that fails part-way through is skipped whole (none of its "
        "jets), also when streaming, which then holds each file's chunks until the file is read to the end"))
    event_key: Optional[str] = field(default=None, metadata=_doc("event-number branch (k-fold assignment)"))

    def _check_file_labels(self):
        """Constant labels are class indices 0..K-1, each used; one path is not listed under two labels."""
        if self.label is not None:
            return
        labels = sorted({f.label for f in self.files if f.label is not None})
        if labels and labels != list(range(len(labels))):
            missing = [k for k in range(labels[-1] + 1) if k not in labels]
            groups = ", ".join(f"data.files[{i}].label: {f.label}" for i, f in enumerate(self.files))
            yield "files", (
                f"file-group labels are class indices 0..K-1 and every one must be used; received "
                f"{sorted(labels)} ({groups}), so class(es) {missing} would have no jets: renumber the "
                f"labels as {list(range(len(labels)))} in the same order"
                + (" (and a tagger needs two classes at least: label the background 0 and the signal 1)"
                   if len(labels) == 1 else "")
            )
        where: dict[tuple[str, str], int] = {}
        for i, f in enumerate(self.files):
            j = where.setdefault((f.path, f.tree), i)
            if j != i:
                yield f"files[{i}].path", (
                    f"{f.path!r} is listed twice (data.files[{j}] with label {self.files[j].label} and "
                    f"data.files[{i}] with label {f.label}); a file gives each jet one label: keep one group"
                )

    def _check_one_label_source(self):
        """Labels come from data.label or from the file groups, never both (one would be ignored)."""
        if self.label is None:
            return
        for i, f in enumerate(self.files):
            for key in ("label", "name"):
                if getattr(f, key) is not None:
                    yield f"files[{i}].{key}", (
                        f"data.files[{i}].{key} ({getattr(f, key)!r}) and data.label (classes from branch "
                        f"{self.label.branch!r}) both give the jets' classes, and only one can: remove the file "
                        "groups' label and name to label jets by the branch, or remove data.label to label "
                        "them by file group")
                    return

    def validate(self):
        if self.files and self.label is None and any(f.label is None for f in self.files):
            yield "label", "give data.label (labels from a branch) or a label for every file group"
        yield from self._check_one_label_source()
        yield from self._check_file_labels()
        problem = step_size_problem(self.step_size)
        if problem:
            yield "step_size", problem


# --- model --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """The model builder and its options (any other key is passed to the builder)."""

    __extra_field__ = "params"

    name: str = field(default="dense", metadata=_doc("registered model builder"))
    inputs: Optional[tuple[str, ...]] = field(default=None, metadata=_doc("data inputs feeding the model (default: all)"))
    params: dict[str, Any] = field(default_factory=dict, metadata=_doc("builder options"))

    def validate(self):
        # lazy: keeps the config loader and `import hepnn` light (no numpy)
        from ..models.registry import MODELS, check_params

        if len(MODELS) == 0:
            return
        if self.name not in MODELS:
            yield "name", (
                f"unknown model {self.name!r}{suggest(self.name, MODELS.names())}; "
                f"valid names: {', '.join(MODELS.names())}"
            )
            return
        yield from check_params(self.name, self.params)


# --- training -----------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam"] = field(default="adam", metadata=_doc("optimiser"))
    learning_rate: float = field(default=1e-3, metadata=_doc("initial learning rate", positive))
    momentum: float = field(default=0.0, metadata=_doc("SGD/RMSProp momentum", fraction))
    nesterov: bool = field(default=False, metadata=_doc("Nesterov momentum (SGD)"))
    weight_decay: Optional[float] = field(default=None, metadata=_doc(
        "decoupled weight decay, for every optimiser (default: none; AdamW 0.004)", non_negative))
    clipnorm: Optional[float] = field(default=None, metadata=_doc("clip gradients to this norm", positive))

    def validate(self):
        if self.momentum and self.name not in ("sgd", "rmsprop"):
            yield "momentum", (f"optimizer {self.name!r} has no momentum option (only sgd and rmsprop do), so "
                               f"momentum: {self.momentum:g} would change nothing; remove it or choose sgd or rmsprop")
        if self.nesterov and self.name != "sgd":
            yield "nesterov", f"Nesterov momentum is an sgd option; optimizer {self.name!r} would ignore it: remove it"
        elif self.nesterov and not self.momentum:
            yield "nesterov", "Nesterov momentum with momentum: 0 is plain SGD: set momentum (e.g. 0.9) or remove nesterov"


@dataclass(frozen=True)
class ScheduleConfig:
    name: Literal["step", "exponential", "cosine", "plateau"] = field(metadata=_doc("learning-rate schedule"))
    decay_rate: float = field(default=0.5, metadata=_doc("factor per step/decay period (step, exponential, plateau)", open_fraction))
    decay_epochs: int = field(default=5, metadata=_doc("epochs per decay (step, exponential) or cosine length", positive))
    patience: int = field(default=2, metadata=_doc("plateau: epochs without improvement", positive))
    min_learning_rate: float = field(default=1e-6, metadata=_doc("floor", non_negative))


#: the names under which training logs the metrics of each task (Keras' names of
#: ``hepnn.models.heads.default_metrics``; on the validation split with ``val_``): with ``loss``,
#: the quantities ``training.early_stopping.monitor`` can name
METRIC_NAMES = {
    "binary": ("binary_accuracy", "auc"),
    "multiclass": ("sparse_categorical_accuracy",),
    "regression": ("mae",),
    "autoencoder": (),
}


@dataclass(frozen=True)
class EarlyStoppingConfig:
    patience: int = field(default=3, metadata=_doc("epochs without improvement before stopping", positive))
    monitor: str = field(default="val_loss", metadata=_doc(
        "quantity to monitor: loss or a metric of the task (auc, binary_accuracy, ...), val_ for the validation split"))
    mode: Literal["auto", "min", "max"] = field(default="auto", metadata=_doc(
        "min: lower is better, max: higher is better, auto: max for auc and accuracies, min for losses and mae"))
    min_delta: float = field(default=0.0, metadata=_doc("smallest change that counts", non_negative))
    restore_best_weights: bool = field(default=True, metadata=_doc("keep the best epoch's weights"))

    def validate(self):
        metrics = {name: task for task, names in METRIC_NAMES.items() for name in names}
        valid = [prefix + name for prefix in ("", "val_") for name in ("loss", *metrics)]
        if self.monitor not in valid:
            listed = ", ".join(f"{name} ({task})" for name, task in metrics.items())
            yield "monitor", (f"unknown quantity {self.monitor!r}{suggest(self.monitor, valid)}; valid names: loss "
                              f"and the task's metrics, {listed}, each also as val_<name> for the validation split")


@dataclass(frozen=True)
class ReweightConfig:
    """Reweight background jets so that a variable's spectrum matches the signal's.

    The spectra sum the jets' signed weights per bin (NLO weights are kept); a bin whose jets'
    weights sum to <= 0 has no factor and is an error: use fewer bins.
    """

    variable: str = field(metadata=_doc("jet-level variable (e.g. jet_pt)"))
    bins: int = field(default=20, metadata=_doc("histogram bins", positive))
    target: Literal["signal", "flat"] = field(default="signal", metadata=_doc("spectrum to reweight to"))


@dataclass(frozen=True)
class AugmentConfig:
    """Random symmetry transformations of jet images, drawn anew each epoch (training split only).

    After centring, a flip in eta or in phi (both: a rotation by 180 degrees) gives an
    equally valid jet, so each training image is flipped with probability 1/2 per axis.
    """

    flip_eta: bool = field(default=True, metadata=_doc("flip images along eta with probability 1/2"))
    flip_phi: bool = field(default=True, metadata=_doc("flip images along phi with probability 1/2"))


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking: the training run is also an MLflow run (``pip install hepnn[tracking]``)."""

    backend: Literal["mlflow"] = field(default="mlflow", metadata=_doc("tracking backend"))
    uri: Optional[str] = field(default=None, metadata=_doc(
        "MLflow tracking URI; a folder or file: URI is a local file store (default: $MLFLOW_TRACKING_URI, else ./mlruns)"))
    experiment: str = field(default="hepnn", metadata=_doc("MLflow experiment (created if missing)"))
    run_name: Optional[str] = field(default=None, metadata=_doc("MLflow run name (default: the run directory's name)"))


@dataclass(frozen=True)
class DecorrelateConfig:
    """Decorrelate the tagger's score from a jet variable (the mass) on background jets.

    ``disco`` adds ``strength * dCorr^2(score, variable)`` (distance correlation,
    arXiv:2001.05310) per batch to the loss; ``adversary`` trains a network that predicts
    the variable's bin from the score and subtracts ``strength`` times its loss from the
    classifier's through a gradient-reversal layer (arXiv:1611.01046, 1703.03507).
    Both use the jets' weights; a negative weight (NLO) counts as zero in the penalty
    (not in the classification loss).
    """

    method: Literal["disco", "adversary"] = field(metadata=_doc("disco (distance-correlation penalty) or adversary"))
    variable: str = field(metadata=_doc("jet variable to decorrelate from: one of data.spectators (e.g. jet_mass)"))
    strength: float = field(default=1.0, metadata=_doc("lambda: weight of the penalty (disco) or of the adversary loss; the penalty normalises the jets' weights itself while the classification loss is sum(w * loss) / n_jets, so with weights far from 1 (cross sections) scale lambda by their mean", non_negative))
    background_only: bool = field(default=True, metadata=_doc("decorrelate on background jets only (evaluation.background, else the class that is not evaluation.signal), as DisCo does"))
    adversary_units: int = field(default=32, metadata=_doc("adversary: units per hidden layer", positive))
    adversary_layers: int = field(default=2, metadata=_doc("adversary: hidden layers", positive))
    bins: int = field(default=10, metadata=_doc("adversary: the variable is predicted as one of this many quantile bins", positive))
    pretrain_epochs: int = field(default=1, metadata=_doc(
        "adversary: epochs at the start in which the adversary learns but does not act on the classifier", non_negative))

    def validate(self):
        if not math.isfinite(self.strength):
            yield "strength", f"expected a finite number >= 0, received {self.strength!r}"
        if self.bins < 2:
            yield "bins", f"expected at least 2 bins, received {self.bins}"


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = field(default=10, metadata=_doc("training epochs", positive))
    batch_size: int = field(default=256, metadata=_doc("jets per step", positive))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: Optional[ScheduleConfig] = field(default=None, metadata=_doc("learning-rate schedule"))
    early_stopping: Optional[EarlyStoppingConfig] = field(default_factory=EarlyStoppingConfig)
    loss: Optional[str] = field(default=None, metadata=_doc("loss (default from the task): per batch sum(weight * loss) / n_jets (not a weighted mean), logged as the mean over the epoch's batches"))
    class_weight: Union[Literal["balanced"], dict[str, float], None] = field(default=None, metadata=_doc("'balanced' or class -> weight"))
    reweight: Optional[ReweightConfig] = field(default=None, metadata=_doc("kinematic reweighting"))
    augment: Optional[AugmentConfig] = field(default=None, metadata=_doc("data augmentation of image inputs"))
    decorrelate: Optional[DecorrelateConfig] = field(default=None, metadata=_doc(
        "mass decorrelation (DisCo or adversary) against a spectator variable"))
    train_classes: Optional[tuple[str, ...]] = field(default=None, metadata=_doc("train on jets of these classes only (autoencoders: the background)"))
    seed: int = field(default=1, metadata=_doc("seed of weights, shuffling and dropout"))
    deterministic: bool = field(default=False, metadata=_doc("TF op determinism (bitwise reproducible, slower)"))
    streaming: bool = field(default=False, metadata=_doc("feed training from the streaming tf.data pipeline"))
    stream_cache: bool = field(default=False, metadata=_doc(
        "streaming: keep the first pass's processed training jets on disk (RUN_DIR/stream_cache) and read later "
        "epochs from there; removed when training ends"))
    checkpoint_every_n_steps: Optional[int] = field(default=None, metadata=_doc("extra checkpoints within epochs", positive))
    mixed_precision: bool = field(default=False, metadata=_doc("mixed_float16 on GPUs"))
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = field(default="auto", metadata=_doc("tf.distribute strategy"))
    folds: Optional[int] = field(default=None, metadata=_doc("k-fold training with this many folds", at_least_two))
    verbose: int = field(default=1, metadata=_doc(
        "0: no TensorBoard log (RUN_DIR/tensorboard); the epoch lines are logged either way, Keras' own "
        "progress bar never", non_negative))
    tracking: Optional[TrackingConfig] = field(default=None, metadata=_doc(
        "log params, per-epoch metrics, test metrics and the report to MLflow"))

    def validate(self):
        if isinstance(self.class_weight, dict):
            for name, value in self.class_weight.items():
                if not value > 0:  # a class weight multiplies every jet's loss term of the class
                    yield f"class_weight.{name}", (
                        f"expected a positive class weight, received {value!r}: a weight <= 0 leaves the class out "
                        "of the loss or turns its gradient around (signed NLO weights belong in data.weight); "
                        "to train without a class use training.train_classes")
        if self.stream_cache and not self.streaming:
            yield "stream_cache", "caches the streaming pipeline: set training.streaming: true as well (or drop it)"
        if self.augment is not None and self.streaming:
            yield "augment", ("image augmentation flips the images of the in-memory feed only, and the streaming "
                              "pipeline would train without it: set training.streaming: false or remove augment")


# --- evaluation, explain, plots -----------------------------------------------------


@dataclass(frozen=True)
class EvaluationConfig:
    working_points: tuple[float, ...] = field(
        default=(0.3, 0.5, 0.6, 0.7, 0.77, 0.85), metadata=_doc("signal efficiencies for rejection", fractions)
    )
    signal: Optional[str] = field(default=None, metadata=_doc("signal class name (default: the last class)"))
    background: Optional[str] = field(default=None, metadata=_doc("background class (autoencoders)"))
    batch_size: int = field(default=1024, metadata=_doc("prediction batch size", positive))
    weighted: bool = field(default=False, metadata=_doc(
        "weight the test metrics (metrics.json) and the report's performance plots by the jets' weights (data.weight "
        "times the file group's weight; not the training's class weights or reweighting): for samples mixed with "
        "cross-section weights, or with NLO weights"))


@dataclass(frozen=True)
class ExplainConfig:
    methods: tuple[str, ...] = field(default=("permutation",), metadata=_doc("explainers run by `hepnn run`"))
    n_jets: int = field(default=1000, metadata=_doc("jets explained", positive))
    background_size: int = field(default=40, metadata=_doc("background sample for SHAP (cost grows with it)", positive))
    options: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=_doc("per-method options"))

    def validate(self):
        """Every method and every ``options`` key names a registered explainer; options are its arguments."""
        # lazy: keeps the config loader and `import hepnn` light (no numpy)
        from ..explain import EXPLAINERS
        from ..explain.registry import check_options

        names = EXPLAINERS.names()
        for where, method in [*((f"methods[{i}]", m) for i, m in enumerate(self.methods)),
                              *((f"options.{m}", m) for m in self.options)]:
            if method not in EXPLAINERS:
                yield where, f"unknown explainer {method!r}{suggest(method, names)}; valid names: {', '.join(names)}"
                return
        for method, options in self.options.items():
            try:
                check_options(method, options)
            except ConfigError as err:
                subpath, _, problem = str(err).partition(": ")
                yield subpath.removeprefix("explain."), problem
                return


@dataclass(frozen=True)
class PlotsConfig:
    style: Literal["plain", "CMS", "ATLAS", "LHCb", "ALICE"] = field(default="plain", metadata=_doc("experiment style"))
    label: str = field(default="Simulation", metadata=_doc("text beside the experiment name"))
    energy: float = field(default=14.0, metadata=_doc("centre-of-mass energy in TeV", positive))
    formats: tuple[Literal["png", "pdf", "svg"], ...] = field(default=("png", "pdf"), metadata=_doc("file formats"))
    working_point: float = field(default=0.5, metadata=_doc("signal efficiency of efficiency plots", open_fraction))


@dataclass(frozen=True)
class BaselineConfig:
    """A boosted-decision-tree baseline (scikit-learn ``HistGradientBoostingClassifier``)."""

    inputs: Optional[tuple[str, ...]] = field(default=None, metadata=_doc("flat/sequence inputs it sees (sequences summarised)"))
    max_iter: int = field(default=200, metadata=_doc("boosting iterations", positive))
    learning_rate: float = field(default=0.1, metadata=_doc("shrinkage", positive))
    max_depth: Optional[int] = field(default=None, metadata=_doc("tree depth limit", positive))


# --- names that become file or folder names under an output folder -------------------

RESERVED_VARIANT_NAMES = ("data", "bdt", "report")  # folders `hepnn run` writes beside the variants


def output_name_problem(name: Any, reserved: tuple[str, ...] = ()) -> str | None:
    """Why ``name`` cannot be a file or folder name inside an output folder, or None.

    A name must be one plain path component: not empty, not ``.``/``..``, no ``/`` or
    ``\\``, not absolute, not hidden (``.``-prefixed names are hepnn's own files).

    Examples
    --------
    >>> output_name_problem("top.root") is None
    True
    >>> output_name_problem("../elsewhere") is not None
    True
    """
    text = str(name)
    if not text or text in (".", "..") or any(c in text for c in "/\\\0") or text.startswith("."):
        return ('must be a plain file or folder name inside the output folder (no "..", "/" or "\\\\", '
                f'not absolute, not starting with "."), received {text!r}')
    if text in reserved:
        return f"{text!r} is reserved for the folder of the same name in the output folder; choose another name"
    return None


# --- generate -----------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateSample:
    sample: Literal["top", "qcd", "w", "ttbar"] = field(metadata=_doc("physics process"))
    n_jets: int = field(default=1000, metadata=_doc("jets to generate", positive))
    layout: Literal["per_jet", "per_event"] = field(default="per_jet", metadata=_doc("output layout"))
    seed: Optional[int] = field(default=None, metadata=_doc("seed (default: generate.seed + index)"))
    options: dict[str, Any] = field(default_factory=dict, metadata=_doc("generator options (pt_min, mpi, ...)"))


@dataclass(frozen=True)
class GenerateConfig:
    """Samples an analysis makes for itself: file name -> sample."""

    samples: dict[str, GenerateSample] = field(default_factory=dict)
    seed: int = field(default=1, metadata=_doc("base seed"))
    jobs: int = field(default=1, metadata=_doc("worker processes", positive))

    def validate(self):
        for name in self.samples:
            problem = output_name_problem(name)
            if problem:
                yield f"samples.{name}", f"sample file name {problem}"


# --- the whole config ---------------------------------------------------------------


#: model keys an overlay that changes ``model.name`` keeps from the base (the rest are builder options)
_MODEL_KEYS_KEPT = ("name", "inputs")


def with_overlay(config: "Config", overlay: dict, path: str, clear: tuple[str, ...] = ("variants", "quick")) -> "Config":
    """``config`` with ``overlay`` merged in (the ``clear`` sections emptied first), validated as ``path``.

    An overlay that changes ``model.name`` does not inherit the base's builder options (those of
    another model): the new model starts from its defaults plus the overlay's options, and keeps
    the base's ``model.inputs``.

    Examples
    --------
    >>> from hepnn.config import load_config
    >>> base = load_config({"model": {"name": "dense", "units": [8]}})
    >>> with_overlay(base, {"model": {"name": "deepsets"}}, "variants.ds").model.params
    {}
    """
    base = to_dict(config)
    for key in clear:
        base[key] = {}
    base["model"] = _model_base(base.get("model"), overlay.get("model"))
    return from_dict(Config, deep_merge(base, overlay), path)


def _model_base(model: Any, overlay: Any) -> Any:
    """The base's model section under an overlay: without its builder options when the overlay
    switches to another model."""
    if not isinstance(model, dict) or not isinstance(overlay, dict) or "name" not in overlay:
        return model
    if overlay["name"] == model.get("name"):
        return model
    return {k: v for k, v in model.items() if k in _MODEL_KEYS_KEPT}


def deep_merge(base: dict, overlay: dict) -> dict:
    """A copy of ``base`` with ``overlay`` merged in (mappings recursively, other values replaced).

    Examples
    --------
    >>> deep_merge({"model": {"name": "dense", "units": [8]}}, {"model": {"name": "cnn"}})
    {'model': {'name': 'cnn', 'units': [8]}}
    """
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out



@dataclass(frozen=True)
class Config:
    """A complete hepnn configuration."""

    name: Optional[str] = field(default=None, metadata=_doc("name of the analysis or run"))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    plots: PlotsConfig = field(default_factory=PlotsConfig)
    generate: Optional[GenerateConfig] = field(default=None, metadata=_doc("samples to generate"))
    baseline: Optional[BaselineConfig] = field(default=None, metadata=_doc("BDT baseline trained by `hepnn run`"))
    variants: dict[str, dict[str, Any]] = field(
        default_factory=dict,
        metadata=_doc("named overlays (e.g. {cnn: {model: {name: cnn}}}) each trained as its own run by `hepnn run`; "
                      "a variant that changes model.name starts from that model's defaults (the base's model "
                      "options are not inherited, model.inputs is)"),
    )

    quick: dict[str, Any] = field(
        default_factory=dict,
        metadata=_doc("overlay applied by `hepnn run --quick` (small samples, few epochs: demos and tests)"),
    )

    def _check_model_input_kinds(self):
        """A builder registered with ``requires`` gets at least one input of that kind (built-in kinds only:
        what another registered kind builds is known when its arrays are)."""
        # lazy: keeps the config loader and `import hepnn` light (no numpy)
        from ..models.registry import MODELS

        builder = MODELS.get(self.model.name) if self.model.name in MODELS else None
        kind = getattr(builder, "required_kind", None)
        names = list(self.data.inputs) if self.model.inputs is None else list(self.model.inputs)
        kinds = {name: getattr(self.data.inputs.get(name), "kind", None) for name in names}
        if kind is None or not kinds or kind in kinds.values():
            return
        if all(k in ("flat", "sequence", "image") for k in kinds.values()):
            got = ", ".join(f"{name} ({k})" for name, k in kinds.items())
            yield "model.inputs", (f"model {self.model.name!r} needs at least one {kind} input; its inputs are {got}: "
                                   f"add a data input of kind {kind} to model.inputs, or choose another model")

    def _check_augment_inputs(self):
        """``training.augment`` flips image inputs: a model without one (built-in kinds only) would ignore it."""
        if self.training.augment is None or not self.data.inputs:
            return
        names = list(self.data.inputs) if self.model.inputs is None else list(self.model.inputs)
        kinds = {name: getattr(self.data.inputs.get(name), "kind", None) for name in names}
        if kinds and "image" not in kinds.values() and all(k in ("flat", "sequence") for k in kinds.values()):
            got = ", ".join(f"{name} ({k})" for name, k in kinds.items())
            yield "training.augment", (f"flips jet images, and the model's inputs are {got}, none an image, so it "
                                       "would change nothing: remove training.augment or add an image input")

    def validate(self):
        if self.quick:
            try:
                with_overlay(self, self.quick, "quick", clear=("quick",))
            except Exception as err:  # noqa: BLE001 - re-raised as a config error with the path
                text = str(err)
                yield "", text if text.startswith("quick") else f"quick: {text}"
        if self.variants:
            for name in self.variants:
                problem = output_name_problem(name, RESERVED_VARIANT_NAMES)
                if problem:
                    yield f"variants.{name}", f"variant name (its run folder) {problem}"
                    return
            for name, overlay in self.variants.items():
                if not isinstance(overlay, dict):
                    yield f"variants.{name}", f"expected a mapping of config sections, received {short_repr(overlay)}"
                    continue
                try:
                    with_overlay(self, overlay, f"variants.{name}")
                except Exception as err:  # noqa: BLE001 - re-raised as a config error with the path
                    text = str(err)
                    prefix = f"variants.{name}"
                    yield "", text if text.startswith(prefix) else f"{prefix}: {text}"
        decor = self.training.decorrelate
        if decor is not None and decor.variable not in self.data.spectators:
            valid = ", ".join(self.data.spectators) or "none"
            yield "training.decorrelate.variable", (
                f"{decor.variable!r} is not a spectator{suggest(decor.variable, list(self.data.spectators))}; "
                f"add it to data.spectators (listed now: {valid})"
            )
        if self.model.inputs is not None and len(self.model.inputs) == 0:
            yield "model.inputs", (f"empty: list the data inputs that feed the model (data.inputs defines "
                                   f"{', '.join(self.data.inputs) or 'none'}), or leave model.inputs out for all of them")
        yield from self._check_model_input_kinds()
        yield from self._check_augment_inputs()
        if self.model.inputs is not None and self.data.inputs:
            for i, name in enumerate(self.model.inputs):
                if name not in self.data.inputs:
                    yield f"model.inputs[{i}]", (
                        f"unknown input {name!r}{suggest(name, list(self.data.inputs))}; "
                        f"data.inputs defines {', '.join(self.data.inputs)}"
                    )
