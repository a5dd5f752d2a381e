"""The run report: every validation plot of one or several trained taggers, with an HTML page.

::

    REPORT/
      index.html          static page: metrics table, every figure with a caption, links to the PDFs
      metrics.json        the run's metrics.json (several runs: {variant: metrics})
      manifest.json       figures (files, captions) and the numbers they show (AUC, KS p-values, ...)
      plots/NAME.png|pdf  one file per format of ``plots.formats``
      hists/NAME.json     histograms (``hist.Hist``, UHI JSON) to merge across batch jobs and replot
      explain/...         PNGs copied from ``RUN_DIR/explain/<method>/``

A report written into a folder that holds an earlier report replaces it: ``index.html``,
``manifest.json`` and ``metrics.json`` are removed before anything is drawn and written last
(atomically, ``index.html`` the very last), so a report killed part-way leaves a folder without
a page rather than the old page beside new plots. When the new report is complete, the files
an earlier report listed in its manifest that the new one does not list are removed (a figure
it no longer draws); files the reports did not write are never touched. Until then the earlier
listing, with the files of the new report drawn so far, is kept in ``.hepnn-report-files.json``,
so the report run after a kill still prunes them.

The report reads no file outside a run directory: a run file (``config.yaml``,
``model.keras``, ``metrics.json``, ...) that is a symlink leading out of the run directory
is an error; such an explanation file is ignored, with a note in the report. Hidden folders of
``RUN_DIR/explain/`` (a name starting with a dot: a staged ``.tmp``/``.old`` copy of an
explanation) are no explanations and are left out.

The figures are entries of :data:`REPORT_FIGURES`, each registered with
:func:`report_figure` together with what it needs (tasks, input kind, spectator, model,
explanations); the report draws every entry that applies, in registration order, and
renders ``templates/report.html``. A new figure is one registered function::

    @report_figure("score_mean", section="overtraining", plots=("scores",))
    def score_mean(ctx, item):  # ctx: ReportContext, item: FigureItem
        ...
        return ReportFigure(name=item.stem, ..., files=ctx.finish(fig, item.stem, ax))

The experiment style of the first run's ``plots`` config section is applied while the
report is drawn and restored afterwards; importing this module draws and changes nothing.
"""

from __future__ import annotations

import fnmatch
import functools
import html
import itertools
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .._fileio import atomic_path, atomic_write_text
from ..config import load_config
from ..exceptions import HepnnError, InputDataError, PluginError, UnknownNameError
from ..explain.views import ViewUnavailable, compute_view, stored_view
from ..io.split import assign_fold
from ..metrics import efficiency_auc, efficiency_curve, rejection_at
from ..outdir import claim
from ..registry import Registry
from ..runs.spec import class_index
from ..training.evaluate import (binary_metrics, evaluate_run, evaluation_weights, load_run_data, predict_split,
                                prediction_key)
from ..training.kfold import fold_data, fold_dirs, is_kfold_run
from ..training.rundir import RunDirectory, load_run_model, read_json, write_json
from ..training.sculpting import sculpting_variable
from .anomaly import plot_latent, plot_reconstruction_error
from .common import PLOTS, pyplot, taggers_from
from .confusion import plot_confusion_matrix
from .decorrelation import plot_rejection_vs_sculpting
from .efficiency import plot_efficiency, plot_mass_sculpting
from .explanations import plot_importance, plot_position_importance
from .filters import plot_conv_filters, plot_efn_filters, plot_feature_maps
from .histio import save_hists
from .images import plot_average_images, plot_heatmap
from .learning import plot_learning_curves, read_history
from .roc import plot_rejection, plot_roc
from .writer import FigureWriter
from .scores import plot_scores
from .style import label, use_style

__all__ = [
    "REPORT_FIGURES",
    "SCOPES",
    "FigureEntry",
    "FigureItem",
    "Report",
    "ReportContext",
    "ReportFigure",
    "ReportRun",
    "SkipFigure",
    "build_report",
    "find_spectator",
    "make_report",
    "report_figure",
    "report_figures",
]

_SPECTATOR_PATTERNS = {
    "pt": ("spec_*pt*",),
    "eta": ("spec_*eta*",),
    "mass": ("spec_*msoftdrop*", "spec_*sdmass*", "spec_*mass*"),
}
_SPECTATOR_LABELS = {"pt": "Jet $p_T$ [GeV]", "eta": "Jet $\\eta$", "mass": "Jet mass [GeV]"}
_SECTIONS = (
    ("performance", "Performance (test split)"),
    ("overtraining", "Score distributions and overtraining check"),
    ("learning", "Learning curves"),
    ("efficiency", "Efficiency and rejection against jet variables"),
    ("sculpting", "Mass sculpting"),
    ("images", "Average jet images"),
    ("anomaly", "Anomaly detection"),
    ("multiclass", "Multiclass"),
    ("explain", "Explanations"),
    ("analysis", "Analysis plots"),
)


@dataclass
class ReportFigure:
    """One figure of the report.

    Attributes
    ----------
    name : str
        File stem, e.g. ``"rejection"`` or ``"scores_dense"``.
    title, caption : str
        Shown on the page (what it shows, which split, the working point).
    files : list of str
        Paths relative to the report folder (``plots/rejection.png``, ...).
    section : str
        Page section (``performance``, ``overtraining``, ...).
    variant : str or None
        The run it belongs to; None for plots of all runs.
    result : object
        What the plot function returned (its figure is closed); None for copied images.
    summary : dict
        Numbers shown (curves drawn, AUC, KS p-values, ...), also in ``manifest.json``.
    plots : list of str
        The :data:`hepnn.plotting.PLOTS` functions that drew it (from its registry entry).
    """

    name: str
    title: str
    caption: str
    files: list[str]
    section: str
    variant: str | None = None
    result: Any = None
    summary: dict = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)


@dataclass
class Report:
    """What :func:`build_report` wrote: the folder, the figures, the metrics and the notes (skipped plots, caveats)."""

    path: Path
    figures: list[ReportFigure]
    metrics: dict
    notes: list[str]

    @property
    def index(self) -> Path:
        return self.path / "index.html"

    def figure(self, name: str) -> ReportFigure:
        """The figure called ``name``."""
        for fig in self.figures:
            if fig.name == name:
                return fig
        raise UnknownNameError(name, "report figure", [f.name for f in self.figures])


class SkipFigure(Exception):
    """Raised by a report figure whose inputs are missing: the figure is skipped with this note on the page."""


@dataclass
class ReportRun:
    """One run as the report figures see it: its config, predictions and metrics.

    ``test``/``train`` are :func:`hepnn.training.evaluate.predict_split` results;
    ``score_test`` is one discriminant per test jet (higher = more signal-like),
    ``is_sig_test`` the signal flag, ``signal`` the index of the signal class (the
    background class for an autoencoder).
    """

    name: str
    path: Path
    config: Any
    task: str
    classes: list[str]
    test: dict
    train: dict | None
    metrics: dict
    signal: int
    score_test: np.ndarray = None
    is_sig_test: np.ndarray = None
    score_train: np.ndarray = None
    key: str | None = None  # what the run's stored predictions and model views are valid for
    #: the jets' weights when the run's ``evaluation.weighted`` says so, else None (unweighted figures)
    weight_test: np.ndarray | None = None
    weight_train: np.ndarray | None = None


def find_spectator(data: Mapping[str, Any], quantity: str) -> str | None:
    """Name of the spectator array holding ``quantity`` (``"pt"``, ``"eta"`` or ``"mass"``), or None.

    Patterns are tried in order (soft-drop mass before plain mass); among the
    matches of a pattern the shortest name wins (``spec_jet_pt`` before ``spec_jet_ptd``).

    Examples
    --------
    >>> find_spectator({"spec_jet_pt": 0, "spec_jet_mass": 0, "spec_jet_sdmass": 0}, "mass")
    'spec_jet_sdmass'
    >>> find_spectator({"jet": 0}, "eta") is None
    True
    """
    if quantity not in _SPECTATOR_PATTERNS:
        raise UnknownNameError(quantity, "spectator quantity", list(_SPECTATOR_PATTERNS))
    for pattern in _SPECTATOR_PATTERNS[quantity]:
        hits = sorted((k for k in data if fnmatch.fnmatchcase(str(k).lower(), pattern)), key=lambda k: (len(k), k))
        if hits:
            return hits[0]
    return None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "run"


def _inside(root: Path, path: Path) -> bool:
    """True when ``path``, with every symlink resolved, is inside ``root`` (itself resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    return True


#: the files of a run directory the report reads (directly or through evaluate/predict)
_RUN_FILES = ("config.yaml", "spec.json", "model.keras", "preprocessing.json", "metrics.json", "history.csv",
              "provenance.json", "folds.json", "explain")


def _check_run_files(name: str, path: Path) -> None:
    """Refuse a run whose files are symlinks leading out of the run directory (the report reads no file outside)."""
    for file_name in _RUN_FILES:
        file = Path(path) / file_name
        if (file.exists() or file.is_symlink()) and not _inside(path, file):
            msg = (f"run {name!r}: {file} is a symlink to {os.path.realpath(file)}, outside the run directory "
                   f"{path}; the report reads only files inside the run directory: replace the link by a copy")
            raise InputDataError(msg)


def _normalise_runs(run_dirs: Mapping[str, Any] | str | os.PathLike) -> dict[str, Path]:
    if isinstance(run_dirs, (str, os.PathLike)):
        path = Path(run_dirs)
        runs = {path.resolve().name or "model": path}
    elif isinstance(run_dirs, Mapping):
        runs = {str(k): Path(v) for k, v in run_dirs.items()}
    else:
        paths = [Path(p) for p in run_dirs]
        names = [p.resolve().name for p in paths]
        if len(set(names)) != len(names):  # runs of the same name in different folders: named by their paths
            names = [str(p) for p in paths]
        runs = dict(zip(names, paths))
    if not runs:
        msg = "make_report: received no run directories; pass a path or {variant: path}"
        raise ValueError(msg)

    for name, path in runs.items():
        run = RunDirectory(path)
        _check_run_files(name, run.path)
        if (run.path / "folds.json").is_file():  # a k-fold run: its fold runs are checked by _expand_folds
            continue
        for required in (run.config, run.model):
            if not required.is_file():
                msg = f"run {name!r}: missing file {required}; train the run first (hepnn train CONFIG --out {path})"
                raise InputDataError(msg)
    return runs


def _expand_folds(runs: dict[str, Path]) -> tuple[dict[str, Path], dict[str, tuple[Path, list[str]]]]:
    """Replace each k-fold run by its fold runs (``<name>/fold<k>``); return the groups too."""
    out: dict[str, Path] = {}
    groups: dict[str, tuple[Path, list[str]]] = {}
    for name, path in runs.items():
        if not is_kfold_run(path):
            out[name] = path
            continue
        n_folds = read_json(Path(path) / "folds.json")["n_folds"]
        names = []
        for k, fold_path in enumerate(fold_dirs(path, n_folds)):
            if not _inside(path, fold_path):
                msg = (f"run {name!r}: fold {k} ({fold_path}) is a symlink to {os.path.realpath(fold_path)}, outside "
                       "the run directory; the report reads only files inside it: replace the link by a copy")
                raise InputDataError(msg)
            _check_run_files(f"{name}/fold{k}", Path(fold_path))
            if not (fold_path / "model.keras").is_file():
                msg = f"run {name!r}: fold {k} has no model ({fold_path / 'model.keras'}); finish training first"
                raise InputDataError(msg)
            out[f"{name}/fold{k}"] = fold_path
            names.append(f"{name}/fold{k}")
        groups[name] = (Path(path), names)
    return out, groups


def _fold_datasets(groups: dict, data: Any, analysis: Any, cache: dict) -> dict[str, Any]:
    """For every fold run, the data with that fold as its test split."""
    out = {}
    for _name, (path, names) in groups.items():
        run = RunDirectory(path)
        base = data if data is not None else _load_data(path, load_config(run.config), analysis)
        fold = assign_fold(base["fold_key"], len(names))
        for k, fold_name in enumerate(names):
            out[fold_name] = fold_data(base, fold, k)
    return out


def _load_data(run_dir: Path, config: Any, analysis: Any) -> Any:
    """The run's data with its own preprocessing, as :func:`hepnn.training.evaluate.predict_split` reads them."""
    return load_run_data(run_dir, config, analysis)


def _scores(run: ReportRun, pred: dict) -> tuple[np.ndarray, np.ndarray]:
    """One discriminant per jet (higher = more signal-like) and the signal flag, as the metrics use them."""
    out = np.asarray(pred["outputs"])
    labels = np.asarray(pred["label"])
    if run.task == "binary":
        s = out.reshape(len(out), -1)[:, 0].astype(float)
        if run.signal == 0:
            s = 1.0 - s
        return s, labels == run.signal
    if run.task == "multiclass":
        return out[:, run.signal].astype(float), labels == run.signal
    return out.reshape(-1).astype(float), labels != run.signal  # autoencoder: signal is the background index


def _load_run(name: str, path: Path, data: Any, analysis: Any, cache: dict) -> ReportRun:
    rd = RunDirectory(path)
    config = load_config(rd.config)
    run_data = load_run_data(path, config, analysis, cache=cache) if data is None else data
    # the outputs the evaluate step stored for these data, if any (no model is loaded then)
    key = prediction_key(path, config, analysis) if data is None else None
    test = predict_split(path, "test", data=run_data, key=key, store=False)  # a report only reads run folders
    n_train = int(np.count_nonzero(np.asarray(run_data["split"]) == 0)) if "split" in run_data else 0
    train = predict_split(path, "train", data=run_data, key=key, store=False) if n_train else None
    if not rd.metrics.is_file():
        evaluate_run(path, data=run_data)
    metrics = read_json(rd.metrics)
    classes = list(test["classes"])
    task = test["task"]
    ev = config.evaluation
    if task == "autoencoder":
        signal = class_index(classes, ev.background, "evaluation.background", 0)
    elif task == "binary":
        signal = class_index(classes, ev.signal, "evaluation.signal", 1)
    else:
        signal = class_index(classes, ev.signal, "evaluation.signal", len(classes) - 1)
    run = ReportRun(name=name, path=path, config=config, task=task, classes=classes, test=test, train=train,
                    metrics=metrics, signal=signal, key=key)
    run.score_test, run.is_sig_test = _scores(run, test)
    run.weight_test = evaluation_weights(config, test)
    if train is not None and len(train["label"]):
        run.score_train = _scores(run, train)[0]
        run.weight_train = evaluation_weights(config, train)
    return run


def _weighting(*runs: ReportRun) -> str:
    """The end of a caption: whether the figure's jets are weighted (``evaluation.weighted``)."""
    if all(r.weight_test is not None for r in runs):
        return " Weighted by the jets' weights (evaluation.weighted)."
    if any(r.weight_test is not None for r in runs):
        return " Weighted by the jets' weights for the runs with evaluation.weighted, unweighted for the others."
    return " Unweighted."


def _progress(iterable: Iterable, total: int, desc: str, progress: bool) -> Iterable:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="plot" if "plot" in desc else "run", file=sys.stderr,
                disable=not progress or not sys.stderr.isatty(), dynamic_ncols=True, leave=False)


class ReportContext:
    """What every report figure shares: the output folder, the runs, the taggers, the working points.

    Draw functions save their figures with :meth:`finish` (experiment label, every format
    of ``plots.formats``, figure closed) and histograms with :meth:`hists`; :meth:`note`
    adds a note to the page; ``cache`` holds what several figures reuse (loaded models).
    """

    def __init__(self, out: Path, plots_config: Any, runs: list, taggers: dict, working_points: tuple,
                 working_point: float):
        self.out = out
        self.formats = tuple(plots_config.formats)
        self.style = plots_config.style
        self.text = plots_config.label
        self.energy = plots_config.energy
        self.runs = runs
        self.taggers = taggers
        self.working_points = working_points
        self.working_point = working_point
        self.cache: dict = {}
        self.notes: list[str] = []
        # saves the figures (in worker processes once there are many; see hepnn.plotting.writer)
        self.writer = FigureWriter(processes=0)

    def note(self, text: str) -> None:
        """Add ``text`` to the report's notes (skipped plots, caveats; once)."""
        if text not in self.notes:
            self.notes.append(text)

    def pyplot(self) -> Any:
        return pyplot()

    def finish(self, fig: Any, name: str, label_ax: Any = None) -> list[str]:
        if label_ax is not None:
            label(label_ax, experiment=self.style, text=self.text, energy=self.energy)
        paths = self.writer.save(fig, self.out / "plots" / name, formats=self.formats)
        self.pyplot().close(fig)
        return [p.relative_to(self.out).as_posix() for p in paths]

    def hists(self, hists: Mapping[str, Any], name: str) -> str:
        path = save_hists(dict(hists), self.out / "hists" / f"{name}.json")
        return Path(path).relative_to(self.out).as_posix()


#: where a report figure is drawn: once for all taggers, once per k-fold run, once per run,
#: or once per input of ``input_kind`` (for the first run holding it)
SCOPES = ("all", "kfold", "run", "input")
_TASKS = ("binary", "multiclass", "autoencoder")
_order = itertools.count()


@dataclass(frozen=True)
class FigureEntry:
    """A registered report figure and what it needs; see :func:`report_figure`."""

    name: str
    draw: Callable[[ReportContext, FigureItem], Any]
    section: str
    scope: str = "run"
    tasks: tuple[str, ...] = ()
    input_kind: str | None = None
    spectator: str | None = None
    model: str | None = None
    explanations: bool = False
    when: Callable[[ReportRun], bool] | None = None
    description: str = ""
    plots: tuple[str, ...] = ()
    order: int = 0

    def applies_to(self, run: ReportRun) -> bool:
        """Whether ``run`` has what this figure needs (a missing spectator is checked when drawing, with a note)."""
        if self.tasks and run.task not in self.tasks:
            return False
        if self.model is not None and run.config.model.name != self.model:
            return False
        if self.scope == "run" and self.input_kind is not None and self.input_kind not in run_input_kinds(run):
            return False
        if self.explanations:
            root = run.path / "explain"
            if not root.is_dir() or not _inside(run.path, root):
                return False
        return self.when is None or bool(self.when(run))


@dataclass
class FigureItem:
    """One figure to draw: the entry, the file stem and what it is drawn for.

    ``run`` is the run (scopes ``run`` and ``input``), ``runs`` the runs it covers (every
    run for scope ``all``, the fold runs for ``kfold``), ``group`` the k-fold run's name,
    ``input_name`` the input (scope ``input``) and ``spectator`` the name of the spectator
    array found for ``entry.spectator``.
    """

    entry: FigureEntry
    stem: str
    runs: list[ReportRun]
    run: ReportRun | None = None
    group: str | None = None
    input_name: str | None = None
    spectator: str | None = None


#: The figures of the run report by name, drawn in the order they were registered.
REPORT_FIGURES = Registry("report figure")


def report_figure(
    name: str,
    *,
    section: str,
    scope: str = "run",
    tasks: Iterable[str] = (),
    input_kind: str | None = None,
    spectator: str | None = None,
    model: str | None = None,
    explanations: bool = False,
    when: Callable[[ReportRun], bool] | None = None,
    description: str | None = None,
    plots: Iterable[str] = (),
) -> Callable:
    """Register ``draw(ctx, item) -> ReportFigure | list[ReportFigure]`` as a figure of the run report.

    The report draws every registered figure that applies: per run (``scope="run"``, the
    file stem is ``name``, suffixed ``_<run>`` when the report has several runs), once for
    all taggers (``"all"``), once per k-fold run (``"kfold"``, stem ``name_<run>``) or once
    per data input of ``input_kind`` (``"input"``, stem ``name_<input>``). A draw function
    that lacks something raises :class:`SkipFigure` with a note for the page.

    Parameters
    ----------
    name : str
        Registry name and file stem.
    section : str
        Page section: ``performance``, ``overtraining``, ``learning``, ``efficiency``,
        ``sculpting``, ``images``, ``anomaly``, ``multiclass``, ``explain``, ``analysis``.
    scope : str
        One of :data:`SCOPES`.
    tasks : iterable of str
        Tasks it applies to (``binary``, ``multiclass``, ``autoencoder``); empty: all.
    input_kind : str, optional
        The run needs a model input of this kind (scope ``run``), or the figure is drawn
        for each data input of this kind (scope ``input``).
    spectator : str, optional
        Spectator quantity it needs (``pt``, ``eta``, ``mass``); when the run has none, the
        figure is skipped with a note, else ``item.spectator`` is the array's name.
    model : str, optional
        Only for runs of this model (``config.model.name``).
    explanations : bool
        Only for runs with an ``explain/`` folder.
    when : callable, optional
        ``when(run) -> bool``, any further condition.
    description : str, optional
        What the figure shows, for notes ("efficiency against pt"); default ``name``.
    plots : iterable of str
        The :data:`hepnn.plotting.PLOTS` functions it draws with (checked, and listed in
        ``manifest.json``).

    Examples
    --------
    >>> @report_figure("score_mean", section="overtraining")  # doctest: +SKIP
    ... def score_mean(ctx, item):
    ...     plt = ctx.pyplot()
    ...     fig, ax = plt.subplots()
    ...     ax.hist(item.run.score_test)
    ...     return ReportFigure(name=item.stem, title="Score", caption="Test scores.", section="overtraining",
    ...                         variant=item.run.name, files=ctx.finish(fig, item.stem, ax))
    """
    tasks = tuple(tasks)
    plots = tuple(plots)
    sections = [key for key, _ in _SECTIONS]
    checks = (("section", section, sections, False), ("scope", scope, SCOPES, False),
              ("spectator", spectator, list(_SPECTATOR_PATTERNS), True))
    for what, value, valid, optional in checks:
        if not (optional and value is None) and value not in valid:
            raise UnknownNameError(value, f"report figure {what}", valid)
    for task in tasks:
        if task not in _TASKS:
            raise UnknownNameError(task, "task", list(_TASKS))
    for plot in plots:
        PLOTS.get(plot)
    if scope == "input" and input_kind is None:
        msg = f"report figure {name!r}: scope='input' needs input_kind= (the kind of input it is drawn for)"
        raise ValueError(msg)

    def add(draw: Callable) -> Callable:
        entry = FigureEntry(name=name, draw=draw, section=section, scope=scope, tasks=tasks, input_kind=input_kind,
                            spectator=spectator, model=model, explanations=explanations, when=when,
                            description=description or name, plots=plots, order=next(_order))
        REPORT_FIGURES.register(name, entry)
        return draw

    return add


def report_figures() -> list[FigureEntry]:
    """The registered report figures in the order they are drawn (registration order)."""
    return sorted((REPORT_FIGURES.get(name) for name in REPORT_FIGURES), key=lambda e: e.order)


def run_input_kinds(run: ReportRun) -> set[str]:
    """The kinds (``flat``, ``sequence``, ``image``, ...) of the run's model inputs (from its run spec)."""
    return {i.kind for i in run.test["spec"].inputs}


@report_figure("rejection", section="performance", scope="all", plots=("rejection",))
def _rejection_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    taggers, wps = d.taggers, d.working_points
    res = plot_rejection(taggers, working_points=wps, ratio=len(taggers) > 1)
    ref = next(iter(taggers))
    files = d.finish(res.figure, item.stem, res.ax)
    ratio = f" The lower panel is the ratio to {ref}." if len(taggers) > 1 else ""
    return ReportFigure(
        name=item.stem, section="performance", result=res, files=files,
        title="Background rejection against signal efficiency",
        caption=(f"Background rejection 1/eff_B (log scale) against signal efficiency on the test split for "
                 f"{len(taggers)} tagger(s), bands: binomial standard error.{ratio}{_weighting(*d.runs)}"),
        summary={"curves": list(res.lines), "auc": res.auc,
                 "rejection": {k: {f"{wp:g}": v for wp, v in r.items()} for k, r in res.rejections.items()}},
    )


@report_figure("roc", section="performance", scope="all", plots=("roc",))
def _roc_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    res = plot_roc(d.taggers)
    files = d.finish(res.figure, item.stem, res.ax)
    return ReportFigure(
        name=item.stem, section="performance", result=res, files=files, title="ROC curve",
        caption=("Signal efficiency against background efficiency on the test split; AUC in the legend."
                 + _weighting(*d.runs)),
        summary={"curves": list(res.lines), "auc": res.auc},
    )


def _finite_or_none(value: float) -> float | None:
    """``value`` as a float, None when NaN or infinite (JSON has no NaN)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float (nested in dicts, lists, arrays) as None, as in ``metrics.json``:
    ``json.dumps`` would write ``NaN``/``Infinity``, which is not JSON (jq, JavaScript and strict parsers refuse it)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@report_figure("rejection_folds", section="performance", scope="kfold")
def _folds_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    """Mean background rejection over the folds of a k-fold run with a band of +-1 standard deviation."""
    name, runs, wps = item.group, item.runs, d.working_points
    plt = d.pyplot()
    grid = np.linspace(0.1, 1.0, 181)
    curves, aucs, at_wps = [], [], []
    for run in runs:
        eff_s, eff_b, _ = efficiency_curve(run.is_sig_test.astype(int), run.score_test, run.weight_test)
        curves.append(rejection_at(eff_s, eff_b, grid))
        aucs.append(efficiency_auc(eff_s, eff_b))
        # at the working points themselves: one below the drawn grid (< 0.1) is not the grid's first value
        at_wps.append(np.atleast_1d(rejection_at(eff_s, eff_b, np.asarray(wps, dtype=float))) if len(wps) else [])
    curves = np.asarray(curves, dtype=float)
    # where a fold keeps no background (small folds, low efficiency) its rejection is infinite, and so is the mean:
    # the curve is drawn only where every fold is finite, never as a mean over the other folds
    all_finite = np.all(np.isfinite(curves), axis=0)
    mean, std = np.full(len(grid), np.nan), np.full(len(grid), np.nan)
    mean[all_finite] = np.mean(curves[:, all_finite], axis=0)
    if len(runs) > 1:
        std[all_finite] = np.std(curves[:, all_finite], axis=0, ddof=1)
    fig, ax = plt.subplots()
    line, = ax.plot(grid, mean, label=f"{name}: mean of {len(runs)} folds (AUC {np.mean(aucs):.4f} ± {np.std(aucs, ddof=1):.4f})")
    band = ax.fill_between(grid, np.clip(mean - std, 1.0, None), mean + std, alpha=0.3, color=line.get_color(),
                           label="± 1 standard deviation over folds")
    ax.set_yscale("log")
    drawn = mean[np.isfinite(mean)]
    if not len(drawn) or np.ptp(drawn) == 0:  # one value left (or none): a log axis needs a range around it
        centre = float(drawn[0]) if len(drawn) and drawn[0] > 0 else 1.0
        ax.set_ylim(centre / 2, centre * 10)
    ax.set(xlabel="Signal efficiency $\\varepsilon_S$", ylabel="Background rejection $1/\\varepsilon_B$")
    ax.legend()
    stem = item.stem
    files = d.finish(fig, stem, ax)
    infinite_note = ""
    if not all_finite.all():
        top = float(grid[~all_finite].max())
        n_max = int(np.max(np.count_nonzero(~np.isfinite(curves), axis=0)))
        infinite_note = (f" Up to {n_max} of the {len(runs)} folds keep no background jet at signal efficiencies up to "
                         f"{top:.3g}: their rejection, and so the mean, is infinite there and not drawn.")
    at = {}
    for i, wp in enumerate(wps):
        folds = np.array([r[i] for r in at_wps], dtype=float)
        n_infinite = int(np.count_nonzero(~np.isfinite(folds)))
        finite_folds = folds[np.isfinite(folds)]
        at[f"{wp:g}"] = {
            # infinite (null in manifest.json) when a fold's is: a mean over the other folds would be too low
            "mean": float(np.mean(folds)) if not n_infinite else float("inf"),
            "std": float(np.std(folds, ddof=1)) if not n_infinite and len(folds) > 1 else None,
            "n_infinite": n_infinite,
            "mean_of_finite_folds": _finite_or_none(np.mean(finite_folds)) if len(finite_folds) else None,
        }
        if n_infinite:
            d.note(f"{name}: k-fold rejection at eff_S = {wp:g}: {n_infinite} of {len(runs)} folds have infinite "
                   f"rejection (no background jet of their test fold passes the cut), so the mean is infinite; the "
                   f"mean of the {len(finite_folds)} other folds is "
                   + (f"{np.mean(finite_folds):.4g}" if len(finite_folds) else "undefined")
                   + " (use more jets per fold or a higher working point)")
    return ReportFigure(
        name=stem, section="performance", variant=name, result={"line": line, "band": band, "curves": curves},
        files=files, title=f"k-fold spread: {name}",
        caption=(f"Background rejection of the {len(runs)} fold models of {name}, each on the jets of its own fold "
                 "(never seen in its training): mean and a band of one standard deviation over the folds."
                 + infinite_note + _weighting(*runs)),
        summary={"folds": len(runs), "auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs, ddof=1)),
                 "rejection": at},
    )


@report_figure("scores", section="overtraining", plots=("scores",))
def _scores_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    labels_te = np.asarray(run.test["label"], dtype=int)
    train = run.score_train is not None
    xlabel = {"autoencoder": "Reconstruction error",
              "multiclass": f"p({run.classes[run.signal]})"}.get(run.task, "Tagger score")
    value_range = None
    if run.task == "autoencoder":  # errors are no probabilities: bins over their range, not (0, 1) (1e-4 errors)
        values = np.concatenate([run.score_test] + ([run.score_train] if train else []))
        values = values[np.isfinite(values)]
        if len(values):
            lo, hi = float(values.min()), float(values.max())
            value_range = (lo, hi if hi > lo else lo + 1.0)
    res = plot_scores(
        run.score_test, labels_te,
        run.score_train if train else None, np.asarray(run.train["label"], dtype=int) if train else None,
        class_names=run.classes, xlabel=xlabel, test_weights=run.weight_test,
        train_weights=run.weight_train if train else None, range=value_range,
    )
    files = d.finish(res.figure, stem, res.ax)
    files.append(d.hists(res.hists, stem))
    ks = {c: r.pvalue for c, r in res.ks.items()}
    check = (" Training split as points; the legend gives the Kolmogorov-Smirnov p-value of train against test "
             "per class (a small p-value hints at overtraining).") if train else " No training split was found."
    return ReportFigure(
        name=stem, section="overtraining", variant=run.name, result=res, files=files,
        title=f"Score distributions: {run.name}",
        caption=f"{xlabel} per true class, test split filled, unit area.{check}{_weighting(run)}",
        summary={"ks_pvalue": ks},
    )


@report_figure("learning", section="learning", plots=("learning_curves",))
def _learning_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    path = RunDirectory(run.path).history
    if not path.is_file():
        raise SkipFigure(f"{run.name}: no learning curves ({path.name} not found)")
    history = read_history(path)
    metrics = [m for m in ("loss", "auc", "accuracy") if m in history]
    if not metrics:
        raise SkipFigure(f"{run.name}: no learning curves (history.csv has no loss column)")
    res = plot_learning_curves(history, metrics)
    files = d.finish(res.figure, stem, res.axes[0])
    return ReportFigure(
        name=stem, section="learning", variant=run.name, result=res, files=files,
        title=f"Learning curves: {run.name}",
        caption=f"{', '.join(metrics)} per epoch on the training (solid) and validation (dashed) splits.",
        summary={"epochs": int(len(history["epoch"]))},
    )


def _edges(x: np.ndarray, n_bins: int = 6) -> np.ndarray | None:
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return None
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)))
    return edges if len(edges) >= 3 else None


def _two_classes(run: ReportRun) -> bool:
    """Efficiencies need signal and background: an autoencoder run qualifies with more than one class."""
    return run.task != "autoencoder" or len(set(np.unique(run.test["label"]).tolist())) > 1


def _efficiency_figure(d: ReportContext, item: FigureItem, *, flat: bool) -> ReportFigure:
    run, stem, quantity, key, wp = item.run, item.stem, item.entry.spectator, item.spectator, d.working_point
    x = np.asarray(run.test["data"][key], dtype=float)
    edges = _edges(x)
    if edges is None or not run.is_sig_test.any() or run.is_sig_test.all():
        raise SkipFigure(f"{run.name}: no efficiency against {quantity} (too few distinct values or one class only)")
    plt = d.pyplot()
    fig, (ax_e, ax_r) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"wspace": 0.3})
    y = run.is_sig_test.astype(int)
    xlabel = _SPECTATOR_LABELS[quantity]
    try:
        res_e = plot_efficiency(x, run.score_test, y, edges, working_point=wp, flat=flat, weights=run.weight_test,
                                xlabel=xlabel, ax=ax_e)
        res_r = plot_efficiency(x, run.score_test, y, edges, quantity="rejection", working_point=wp, flat=flat,
                                weights=run.weight_test, xlabel=xlabel, ax=ax_r)
    except ValueError as err:  # e.g. no background jet with a value of the variable: nothing to draw
        plt.close(fig)
        raise SkipFigure(f"{run.name}: no efficiency against {quantity} ({err})") from None
    files = d.finish(fig, stem, ax_e)
    mode = ("flat signal efficiency: a cut per bin giving the working point in every bin" if flat
            else "fixed cut giving the working point over all test jets")
    return ReportFigure(
        name=stem, section="efficiency", variant=run.name, result=(res_e, res_r), files=files,
        title=f"Efficiency and rejection against {quantity} ({'flat' if flat else 'fixed cut'}): {run.name}",
        caption=(f"Left: signal and background efficiency, right: background rejection, in bins of {key} "
                 f"(quantile bins), test split, working point eff_S = {wp:g}, {mode}. "
                 "Clopper-Pearson 68% intervals." + _weighting(run)),
        summary={"variable": key, "working_point": wp, "flat": flat, "eff_s": res_e.table.eff_s.tolist()},
    )


for _quantity in ("pt", "eta"):
    for _flat in (False, True):
        report_figure(f"efficiency_{_quantity}_{'flat' if _flat else 'fixed'}", section="efficiency",
                      spectator=_quantity, when=_two_classes, description=f"efficiency against {_quantity}",
                      plots=("efficiency",))(functools.partial(_efficiency_figure, flat=_flat))


@report_figure("mass_sculpting", section="sculpting", spectator="mass", when=_two_classes,
               description="mass sculpting plot", plots=("mass_sculpting",))
def _sculpting_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem, key, wp = item.run, item.stem, item.spectator, d.working_point
    if not run.is_sig_test.any() or run.is_sig_test.all():
        raise SkipFigure(f"{run.name}: no mass sculpting plot (the test split has one class only)")
    wps = tuple(sorted({float(wp), 0.3}, reverse=True))
    xlabel = _SPECTATOR_LABELS["mass"] if "mass" in key.lower() else key.removeprefix("spec_")  # a decorrelate variable
    res = plot_mass_sculpting(run.test["data"][key], run.score_test, run.is_sig_test.astype(int), working_points=wps,
                              weights=run.weight_test, xlabel=xlabel)
    empty = ", ".join(f"eff_S = {w:g}" for w in res.empty)
    if res.empty:  # every background jet scores below the cut: nothing to compare there (no empty histogram drawn)
        d.note(f"{run.name}: mass sculpting plot: no background jet of the test split passes the cut at {empty}, "
               "so the sculpting cannot be shown there (not drawn); use more test jets or a higher working point")
    files = d.finish(res.figure, stem, res.ax)
    files.append(d.hists(res.hists, stem))
    divergences = ", ".join(f"{w:g}: {v:.3g}" for w, v in res.jsd.items() if w not in res.empty)
    divergences = f" Jensen-Shannon divergence to the distribution before the cut: {divergences}." if divergences else ""
    missing = f" No background jet passes the cut at {empty}: not drawn." if res.empty else ""
    return ReportFigure(
        name=stem, section="sculpting", variant=run.name, result=res, files=files,
        title=f"Background mass before and after the cut: {run.name}",
        caption=(f"Background {key} distribution of the test split without a cut and after cuts at signal "
                 f"efficiencies {', '.join(f'{w:g}' for w in wps)} (unit area).{divergences}{missing}"
                 + _weighting(run)),
        summary={"variable": key, "jsd": {f"{w:g}": v for w, v in res.jsd.items()},
                 "no_background_passes": [f"{w:g}" for w in res.empty]},
    )


@report_figure("rejection_vs_sculpting", section="sculpting", scope="all", plots=("rejection_vs_sculpting",))
def _decorrelation_figure(d: ReportContext, item: FigureItem) -> ReportFigure | None:
    """One point per run: rejection at 50% signal efficiency against 1/JSD of the mass (several runs)."""
    if len(d.runs) < 2:
        return None

    entries = {r.name: r.metrics.get("sculpting") for r in d.runs if isinstance(r.metrics.get("sculpting"), dict)}
    if not entries:
        raise SkipFigure("no rejection vs mass sculpting plot (no run has a mass spectator in data.spectators)")
    try:
        res = plot_rejection_vs_sculpting(entries)
    except ValueError as err:
        raise SkipFigure(str(err)) from None
    files = d.finish(res.figure, "rejection_vs_sculpting", res.ax)
    variable = next(iter(entries.values())).get("variable", "mass")
    return ReportFigure(
        name="rejection_vs_sculpting", section="sculpting", result=res, files=files,
        title="Background rejection against mass sculpting",
        caption=(f"Background rejection 1/eff_B against 1/JSD of the background {variable} distributions passing "
                 "and failing the cut at 50% signal efficiency (test split, one point per run; "
                 "top right: strong and decorrelated)."),
        summary={"points": {k: {"inv_jsd_50": v[0], "rejection_50": v[1]} for k, v in res.points.items()}},
    )


@report_figure("images", section="images", scope="input", input_kind="image", plots=("average_images",))
def _images_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, input_name = item.run, item.input_name
    images = np.asarray(run.test["data"][input_name])
    labels = np.asarray(run.test["label"], dtype=int)
    if images.ndim == 4 and images.shape[-1] != 1:
        images = images.sum(axis=-1)
    present = set(np.unique(labels).tolist())
    diff = None
    if run.task == "binary" and {0, 1} <= present:
        diff = (run.signal, 1 - run.signal)
    elif len(present) >= 2 and run.signal in present:
        other = min(c for c in present if c != run.signal)
        diff = (run.signal, other)
    spec = run.config.data.inputs.get(input_name)
    half = float(getattr(spec, "extent", 0.8))
    res = plot_average_images(images, labels, class_names=run.classes, difference=diff, log=False,
                              extent=(-half, half, -half, half))
    stem = item.stem
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="images", variant=None, result=res, files=files,
        title=f"Average jet image: {input_name}",
        caption=(f"Mean of the (preprocessed) '{input_name}' images per class on the test split"
                 + (f", and the difference {run.classes[diff[0]]} minus {run.classes[diff[1]]}." if diff else ".")),
    )


def _run_model(run: ReportRun, cache: dict) -> Any:
    """The run's trained model (loaded once per report)."""
    if run.name not in cache:
        cache[run.name] = load_run_model(RunDirectory(run.path).model)
    return cache[run.name]


def _view(d: ReportContext, run: ReportRun, name: str, what: str) -> dict[str, np.ndarray]:
    """A look inside the run's model (:mod:`hepnn.explain.views`): the one the explain step stored
    for these data, else computed here (the model loaded once per report)."""
    views = d.cache.setdefault("views", {})
    if (run.name, name) not in views:
        try:
            arrays = stored_view(run.path, name, run.key)
            if arrays is None:
                arrays = compute_view(name, _run_model(run, d.cache.setdefault("models", {})), run.test)
        except ViewUnavailable as err:
            arrays = err
        views[run.name, name] = arrays
    arrays = views[run.name, name]
    if isinstance(arrays, ViewUnavailable):
        raise SkipFigure(f"{run.name}: no {what} ({arrays})")
    return arrays


@report_figure("efn_filters", section="explain", model="efn", plots=("efn_filters",))
def _efn_filters_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    grid = _view(d, run, "efn_filters", "EFN filters")
    input_name, columns, extent = str(grid["input"]), grid["columns"].tolist(), float(grid["extent"])
    res = plot_efn_filters(grid["filters"], grid["eta"], grid["phi"], n_filters=8)
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="explain", variant=run.name, result=res, files=files,
        title=f"EFN filters in the (Δη, Δφ) plane: {run.name}",
        caption=(f"The per-particle network Φ of the Energy Flow Network evaluated on a grid of its angular inputs "
                 f"('{input_name}' columns {columns}, in the units the model sees them, over the range holding 98% of "
                 f"the test-split particles); the {len(res.indices)} filters with the largest spread of "
                 f"{grid['filters'].shape[0]}. The jet's latent vector is the sum of these filters at each particle's "
                 "position weighted by its pT fraction: the model's whole view of the jet."),
        summary={"filters_drawn": res.indices, "extent": extent},
    )


@report_figure("conv_filters", section="explain", tasks=("binary", "multiclass"), input_kind="image",
               plots=("conv_filters",))
def _conv_filters_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    maps = _view(d, run, "feature_maps", "feature maps")
    kernel = np.asarray(maps["filters"])
    res = plot_conv_filters(kernel, n_filters=16)
    files = d.finish(res.figure, stem, None)
    layer = str(maps["filters_layer"])
    return ReportFigure(
        name=stem, section="explain", variant=run.name, result=res, files=files,
        title=f"Learned filters of the first convolution: {run.name}",
        caption=(f"Kernels of '{layer}' ({kernel.shape[0]}x{kernel.shape[1]} pixels, summed over the "
                 f"{kernel.shape[2]} input channel(s)), first {len(res.indices)} of {kernel.shape[3]}; red positive, "
                 "blue negative."),
        summary={"layer": layer, "kernel_shape": list(kernel.shape)},
    )


@report_figure("feature_maps", section="explain", tasks=("binary", "multiclass"), input_kind="image",
               plots=("feature_maps",))
def _feature_maps_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    maps = _view(d, run, "feature_maps", "feature maps")
    layers = [str(n) for n in maps["layers"]]
    i = len(layers) - 1  # the deepest recorded layer
    means = np.asarray(maps[f"mean_maps_{i}"])
    classes = [int(c) for c in np.asarray(maps["classes"])]
    rows = {f"mean {run.classes[c] if c < len(run.classes) else c}": m for c, m in zip(classes, means)}
    res = plot_feature_maps(rows, n_maps=6)
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="explain", variant=run.name, result=res, files=files,
        title=f"Feature maps of {layers[i]}: {run.name}",
        caption=(f"Activations of the first channels of '{layers[i]}' averaged over the test-split jets of each "
                 f"class ({int(maps['n_jets'])} jets): which parts of the jet image each learned feature responds to "
                 "(Δη along x, Δφ along y, as the jet images)."),
        summary={"layer": layers[i], "classes": [run.classes[c] for c in classes if c < len(run.classes)]},
    )


@report_figure("confusion", section="multiclass", tasks=("multiclass",), plots=("confusion_matrix",))
def _confusion_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    probs = np.asarray(run.test["outputs"])
    # the probabilities themselves: confusion_matrix takes their argmax and refuses NaN (argmax made it a class)
    res = plot_confusion_matrix(np.asarray(run.test["label"], dtype=int), probs, class_names=run.classes,
                                weights=run.weight_test)
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="multiclass", variant=run.name, result=res, files=files,
        title=f"Confusion matrix: {run.name}",
        caption=("True against predicted class (highest probability) on the test split, normalised per true class."
                 + _weighting(run)),
    )


@report_figure("reconstruction", section="anomaly", tasks=("autoencoder",), plots=("reconstruction_error",))
def _reconstruction_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    errors = run.score_test
    labels = np.asarray(run.test["label"], dtype=int)
    # every class but the trained-on background is anomalous, as in metrics.json's AUC and the ROC plots
    anomaly = [c for c in np.unique(labels).tolist() if c != run.signal]
    res = plot_reconstruction_error(errors, labels, anomaly=anomaly, class_names=run.classes,
                                    log_x=bool(np.all(errors > 0)), weights=run.weight_test)
    files = d.finish(res.figure, stem, res.ax)
    files.append(d.hists(res.hists, stem))
    return ReportFigure(
        name=stem, section="anomaly", variant=run.name, result=res, files=files,
        title=f"Reconstruction error: {run.name}",
        caption=(f"Per-jet reconstruction error per class on the test split (background: "
                 f"{run.classes[run.signal]}); its ROC as anomaly score is in the performance section."
                 + _weighting(run)),
        summary={"auc": res.auc},
    )


@report_figure("latent", section="anomaly", tasks=("autoencoder",), plots=("latent",))
def _latent_figure(d: ReportContext, item: FigureItem) -> ReportFigure:
    run, stem = item.run, item.stem
    latent = _view(d, run, "latent", "latent-space plot")["latent"]
    if np.ndim(latent) == 2 and np.shape(latent)[1] > 2 and len(latent) < 2:
        raise SkipFigure(f"{run.name}: no latent-space plot: its PCA projection needs at least 2 test jets, "
                         f"the test split has {len(latent)}")
    res = plot_latent(latent, np.asarray(run.test["label"], dtype=int), class_names=run.classes)
    files = d.finish(res.figure, stem, res.ax)
    return ReportFigure(
        name=stem, section="anomaly", variant=run.name, result=res, files=files,
        title=f"Latent space: {run.name}",
        caption="Test jets in the autoencoder's latent space, projected on its first two principal components.",
    )


def _explain_values_figure(d: ReportContext, run: ReportRun, method: str, npz: Path, input_name: str, stem: str):
    with np.load(npz, allow_pickle=False) as f:
        values = np.asarray(f[f"values_{input_name}"], dtype=float)
        names_key = f"feature_names_{input_name}"
        names = [str(n) for n in f[names_key]] if names_key in f.files else None
    plt = d.pyplot()
    if values.ndim == 2:
        res = plot_importance(values, names)
        ax = res.ax
        fig = ax.figure
        what = "per feature"
    elif values.ndim == 3:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"wspace": 0.3})
        per_feature = np.abs(values).sum(axis=1)
        res = (plot_importance(per_feature, names, ax=ax), plot_position_importance(values, ax=ax2))
        what = "per feature (summed over constituents, left) and per constituent position (right)"
    elif values.ndim == 4:
        mean = np.mean(np.abs(values), axis=0).sum(axis=-1)
        half = float(getattr(run.config.data.inputs.get(input_name), "extent", 0.8))
        res = plot_heatmap(mean, symmetric=False, colorbar_label="Mean |attribution|",
                           extent=(-half, half, -half, half))
        ax = res.ax
        fig = ax.figure
        what = "per pixel"
    else:
        raise SkipFigure(f"{run.name}: explanation {method}/{input_name} has values of shape {values.shape}, "
                    "expected 2 to 4 dimensions")
    files = d.finish(fig, stem, None)
    return ReportFigure(
        name=stem, section="explain", variant=run.name, result=res, files=files,
        title=f"Mean |attribution| ({method}, {input_name}): {run.name}",
        caption=f"Mean absolute {method} attribution {what} for input '{input_name}', from {npz.name}.",
    )


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst, suffix=f".part{src.suffix}") as tmp:
        shutil.copyfile(src, tmp)


def _explanation_tasks(d: ReportContext, run: ReportRun, out: Path) -> list[tuple[str, Callable[[], Any]]]:
    tasks: list[tuple[str, Callable[[], Any]]] = []
    root = run.path / "explain"
    if not root.is_dir() or not _inside(run.path, root):
        return tasks

    def outside(file: Path) -> bool:
        """A symlink out of the run directory: ignored, with a note in the report."""
        if _inside(run.path, file):
            return False

        def note(file=file):
            raise SkipFigure(f"{run.name}: ignored {file}: a symlink to {os.path.realpath(file)}, outside the run directory")

        tasks.append((f"ignored {file.name}", note))
        return True

    # a hidden folder (a staged .tmp/.old copy of an explanation) is no explainer's output
    for method_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if outside(method_dir):
            continue
        method = method_dir.name
        for png in sorted(method_dir.glob("*.png")):
            if outside(png):
                continue
            def copy_png(png=png, method=method):
                rel = Path("explain") / _safe(run.name) / _safe(method) / png.name
                _copy(png, out / rel)
                files = [rel.as_posix()]
                pdf = png.with_suffix(".pdf")
                if pdf.is_file() and _inside(run.path, pdf):
                    _copy(pdf, out / rel.with_suffix(".pdf"))
                    files.append(rel.with_suffix(".pdf").as_posix())
                return ReportFigure(
                    name=f"explain_{_safe(run.name)}_{_safe(method)}_{png.stem}", section="explain",
                    variant=run.name, files=files, title=f"{method}: {png.stem} ({run.name})",
                    caption=f"Explanation plot written by the {method} explainer ({png.relative_to(run.path)}).",
                )

            tasks.append((f"explain {method}/{png.name}", copy_png))
        npz = method_dir / "values.npz"
        if npz.is_file() and not outside(npz):
            try:
                with np.load(npz, allow_pickle=False) as f:
                    inputs = [k[len("values_"):] for k in f.files if k.startswith("values_")]
            except (OSError, ValueError) as err:
                def bad(npz=npz, err=err):
                    raise SkipFigure(f"{run.name}: cannot read {npz}: {err}")

                tasks.append((f"explain {method}", bad))
                continue
            for input_name in inputs:
                stem = f"importance_{_safe(run.name)}_{_safe(method)}_{_safe(input_name)}"
                tasks.append((f"importance {method}/{input_name}",
                              lambda m=method, i=input_name, s=stem, p=npz: _explain_values_figure(d, run, m, p, i, s)))
    return tasks


@report_figure("explanations", section="explain", explanations=True,
               plots=("importance", "position_importance", "heatmap"))
def _explanation_figures(d: ReportContext, item: FigureItem) -> list[ReportFigure]:
    """The PNGs the explainers wrote into ``RUN_DIR/explain/<method>/`` and the mean |attribution| of their values."""
    figures = []
    for _desc, task in _explanation_tasks(d, item.run, d.out):
        try:
            figures.append(task())
        except SkipFigure as skip:
            d.note(str(skip))
    return figures


def _hook_owner(hook: Callable) -> str:
    """How errors name a plots hook: its analysis plugin, or the function."""
    owner = getattr(hook, "__self__", None)
    return f"analysis plugin {type(owner).__name__}" if owner is not None else f"hook {getattr(hook, '__qualname__', hook)}"


def _call_plots_hook(hook: Callable[[Path, dict], Iterable[Any]], out: Path, results: dict) -> Iterable[Any]:
    """``hook(out, results)`` as a list of paths; an exception it raises becomes a :class:`PluginError` naming plugin and hook."""
    try:
        paths = hook(out, results)
    except HepnnError:
        raise
    except Exception as err:
        who = _hook_owner(hook)
        msg = f"report {out}: {who}: its plots(report_dir, results) hook raised {type(err).__name__}: {err}"
        raise PluginError(msg) from err
    if paths is None or isinstance(paths, (str, os.PathLike)):
        return [] if paths is None else [paths]  # one path, not its characters
    try:
        paths = list(paths)
    except TypeError:
        who = _hook_owner(hook)
        msg = (f"report {out}: {who}: its plots(report_dir, results) hook returned {type(paths).__name__}; "
               "return a path or a list of paths (or None)")
        raise PluginError(msg) from None
    bad = [p for p in paths if not isinstance(p, (str, os.PathLike))]
    if bad:
        who = _hook_owner(hook)
        msg = (f"report {out}: {who}: its plots(report_dir, results) hook returned {type(bad[0]).__name__} "
               f"{bad[0]!r} among its paths; return a path or a list of paths (or None)")
        raise PluginError(msg)
    return paths


def _hook_figures(paths: Iterable[Any], out: Path) -> list[ReportFigure]:
    figures = []
    for item in paths or []:
        src = Path(item)
        if not src.is_file():
            continue
        try:
            rel = src.resolve().relative_to(out.resolve())
        except ValueError:
            rel = Path("analysis") / src.name
            _copy(src, out / rel)
        if src.suffix.lower() not in (".png", ".svg", ".jpg", ".jpeg", ".pdf"):
            continue
        if src.suffix.lower() == ".pdf" and any(src.with_suffix(s).is_file() for s in (".png", ".svg")):
            continue
        files = [rel.as_posix()]
        pdf = src.with_suffix(".pdf")
        if src.suffix.lower() != ".pdf" and pdf.is_file():
            rel_pdf = rel.with_suffix(".pdf")
            if not (out / rel_pdf).is_file():
                _copy(pdf, out / rel_pdf)
            files.append(rel_pdf.as_posix())
        figures.append(ReportFigure(name=f"analysis_{src.stem}", section="analysis", files=files,
                                    title=src.stem, caption="Plot drawn by the analysis' plots() hook."))
    return figures


def _baseline_metrics(extra: dict, wps: tuple) -> dict:
    return {name: binary_metrics(s, y, wps, w) for name, (s, y, w) in extra.items()}


def _fmt(value: Any, none: str = "&ndash;") -> str:
    """A table cell: ``none`` for a missing (``null``) value, which is infinite only for a rejection."""
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _multiclass_accuracy(run: ReportRun) -> float | str:
    """The run's overall accuracy: from ``metrics.json``, else from its test predictions (weighted as the metrics)."""
    if "accuracy" in run.metrics:
        return run.metrics["accuracy"]
    correct = np.argmax(np.asarray(run.test["outputs"]), axis=1) == np.asarray(run.test["label"])
    weights = np.ones(len(correct)) if run.weight_test is None else np.asarray(run.weight_test, dtype=float)
    total = float(np.sum(weights))
    return round(float(np.sum(weights * correct)) / total, 6) if total > 0 else ""


def _metric_rows(runs: list[ReportRun], baselines: dict) -> list[tuple[str, dict]]:
    rows = []
    for run in runs:
        m = run.metrics
        if "auc" in m:
            rows.append((run.name, m))
        elif run.task == "multiclass":  # the overall accuracy (the class of highest probability is the true one)
            rows.append((f"{run.name}: all classes (highest probability)",
                         {"accuracy": _multiclass_accuracy(run), "n_test": m.get("n_test", len(run.test["label"]))}))
        for cname, cm in (m.get("classes") or {}).items():
            rows.append((f"{run.name}: {cname} vs rest", cm))
        for dname, dm in (m.get("discriminants") or {}).items():
            rows.append((f"{run.name}: {dname.replace('_', ' ')}", dm))
    rows.extend((f"{name} (baseline)", m) for name, m in baselines.items())
    return rows


#: pieces of the page; the page itself is ``templates/report.html`` (``string.Template``, values HTML-escaped)
_ROW = Template("<tr><td>$name</td><td>$auc</td><td>$accuracy</td>$cells<td>$n_test</td></tr>")
_TABLE = Template("<table><tr><th>Tagger</th><th>AUC</th><th>Accuracy</th>$head<th>Test jets</th></tr>\n"
                  "$rows\n</table>")
_WP_HEAD = Template("<th>1/&epsilon;<sub>B</sub> at &epsilon;<sub>S</sub>=$wp</th>")
_FIGURE = Template('<figure id="$id">$img<figcaption><b>$title.</b> $caption $links</figcaption></figure>')
_IMG = Template('<img src="$src" alt="$alt">')
_LINK = Template('<a href="$href">$text</a>')


def _page_template() -> Template:
    return Template(resources.files(__package__).joinpath("templates/report.html").read_text(encoding="utf-8"))


def _metrics_table(runs: list[ReportRun], baselines: dict) -> str:
    esc = html.escape
    rows = _metric_rows(runs, baselines)
    if not rows:
        return ""
    wps: list[str] = []
    for _, m in rows:
        wps.extend(k for k in (m.get("rejection") or {}) if k not in wps)
    body = []
    for name, m in rows:
        rej = m.get("rejection") or {}
        cells = "".join(f"<td>{_fmt(rej.get(wp, ''), '&infin;') if wp in rej else ''}</td>" for wp in wps)
        body.append(_ROW.substitute(name=esc(name), auc=_fmt(m.get("auc", "")), accuracy=_fmt(m.get("accuracy", "")),
                                    cells=cells, n_test=_fmt(m.get("n_test", ""))))
    head = "".join(_WP_HEAD.substitute(wp=esc(wp)) for wp in wps)
    return _TABLE.substitute(head=head, rows="\n".join(body))


def _figure_html(fig: ReportFigure) -> str:
    esc = html.escape
    images = [f for f in fig.files if f.rsplit(".", 1)[-1] in ("png", "svg", "jpg", "jpeg")]
    others = [f for f in fig.files if f not in images]
    links = " ".join(_LINK.substitute(href=esc(f, quote=True), text=esc(f.rsplit(".", 1)[-1].upper())) for f in others)
    img = _IMG.substitute(src=esc(images[0], quote=True), alt=esc(fig.title, quote=True)) if images else ""
    return _FIGURE.substitute(id=esc(fig.name, quote=True), img=img, title=esc(fig.title), caption=esc(fig.caption),
                              links=links)


def _html(report: Report, runs: list[ReportRun], baselines: dict, title: str) -> str:
    esc = html.escape
    notes = ""
    if report.notes:
        items = "\n".join(f'<li class="note">{esc(n)}</li>' for n in report.notes)
        notes = f"<h2>Notes</h2><ul>\n{items}\n</ul>"
    sections = []
    for key, heading in _SECTIONS:
        figs = [f for f in report.figures if f.section == key]
        if figs:
            sections.append(f"<h2>{esc(heading)}</h2>")
            sections.extend(_figure_html(f) for f in figs)
    return _page_template().substitute(
        title=esc(title),
        runs=", ".join(f"{esc(r.name)} (<code>{esc(str(r.path))}</code>, {esc(r.task)})" for r in runs),
        metrics=_metrics_table(runs, baselines), notes=notes, sections="\n".join(sections),
    )


def _figure_items(runs: list[ReportRun], fold_groups: dict, several: bool) -> list[FigureItem]:
    """Every figure to draw, from the registry: figures of all taggers, of each k-fold run, then of each run."""
    entries = report_figures()
    items = [FigureItem(e, stem=e.name, runs=runs) for e in entries if e.scope == "all"]
    by_name = {r.name: r for r in runs}
    for e in (e for e in entries if e.scope == "kfold"):
        items.extend(FigureItem(e, stem=f"{e.name}_{_safe(group)}", runs=[by_name[n] for n in names], group=group)
                     for group, (_path, names) in fold_groups.items())
    inputs_done: set[tuple[str, str]] = set()
    for run in runs:
        sfx = f"_{_safe(run.name)}" if several else ""
        for e in entries:
            if e.scope not in ("run", "input") or not e.applies_to(run):
                continue
            if e.scope == "run":
                items.append(FigureItem(e, stem=f"{e.name}{sfx}", runs=[run], run=run))
                continue
            for name, spec in run.config.data.inputs.items():
                if getattr(spec, "kind", None) == e.input_kind and name in run.test["data"] \
                        and (e.name, name) not in inputs_done:
                    inputs_done.add((e.name, name))
                    items.append(FigureItem(e, stem=f"{e.name}_{_safe(name)}", runs=[run], run=run, input_name=name))
    return items


def _draw(d: ReportContext, item: FigureItem) -> list[ReportFigure]:
    """Draw one figure (or several): a missing spectator or a :class:`SkipFigure` becomes a note."""
    e, run = item.entry, item.run
    try:
        if e.spectator is not None and run is not None:
            # the mass is the one metrics.json's sculpting uses: training.decorrelate.variable first
            item.spectator = (sculpting_variable(run.config, run.test["data"]) if e.spectator == "mass"
                              else find_spectator(run.test["data"], e.spectator))
            if item.spectator is None:
                raise SkipFigure(f"{run.name}: no {e.description} (no spectator matching "
                                 f"{' or '.join(_SPECTATOR_PATTERNS[e.spectator])}; add it to data.spectators)")
        with np.errstate(divide="ignore", invalid="ignore"):  # empty bins are expected in small samples
            result = e.draw(d, item)
    except SkipFigure as skip:
        d.note(str(skip))
        return []
    if result is None:
        return []
    drawn = [result] if isinstance(result, ReportFigure) else list(result)
    for fig in drawn:
        fig.plots = fig.plots or list(e.plots)
        fig.summary = _json_safe(fig.summary)  # written to manifest.json: an infinite rejection is null there
    return drawn


def build_report(
    run_dirs: Mapping[str, str | os.PathLike] | str | os.PathLike,
    out: str | os.PathLike | None = None,
    data: Mapping[str, Any] | None = None,
    extra_scores: Mapping[str, Any] | None = None,
    *,
    analysis: Any = None,
    hook: Callable[[Path, dict], Iterable[Any]] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Report:
    """Draw the report of one or several runs and return what was drawn; see :func:`make_report`.

    Parameters
    ----------
    run_dirs, out, data, extra_scores, force
        As in :func:`make_report`.
    analysis : hepnn.Analysis, optional
        Used to read the data (its ``select``/``labels`` hooks) when ``data`` is None.
    hook : callable, optional
        ``hook(report_dir, results) -> paths``, e.g. ``analysis.plots``; ``results`` is
        ``{variant: {"run_dir", "metrics", "test", "train"}}`` (``test``/``train`` as
        returned by :func:`hepnn.training.evaluate.predict_split`). Returned images are shown.
    progress : bool
        Progress bars on stderr (only when stderr is a terminal).

    Returns
    -------
    Report
    """
    runs_in, fold_groups = _expand_folds(_normalise_runs(run_dirs))
    several = len(runs_in) > 1
    if out is None:
        first = next(iter(runs_in.values()))
        out = (first.parent / "report") if several else (first / "report")
    with claim(Path(out), "report", force=force) as out:
        written = _retire_earlier_report(out)
        report = _build_report(runs_in, fold_groups, several, out, data, extra_scores, analysis, hook, progress,
                               written)
        _prune_earlier_files(out, written.files, report)
        return report


#: what a report writes last (``index.html``) and the listing of its files (``manifest.json``): removed first on a
#: re-run, so a folder killed part-way never shows an old page beside new plots
_COMPLETION_FILES = ("index.html", "manifest.json", "metrics.json")
#: the files earlier reports of the folder wrote (their manifests' lists, and the figures of a re-run so far), kept
#: until a complete report has pruned them: a re-run killed before the end still knows them
_EARLIER_FILES = ".hepnn-report-files.json"


class _WrittenFiles:
    """The files reports wrote into ``out`` (relative paths), kept in ``out/.hepnn-report-files.json``."""

    def __init__(self, out: Path, files: set[str]):
        self.path = out / _EARLIER_FILES
        self.files = set(files)
        if self.files:
            write_json(self.path, sorted(self.files))

    def add(self, figures: Iterable[ReportFigure]) -> None:
        """Record the files of ``figures`` (as they are drawn: a report killed later still knows them)."""
        new = {f for fig in figures for f in fig.files} - self.files
        if new:
            self.files |= new
            write_json(self.path, sorted(self.files))


def _manifest_files(path: Path) -> set[str]:
    """The files (relative paths) the report manifest ``path`` lists; empty when missing or unreadable."""
    try:
        manifest = read_json(path)
    except (OSError, ValueError):
        return set()
    figures = manifest.get("figures") if isinstance(manifest, dict) else None
    files = set()
    for figure in figures if isinstance(figures, list) else []:
        listed = figure.get("files") if isinstance(figure, dict) else None
        files.update(f for f in (listed if isinstance(listed, list) else []) if isinstance(f, str))
    return files


def _earlier_listing(out: Path) -> set[str]:
    """The files earlier reports in ``out`` wrote: its manifest's list, and that of a re-run killed before the end."""
    files = _manifest_files(out / "manifest.json")
    try:
        kept = read_json(out / _EARLIER_FILES)
    except (OSError, ValueError):
        kept = []
    files.update(f for f in (kept if isinstance(kept, list) else []) if isinstance(f, str))
    return files


def _retire_earlier_report(out: Path) -> _WrittenFiles:
    """Before drawing: remember the files of an earlier report in ``out``, then remove its page and manifest.

    Until the new ``index.html`` is written the folder has none, so a report killed part-way is
    seen as incomplete instead of showing the old page beside new plots.
    """
    written = _WrittenFiles(out, _earlier_listing(out))
    for name in _COMPLETION_FILES:
        (out / name).unlink(missing_ok=True)
    return written


def _prune_earlier_files(out: Path, earlier: set[str], report: Report) -> None:
    """After the new page: remove the files earlier reports wrote that this one does not list.

    Only files an earlier report's manifest listed are removed (never the user's own files),
    and only inside ``out``; folders left empty by the removal go too.
    """
    listed = {f for fig in report.figures for f in fig.files}
    root = Path(os.path.realpath(out))
    for rel in sorted(earlier - listed):
        file = out / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not _inside(out, file.parent):
            continue
        if file.is_file() or file.is_symlink():
            file.unlink()
        parent = Path(os.path.realpath(file.parent))
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent
    (out / _EARLIER_FILES).unlink(missing_ok=True)


def _note_signal_definitions(d: ReportContext, runs: list[ReportRun]) -> None:
    """A combined report of runs that call different classes signal (or background) overlays curves of
    different tasks: say so above the plots instead of letting them read as one comparison."""
    called = {}
    for run in runs:
        if run.task == "autoencoder":  # run.signal is the trained-on background: every other class is the signal
            background = run.classes[run.signal]
            signal = " + ".join(c for c in run.classes if c != background) or "nothing"
            called[run.name] = f"{signal} against {background}"
            continue
        signal = run.classes[run.signal]
        called[run.name] = f"{signal} against {' + '.join(c for c in run.classes if c != signal) or 'nothing'}"
    if len(set(called.values())) > 1:
        shown = "; ".join(f"{name}: {what}" for name, what in called.items())
        d.note(f"The runs define signal and background differently ({shown}): their ROC curves, rejections "
               "and efficiencies measure different tasks; compare them with care")


def _build_report(runs_in: dict[str, Path], fold_groups, several: bool, out: Path, data, extra_scores, analysis,
                  hook, progress: bool, written: _WrittenFiles) -> Report:
    """:func:`build_report` into the claimed folder ``out``."""
    cache: dict = {}
    fold_data_of = _fold_datasets(fold_groups, data, analysis, cache) if fold_groups else {}
    runs = [
        _load_run(name, path, fold_data_of.get(name, data), analysis, cache)
        for name, path in _progress(runs_in.items(), len(runs_in), "report: predict", progress)
    ]
    first = runs[0]
    plots_cfg = first.config.plots
    wps = tuple(first.config.evaluation.working_points)
    wp = float(plots_cfg.working_point)
    extra = taggers_from(dict(extra_scores)) if extra_scores else {}
    baselines = _baseline_metrics(extra, wps)

    taggers: dict[str, tuple] = {r.name: (r.score_test, r.is_sig_test.astype(int)) if r.weight_test is None
                                 else (r.score_test, r.is_sig_test.astype(int), r.weight_test) for r in runs}
    for name, (s, y, w) in extra.items():
        if name in taggers:
            msg = f"extra_scores: baseline {name!r} has the name of a run; rename it"
            raise ValueError(msg)
        taggers[name] = (s, y) if w is None else (s, y, w)
    d = ReportContext(out, plots_cfg, runs, taggers, wps, wp)
    if several:
        _note_signal_definitions(d, runs)
    items = _figure_items(runs, fold_groups, several)

    figures: list[ReportFigure] = []
    # many figures: the writer's workers start with the first one (their start-up overlaps the drawing)
    writer = FigureWriter(start_after=0 if len(items) > 16 else 16)
    with use_style(plots_cfg.style), writer as d.writer:
        for item in _progress(items, len(items), "report: plots", progress):
            drawn = _draw(d, item)
            figures.extend(drawn)
            written.add(drawn)
    notes = d.notes

    if several:
        metrics = {r.name: r.metrics for r in runs}
    else:
        metrics = first.metrics
    write_json(out / "metrics.json", metrics)
    if hook is not None:
        results = {r.name: {"run_dir": r.path, "metrics": r.metrics, "test": r.test, "train": r.train} for r in runs}
        hooked = _hook_figures(_call_plots_hook(hook, out, results), out)
        figures.extend(hooked)
        written.add(hooked)

    report = Report(path=out, figures=figures, metrics=metrics, notes=notes)
    manifest = {
        "runs": {r.name: str(r.path) for r in runs},
        "baselines": baselines,
        "notes": notes,
        "figures": [
            {"name": f.name, "section": f.section, "variant": f.variant, "title": f.title, "caption": f.caption,
             "files": f.files, "summary": f.summary, "plots": f.plots}
            for f in figures
        ],
    }
    write_json(out / "manifest.json", manifest)
    title = f"hepnn report: {', '.join(r.name for r in runs)}"
    atomic_write_text(out / "index.html", _html(report, runs, baselines, title))
    return report


def make_report(
    run_dirs: Mapping[str, str | os.PathLike] | str | os.PathLike,
    out: str | os.PathLike | None = None,
    data: Mapping[str, Any] | None = None,
    extra_scores: Mapping[str, Any] | None = None,
    *,
    analysis: Any = None,
    hook: Callable[[Path, dict], Iterable[Any]] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Write the report of one run, or the combined report of several, and return its folder.

    Every plot is saved in the formats of ``plots.formats`` under ``plots/``,
    histograms under ``hists/`` (merge them with :func:`hepnn.plotting.merge_hists`),
    the metrics in ``metrics.json`` and a static ``index.html`` showing it all.
    Plots whose inputs are missing (no spectators, no image input, ...) are
    skipped with a note on the page.

    Parameters
    ----------
    run_dirs : path or dict of str to path
        One run directory, or ``{variant: run_dir}``: all taggers go on the same
        ROC and rejection plots (ratio to the first); per-variant plots for the rest.
    out : path, optional
        Report folder; default ``RUN_DIR/report`` for one run, else
        ``<parent of the first run>/report``.
    data : dict of arrays, optional
        The runs' (preprocessed) data, as for :func:`hepnn.training.evaluate.predict_split`;
        by default each run reads its config's data.
    extra_scores : dict, optional
        Baseline taggers drawn on the ROC plots: ``{name: (test_scores, test_labels)}``
        (labels 1 for signal, 0 for background; optionally ``(scores, labels, weights)``).
    analysis, hook, progress
        See :func:`build_report`.
    force : bool
        Write into an existing ``out`` that holds files hepnn did not write. ``out`` is
        claimed for hepnn and locked while the report is written (see :mod:`hepnn.outdir`).
        An earlier report in ``out`` is replaced: its ``index.html``/``manifest.json`` are
        removed first and written again last, and the files it listed that the new report
        does not draw are removed at the end (see the module docstring).

    Returns
    -------
    Path
        The report folder (``index.html`` inside).

    Raises
    ------
    OutputDirError
        ``out`` is a file, or a folder with files hepnn did not write (unless ``force``).

    Examples
    --------
    >>> make_report("runs/top/dense")  # doctest: +SKIP
    PosixPath('runs/top/dense/report')
    """
    return build_report(run_dirs, out, data, extra_scores, analysis=analysis, hook=hook, progress=progress,
                        force=force).path
