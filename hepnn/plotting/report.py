"""The run report: every validation plot of one or several trained taggers, with an HTML page.

::

    REPORT/
      index.html          static page: metrics table, every figure with a caption, links to the PDFs
      metrics.json        the run's metrics.json (several runs: {variant: metrics})
      manifest.json       figures (files, captions) and the numbers they show (AUC, KS p-values, ...)
      plots/NAME.png|pdf  one file per format of ``plots.formats``
      hists/NAME.json     histograms (``hist.Hist``, UHI JSON) to merge across batch jobs and replot
      explain/...         PNGs copied from ``RUN_DIR/explain/<method>/``

The report reads no file outside a run directory: a run file (``config.yaml``,
``model.keras``, ``metrics.json``, ...) that is a symlink leading out of the run directory
is an error; such an explanation file is ignored, with a note in the report.

The experiment style of the first run's ``plots`` config section is applied while the
report is drawn and restored afterwards; importing this module draws and changes nothing.
"""

from __future__ import annotations

import fnmatch
import html
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .._fileio import atomic_path, atomic_write_text
from ..exceptions import InputDataError

__all__ = ["Report", "ReportFigure", "build_report", "make_report", "find_spectator"]

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
    """

    name: str
    title: str
    caption: str
    files: list[str]
    section: str
    variant: str | None = None
    result: Any = None
    summary: dict = field(default_factory=dict)


@dataclass
class Report:
    """What :func:`build_report` wrote: the folder, the figures, the metrics and the notes on skipped plots."""

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
        from ..exceptions import UnknownNameError

        raise UnknownNameError(name, "report figure", [f.name for f in self.figures])


class _Skip(Exception):
    """A plot whose inputs are missing: skipped with a note on the page."""


@dataclass
class _Run:
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
        from ..exceptions import UnknownNameError

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
        runs = {Path(p).resolve().name: Path(p) for p in run_dirs}
    if not runs:
        msg = "make_report: received no run directories; pass a path or {variant: path}"
        raise ValueError(msg)
    from ..training.rundir import RunDirectory

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
    from ..training.kfold import fold_dirs, is_kfold_run
    from ..training.rundir import read_json

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
    from ..config import load_config
    from ..io.split import assign_fold
    from ..training.kfold import fold_data
    from ..training.rundir import RunDirectory

    out = {}
    for _name, (path, names) in groups.items():
        run = RunDirectory(path)
        base = data if data is not None else _load_data(path, load_config(run.config), analysis)
        fold = assign_fold(base["fold_key"], len(names))
        for k, fold_name in enumerate(names):
            out[fold_name] = fold_data(base, fold, k)
    return out


def _folds_figure(d: _Drawer, name: str, runs: list, wps: tuple) -> ReportFigure:
    """Mean background rejection over the folds of a k-fold run with a band of +-1 standard deviation."""
    from .metrics import auc, rejection_at, roc_curve

    plt = d.pyplot()
    grid = np.linspace(0.1, 1.0, 181)
    curves, aucs = [], []
    for run in runs:
        eff_s, eff_b, _ = roc_curve(run.score_test, run.is_sig_test.astype(int))
        curves.append(rejection_at(eff_s, eff_b, grid))
        aucs.append(auc(eff_s, eff_b))
    curves = np.asarray(curves, dtype=float)
    finite = np.where(np.isfinite(curves), curves, np.nan)
    mean = np.nanmean(finite, axis=0)
    std = np.nanstd(finite, axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
    fig, ax = plt.subplots()
    line, = ax.plot(grid, mean, label=f"{name}: mean of {len(runs)} folds (AUC {np.mean(aucs):.4f} ± {np.std(aucs, ddof=1):.4f})")
    band = ax.fill_between(grid, np.clip(mean - std, 1.0, None), mean + std, alpha=0.3, color=line.get_color(),
                           label="± 1 standard deviation over folds")
    ax.set_yscale("log")
    ax.set(xlabel="Signal efficiency $\\varepsilon_S$", ylabel="Background rejection $1/\\varepsilon_B$")
    ax.legend()
    stem = f"rejection_folds_{_safe(name)}"
    files = d.finish(fig, stem, ax)
    at = {f"{wp:g}": {"mean": float(np.interp(wp, grid, mean)), "std": float(np.interp(wp, grid, std))} for wp in wps}
    return ReportFigure(
        name=stem, section="performance", variant=name, result={"line": line, "band": band, "curves": curves},
        files=files, title=f"k-fold spread: {name}",
        caption=(f"Background rejection of the {len(runs)} fold models of {name}, each on the jets of its own fold "
                 "(never seen in its training): mean and a band of one standard deviation over the folds."),
        summary={"folds": len(runs), "auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs, ddof=1)),
                 "rejection": at},
    )


def _load_data(run_dir: Path, config: Any, analysis: Any) -> Any:
    """The run's data with its own preprocessing, as :func:`hepnn.training.evaluate.predict_split` reads them."""
    from ..training.evaluate import load_run_data

    return load_run_data(run_dir, config, analysis)


def _scores(run: _Run, pred: dict) -> tuple[np.ndarray, np.ndarray]:
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


def _load_run(name: str, path: Path, data: Any, analysis: Any, cache: dict) -> _Run:
    from ..config import load_config, to_dict
    from ..training.evaluate import evaluate_run, predict_split
    from ..training.rundir import RunDirectory, read_json

    rd = RunDirectory(path)
    config = load_config(rd.config)
    if data is None:
        key = (repr(to_dict(config.data)), str(rd.preprocessing.resolve()) if rd.preprocessing.is_file() else "")
        if key not in cache:
            cache[key] = _load_data(path, config, analysis)
        run_data = cache[key]
    else:
        run_data = data
    test = predict_split(path, "test", data=run_data)
    n_train = int(np.count_nonzero(np.asarray(run_data["split"]) == 0)) if "split" in run_data else 0
    train = predict_split(path, "train", data=run_data) if n_train else None
    if not rd.metrics.is_file():
        evaluate_run(path, data=run_data)
    metrics = read_json(rd.metrics)
    classes = list(test["classes"])
    task = test["task"]
    ev = config.evaluation
    if task == "autoencoder":
        signal = classes.index(ev.background) if ev.background else 0
    elif task == "binary":
        signal = classes.index(ev.signal) if ev.signal else 1
    else:
        signal = classes.index(ev.signal) if ev.signal else len(classes) - 1
    run = _Run(name=name, path=path, config=config, task=task, classes=classes, test=test, train=train,
               metrics=metrics, signal=signal)
    run.score_test, run.is_sig_test = _scores(run, test)
    if train is not None and len(train["label"]):
        run.score_train = _scores(run, train)[0]
    return run


def _progress(iterable: Iterable, total: int, desc: str, progress: bool) -> Iterable:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="plot" if "plot" in desc else "run", file=sys.stderr,
                disable=not progress or not sys.stderr.isatty(), dynamic_ncols=True, leave=False)


class _Drawer:
    """Draws, labels, saves and closes figures into ``report/plots``."""

    def __init__(self, out: Path, plots_config: Any):
        self.out = out
        self.formats = tuple(plots_config.formats)
        self.style = plots_config.style
        self.text = plots_config.label
        self.energy = plots_config.energy

    def pyplot(self) -> Any:
        from ._common import pyplot

        return pyplot()

    def finish(self, fig: Any, name: str, label_ax: Any = None) -> list[str]:
        from .save import save_figure
        from .style import label

        if label_ax is not None:
            label(label_ax, experiment=self.style, text=self.text, energy=self.energy)
        paths = save_figure(fig, self.out / "plots" / name, formats=self.formats)
        self.pyplot().close(fig)
        return [p.relative_to(self.out).as_posix() for p in paths]

    def hists(self, hists: Mapping[str, Any], name: str) -> str:
        from .histio import save_hists

        path = save_hists(dict(hists), self.out / "hists" / f"{name}.json")
        return Path(path).relative_to(self.out).as_posix()


def _rejection_figure(d: _Drawer, taggers: dict, wps: tuple) -> ReportFigure:
    from .roc import plot_rejection

    res = plot_rejection(taggers, working_points=wps, ratio=len(taggers) > 1)
    ref = next(iter(taggers))
    files = d.finish(res.figure, "rejection", res.ax)
    ratio = f" The lower panel is the ratio to {ref}." if len(taggers) > 1 else ""
    return ReportFigure(
        name="rejection", section="performance", result=res, files=files,
        title="Background rejection against signal efficiency",
        caption=(f"Background rejection 1/eff_B (log scale) against signal efficiency on the test split for "
                 f"{len(taggers)} tagger(s), bands: binomial standard error.{ratio} Unweighted."),
        summary={"curves": list(res.lines), "auc": res.auc,
                 "rejection": {k: {f"{wp:g}": v for wp, v in r.items()} for k, r in res.rejections.items()}},
    )


def _roc_figure(d: _Drawer, taggers: dict) -> ReportFigure:
    from .roc import plot_roc

    res = plot_roc(taggers)
    files = d.finish(res.figure, "roc", res.ax)
    return ReportFigure(
        name="roc", section="performance", result=res, files=files, title="ROC curve",
        caption="Signal efficiency against background efficiency on the test split; AUC in the legend. Unweighted.",
        summary={"curves": list(res.lines), "auc": res.auc},
    )


def _scores_figure(d: _Drawer, run: _Run, stem: str) -> ReportFigure:
    from .scores import plot_scores

    labels_te = np.asarray(run.test["label"], dtype=int)
    train = run.score_train is not None
    xlabel = {"autoencoder": "Reconstruction error",
              "multiclass": f"p({run.classes[run.signal]})"}.get(run.task, "Tagger score")
    res = plot_scores(
        run.score_test, labels_te,
        run.score_train if train else None, np.asarray(run.train["label"], dtype=int) if train else None,
        class_names=run.classes, xlabel=xlabel,
    )
    files = d.finish(res.figure, stem, res.ax)
    files.append(d.hists(res.hists, stem))
    ks = {c: r.pvalue for c, r in res.ks.items()}
    check = (" Training split as points; the legend gives the Kolmogorov-Smirnov p-value of train against test "
             "per class (a small p-value hints at overtraining).") if train else " No training split was found."
    return ReportFigure(
        name=stem, section="overtraining", variant=run.name, result=res, files=files,
        title=f"Score distributions: {run.name}",
        caption=f"{xlabel} per true class, test split filled, unit area.{check} Unweighted.",
        summary={"ks_pvalue": ks},
    )


def _learning_figure(d: _Drawer, run: _Run, stem: str) -> ReportFigure:
    from ..training.rundir import RunDirectory
    from .learning import plot_learning_curves, read_history

    path = RunDirectory(run.path).history
    if not path.is_file():
        raise _Skip(f"{run.name}: no learning curves ({path.name} not found)")
    history = read_history(path)
    metrics = [m for m in ("loss", "auc", "accuracy") if m in history]
    if not metrics:
        raise _Skip(f"{run.name}: no learning curves (history.csv has no loss column)")
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


def _efficiency_figure(d: _Drawer, run: _Run, stem: str, quantity: str, flat: bool, wp: float) -> ReportFigure:
    from .efficiency import plot_efficiency

    key = find_spectator(run.test["data"], quantity)
    if key is None:
        raise _Skip(f"{run.name}: no efficiency against {quantity} (no spectator matching "
                    f"{' or '.join(_SPECTATOR_PATTERNS[quantity])}; add it to data.spectators)")
    x = np.asarray(run.test["data"][key], dtype=float)
    edges = _edges(x)
    if edges is None or not run.is_sig_test.any() or run.is_sig_test.all():
        raise _Skip(f"{run.name}: no efficiency against {quantity} (too few distinct values or one class only)")
    plt = d.pyplot()
    fig, (ax_e, ax_r) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"wspace": 0.3})
    y = run.is_sig_test.astype(int)
    xlabel = _SPECTATOR_LABELS[quantity]
    res_e = plot_efficiency(x, run.score_test, y, edges, working_point=wp, flat=flat, xlabel=xlabel, ax=ax_e)
    res_r = plot_efficiency(x, run.score_test, y, edges, quantity="rejection", working_point=wp, flat=flat,
                            xlabel=xlabel, ax=ax_r)
    files = d.finish(fig, stem, ax_e)
    mode = ("flat signal efficiency: a cut per bin giving the working point in every bin" if flat
            else "fixed cut giving the working point over all test jets")
    return ReportFigure(
        name=stem, section="efficiency", variant=run.name, result=(res_e, res_r), files=files,
        title=f"Efficiency and rejection against {quantity} ({'flat' if flat else 'fixed cut'}): {run.name}",
        caption=(f"Left: signal and background efficiency, right: background rejection, in bins of {key} "
                 f"(quantile bins), test split, working point eff_S = {wp:g}, {mode}. "
                 "Clopper-Pearson 68% intervals."),
        summary={"variable": key, "working_point": wp, "flat": flat, "eff_s": res_e.table.eff_s.tolist()},
    )


def _sculpting_figure(d: _Drawer, run: _Run, stem: str, wp: float) -> ReportFigure:
    from .efficiency import plot_mass_sculpting

    key = find_spectator(run.test["data"], "mass")
    if key is None:
        raise _Skip(f"{run.name}: no mass sculpting plot (no spectator matching "
                    f"{' or '.join(_SPECTATOR_PATTERNS['mass'])}; add it to data.spectators)")
    if not run.is_sig_test.any() or run.is_sig_test.all():
        raise _Skip(f"{run.name}: no mass sculpting plot (the test split has one class only)")
    wps = tuple(sorted({float(wp), 0.3}, reverse=True))
    res = plot_mass_sculpting(run.test["data"][key], run.score_test, run.is_sig_test.astype(int), working_points=wps)
    files = d.finish(res.figure, stem, res.ax)
    files.append(d.hists(res.hists, stem))
    return ReportFigure(
        name=stem, section="sculpting", variant=run.name, result=res, files=files,
        title=f"Background mass before and after the cut: {run.name}",
        caption=(f"Background {key} distribution of the test split without a cut and after cuts at signal "
                 f"efficiencies {', '.join(f'{w:g}' for w in wps)} (unit area). Jensen-Shannon divergence to "
                 "the distribution before the cut: "
                 + ", ".join(f"{w:g}: {v:.3g}" for w, v in res.jsd.items()) + "."),
        summary={"variable": key, "jsd": {f"{w:g}": v for w, v in res.jsd.items()}},
    )


def _images_figure(d: _Drawer, run: _Run, input_name: str) -> ReportFigure:
    from .images import plot_average_images

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
    stem = f"images_{_safe(input_name)}"
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="images", variant=None, result=res, files=files,
        title=f"Average jet image: {input_name}",
        caption=(f"Mean of the (preprocessed) '{input_name}' images per class on the test split"
                 + (f", and the difference {run.classes[diff[0]]} minus {run.classes[diff[1]]}." if diff else ".")),
    )


def _run_model(run: _Run, cache: dict) -> Any:
    """The run's trained model (loaded once per report)."""
    if run.name not in cache:
        from ..models import load_model
        from ..training.rundir import RunDirectory

        cache[run.name] = load_model(RunDirectory(run.path).model)
    return cache[run.name]


def _efn_filters_figure(d: _Drawer, run: _Run, stem: str, models: dict) -> ReportFigure:
    from ..models.efn import efn_filters
    from .filters import plot_efn_filters

    model = _run_model(run, models)
    input_name = next((layer.name[: -len("_energy_flow")] for layer in model.layers
                       if layer.name.endswith("_energy_flow")), None)
    if input_name is None:
        raise _Skip(f"{run.name}: no EFN filters (the model has no EFN branch)")
    columns = model.get_layer(f"{input_name}_angles").indices
    x = np.asarray(run.test["data"][input_name])
    real = np.any(x != 0.0, axis=-1) if f"{input_name}_mask" not in run.test["data"] else np.asarray(
        run.test["data"][f"{input_name}_mask"], dtype=bool)
    angles = np.abs(x[..., columns][real]) if real.any() else np.zeros((0, 2))
    extent = float(np.quantile(angles, 0.98)) if angles.size else 1.0
    extent = extent if extent > 0 else 1.0
    grid = efn_filters(model, extent=extent, n_grid=65, input_name=input_name)
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


def _cnn_feature_maps(run: _Run, models: dict, cache: dict, n_jets: int = 400) -> Any:
    key = run.name
    if key not in cache:
        from ..explain import explain
        from ..explain.gradcam import conv_layers

        model = _run_model(run, models)
        if not conv_layers(model):
            raise _Skip(f"{run.name}: no feature maps (the model has no convolution layer)")
        names = run.test["spec"].names
        labels = np.asarray(run.test["label"], dtype=int)
        pick = np.arange(min(n_jets, len(labels)))
        x = {n: np.asarray(run.test["data"][n], dtype=np.float32)[pick] for n in names}
        cache[key] = explain(model, x, method="feature_maps", task=run.task, labels=labels[pick])
    return cache[key]


def _conv_filters_figure(d: _Drawer, run: _Run, stem: str, models: dict, maps: dict) -> ReportFigure:
    from .filters import plot_conv_filters

    expl = _cnn_feature_maps(run, models, maps)
    kernel = np.asarray(expl.extra["filters"])
    res = plot_conv_filters(kernel, n_filters=16)
    files = d.finish(res.figure, stem, None)
    layer = expl.extra["filters_layer"]
    return ReportFigure(
        name=stem, section="explain", variant=run.name, result=res, files=files,
        title=f"Learned filters of the first convolution: {run.name}",
        caption=(f"Kernels of '{layer}' ({kernel.shape[0]}x{kernel.shape[1]} pixels, summed over the "
                 f"{kernel.shape[2]} input channel(s)), first {len(res.indices)} of {kernel.shape[3]}; red positive, "
                 "blue negative."),
        summary={"layer": layer, "kernel_shape": list(kernel.shape)},
    )


def _feature_maps_figure(d: _Drawer, run: _Run, stem: str, models: dict, maps: dict) -> ReportFigure:
    from .filters import plot_feature_maps

    expl = _cnn_feature_maps(run, models, maps)
    layers = list(expl.extra["layers"])
    i = len(layers) - 1  # the deepest recorded layer
    means = np.asarray(expl.extra[f"mean_maps_{i}"])
    classes = [int(c) for c in np.asarray(expl.extra["classes"])]
    rows = {f"mean {run.classes[c] if c < len(run.classes) else c}": m for c, m in zip(classes, means)}
    res = plot_feature_maps(rows, n_maps=6)
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="explain", variant=run.name, result=res, files=files,
        title=f"Feature maps of {layers[i]}: {run.name}",
        caption=(f"Activations of the first channels of '{layers[i]}' averaged over the test-split jets of each "
                 f"class ({expl.n_jets} jets): which parts of the jet image each learned feature responds to."),
        summary={"layer": layers[i], "classes": [run.classes[c] for c in classes if c < len(run.classes)]},
    )


def _uses_image(run: _Run) -> bool:
    return any(i.kind == "image" for i in run.test["spec"].inputs)


def _confusion_figure(d: _Drawer, run: _Run, stem: str) -> ReportFigure:
    from .confusion import plot_confusion_matrix

    probs = np.asarray(run.test["outputs"])
    res = plot_confusion_matrix(np.asarray(run.test["label"], dtype=int), np.argmax(probs, axis=1),
                                class_names=run.classes)
    files = d.finish(res.figure, stem, None)
    return ReportFigure(
        name=stem, section="multiclass", variant=run.name, result=res, files=files,
        title=f"Confusion matrix: {run.name}",
        caption="True against predicted class (highest probability) on the test split, normalised per true class.",
    )


def _reconstruction_figure(d: _Drawer, run: _Run, stem: str) -> ReportFigure:
    from .anomaly import plot_reconstruction_error

    errors = run.score_test
    labels = np.asarray(run.test["label"], dtype=int)
    anomaly = next((c for c in np.unique(labels).tolist() if c != run.signal), run.signal)
    res = plot_reconstruction_error(errors, labels, anomaly=anomaly, class_names=run.classes,
                                    log_x=bool(np.all(errors > 0)))
    files = d.finish(res.figure, stem, res.ax)
    files.append(d.hists(res.hists, stem))
    return ReportFigure(
        name=stem, section="anomaly", variant=run.name, result=res, files=files,
        title=f"Reconstruction error: {run.name}",
        caption=(f"Per-jet reconstruction error per class on the test split (background: "
                 f"{run.classes[run.signal]}); its ROC as anomaly score is in the performance section."),
        summary={"auc": res.auc},
    )


def _latent_figure(d: _Drawer, run: _Run, stem: str) -> ReportFigure:
    from ..models import load_model
    from ..models.autoencoder import encoder
    from ..training.rundir import RunDirectory
    from .anomaly import plot_latent

    model = load_model(RunDirectory(run.path).model)
    try:
        enc = encoder(model)
    except (ValueError, KeyError) as err:
        raise _Skip(f"{run.name}: no latent-space plot ({err})") from err
    x = {n: run.test["data"][n] for n in run.test["spec"].names}
    latent = np.asarray(enc.predict(x, batch_size=run.config.evaluation.batch_size, verbose=0))
    latent = latent.reshape(len(latent), -1)
    res = plot_latent(latent, np.asarray(run.test["label"], dtype=int), class_names=run.classes)
    files = d.finish(res.figure, stem, res.ax)
    return ReportFigure(
        name=stem, section="anomaly", variant=run.name, result=res, files=files,
        title=f"Latent space: {run.name}",
        caption="Test jets in the autoencoder's latent space, projected on its first two principal components.",
    )


def _explain_values_figure(d: _Drawer, run: _Run, method: str, npz: Path, input_name: str, stem: str):
    from .explanations import plot_importance, plot_position_importance
    from .images import plot_heatmap

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
        raise _Skip(f"{run.name}: explanation {method}/{input_name} has values of shape {values.shape}, "
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


def _explanation_tasks(d: _Drawer, run: _Run, out: Path) -> list[tuple[str, Callable[[], Any]]]:
    tasks: list[tuple[str, Callable[[], Any]]] = []
    root = run.path / "explain"
    if not root.is_dir() or not _inside(run.path, root):
        return tasks

    def outside(file: Path) -> bool:
        """A symlink out of the run directory: ignored, with a note in the report."""
        if _inside(run.path, file):
            return False

        def note(file=file):
            raise _Skip(f"{run.name}: ignored {file}: a symlink to {os.path.realpath(file)}, outside the run directory")

        tasks.append((f"ignored {file.name}", note))
        return True

    for method_dir in sorted(p for p in root.iterdir() if p.is_dir()):
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
                    raise _Skip(f"{run.name}: cannot read {npz}: {err}")

                tasks.append((f"explain {method}", bad))
                continue
            for input_name in inputs:
                stem = f"importance_{_safe(run.name)}_{_safe(method)}_{_safe(input_name)}"
                tasks.append((f"importance {method}/{input_name}",
                              lambda m=method, i=input_name, s=stem, p=npz: _explain_values_figure(d, run, m, p, i, s)))
    return tasks


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
    from ..training.evaluate import binary_metrics

    return {name: binary_metrics(s, y, wps) for name, (s, y, _w) in extra.items()}


def _fmt(value: Any) -> str:
    if value is None:
        return "&infin;"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _metric_rows(runs: list[_Run], baselines: dict) -> list[tuple[str, dict]]:
    rows = []
    for run in runs:
        m = run.metrics
        if "auc" in m:
            rows.append((run.name, m))
        for cname, cm in (m.get("classes") or {}).items():
            rows.append((f"{run.name}: {cname} vs rest", cm))
        for dname, dm in (m.get("discriminants") or {}).items():
            rows.append((f"{run.name}: {dname.replace('_', ' ')}", dm))
    rows.extend((f"{name} (baseline)", m) for name, m in baselines.items())
    return rows


def _html(report: Report, runs: list[_Run], baselines: dict, title: str) -> str:
    esc = html.escape
    rows = _metric_rows(runs, baselines)
    wps: list[str] = []
    for _, m in rows:
        wps.extend(k for k in (m.get("rejection") or {}) if k not in wps)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}figure{display:inline-block;vertical-align:top;"
        "width:48%;margin:0.5%}figure img{max-width:100%}figcaption{font-size:90%}.note{color:#a60}</style>",
        "</head><body>", f"<h1>{esc(title)}</h1>",
        "<p>Runs: " + ", ".join(f"{esc(r.name)} (<code>{esc(str(r.path))}</code>, {esc(r.task)})" for r in runs)
        + '. Metrics: <a href="metrics.json">metrics.json</a>; histograms: <code>hists/</code>.</p>',
        "<h2>Metrics (test split)</h2>",
    ]
    if rows:
        head = "".join(f"<th>1/&epsilon;<sub>B</sub> at &epsilon;<sub>S</sub>={esc(wp)}</th>" for wp in wps)
        parts.append(f"<table><tr><th>Tagger</th><th>AUC</th><th>Accuracy</th>{head}<th>Test jets</th></tr>")
        for name, m in rows:
            rej = m.get("rejection") or {}
            cells = "".join(f"<td>{_fmt(rej.get(wp, '')) if wp in rej else ''}</td>" for wp in wps)
            parts.append(f"<tr><td>{esc(name)}</td><td>{_fmt(m.get('auc', ''))}</td>"
                         f"<td>{_fmt(m.get('accuracy', ''))}</td>{cells}<td>{_fmt(m.get('n_test', ''))}</td></tr>")
        parts.append("</table>")
    if report.notes:
        parts.append("<h2>Skipped plots</h2><ul>")
        parts.extend(f'<li class="note">{esc(n)}</li>' for n in report.notes)
        parts.append("</ul>")
    for key, heading in _SECTIONS:
        figs = [f for f in report.figures if f.section == key]
        if not figs:
            continue
        parts.append(f"<h2>{esc(heading)}</h2>")
        for fig in figs:
            images = [f for f in fig.files if f.rsplit(".", 1)[-1] in ("png", "svg", "jpg", "jpeg")]
            others = [f for f in fig.files if f not in images]
            links = " ".join(f'<a href="{esc(f, quote=True)}">{esc(f.rsplit(".", 1)[-1].upper())}</a>' for f in others)
            img = (f'<img src="{esc(images[0], quote=True)}" alt="{esc(fig.title, quote=True)}">' if images else "")
            parts.append(f'<figure id="{esc(fig.name, quote=True)}">{img}<figcaption><b>{esc(fig.title)}.</b> '
                         f"{esc(fig.caption)} {links}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_report(
    run_dirs: Mapping[str, str | os.PathLike] | str | os.PathLike,
    out: str | os.PathLike | None = None,
    data: Mapping[str, Any] | None = None,
    extra_scores: Mapping[str, Any] | None = None,
    *,
    analysis: Any = None,
    hook: Callable[[Path, dict], Iterable[Any]] | None = None,
    progress: bool = True,
) -> Report:
    """Draw the report of one or several runs and return what was drawn; see :func:`make_report`.

    Parameters
    ----------
    run_dirs, out, data, extra_scores
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
    from ..training.rundir import write_json
    from ._common import taggers_from
    from .style import use_style

    runs_in, fold_groups = _expand_folds(_normalise_runs(run_dirs))
    several = len(runs_in) > 1
    if out is None:
        first = next(iter(runs_in.values()))
        out = (first.parent / "report") if several else (first / "report")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

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

    d = _Drawer(out, plots_cfg)
    taggers: dict[str, tuple] = {r.name: (r.score_test, r.is_sig_test.astype(int)) for r in runs}
    for name, (s, y, w) in extra.items():
        if name in taggers:
            msg = f"extra_scores: baseline {name!r} has the name of a run; rename it"
            raise ValueError(msg)
        taggers[name] = (s, y) if w is None else (s, y, w)

    tasks: list[tuple[str, Callable[[], Any]]] = [
        ("rejection", lambda: _rejection_figure(d, taggers, wps)),
        ("roc", lambda: _roc_figure(d, taggers)),
    ]
    by_name = {r.name: r for r in runs}
    for group, (_path, names) in fold_groups.items():
        tasks.append((f"folds {group}", lambda g=group, n=names: _folds_figure(d, g, [by_name[x] for x in n], wps)))
    images_done: set[str] = set()
    models: dict = {}  # trained models, loaded once for the filter and feature-map figures
    maps: dict = {}
    for run in runs:
        v = _safe(run.name)
        sfx = f"_{v}" if several else ""
        tasks.append((f"scores {run.name}", lambda r=run, s=f"scores{sfx}": _scores_figure(d, r, s)))
        tasks.append((f"learning {run.name}", lambda r=run, s=f"learning{sfx}": _learning_figure(d, r, s)))
        if run.task != "autoencoder" or len(set(np.unique(run.test["label"]).tolist())) > 1:
            for quantity in ("pt", "eta"):
                for flat in (False, True):
                    stem = f"efficiency_{quantity}_{'flat' if flat else 'fixed'}{sfx}"
                    tasks.append((f"efficiency {quantity} {run.name}",
                                  lambda r=run, s=stem, q=quantity, f=flat: _efficiency_figure(d, r, s, q, f, wp)))
            tasks.append((f"sculpting {run.name}", lambda r=run, s=f"mass_sculpting{sfx}": _sculpting_figure(d, r, s, wp)))
        for name, spec in run.config.data.inputs.items():
            if getattr(spec, "kind", None) == "image" and name in run.test["data"] and name not in images_done:
                images_done.add(name)
                tasks.append((f"images {name}", lambda r=run, n=name: _images_figure(d, r, n)))
        if run.config.model.name == "efn":
            tasks.append((f"efn filters {run.name}",
                          lambda r=run, s=f"efn_filters{sfx}": _efn_filters_figure(d, r, s, models)))
        if run.task != "autoencoder" and _uses_image(run):
            tasks.append((f"conv filters {run.name}",
                          lambda r=run, s=f"conv_filters{sfx}": _conv_filters_figure(d, r, s, models, maps)))
            tasks.append((f"feature maps {run.name}",
                          lambda r=run, s=f"feature_maps{sfx}": _feature_maps_figure(d, r, s, models, maps)))
        if run.task == "multiclass":
            tasks.append((f"confusion {run.name}", lambda r=run, s=f"confusion{sfx}": _confusion_figure(d, r, s)))
        if run.task == "autoencoder":
            tasks.append((f"reconstruction {run.name}",
                          lambda r=run, s=f"reconstruction{sfx}": _reconstruction_figure(d, r, s)))
            tasks.append((f"latent {run.name}", lambda r=run, s=f"latent{sfx}": _latent_figure(d, r, s)))
        tasks.extend(_explanation_tasks(d, run, out))

    figures: list[ReportFigure] = []
    notes: list[str] = []
    with use_style(plots_cfg.style):
        for _desc, task in _progress(tasks, len(tasks), "report: plots", progress):
            try:
                with np.errstate(divide="ignore", invalid="ignore"):  # empty bins are expected in small samples
                    result = task()
            except _Skip as skip:
                if str(skip) not in notes:
                    notes.append(str(skip))
                continue
            if result is not None:
                figures.append(result)

    if several:
        metrics = {r.name: r.metrics for r in runs}
    else:
        metrics = first.metrics
    write_json(out / "metrics.json", metrics)
    if hook is not None:
        results = {r.name: {"run_dir": r.path, "metrics": r.metrics, "test": r.test, "train": r.train} for r in runs}
        figures.extend(_hook_figures(hook(out, results), out))

    report = Report(path=out, figures=figures, metrics=metrics, notes=notes)
    manifest = {
        "runs": {r.name: str(r.path) for r in runs},
        "baselines": baselines,
        "notes": notes,
        "figures": [
            {"name": f.name, "section": f.section, "variant": f.variant, "title": f.title, "caption": f.caption,
             "files": f.files, "summary": f.summary}
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

    Returns
    -------
    Path
        The report folder (``index.html`` inside).

    Examples
    --------
    >>> make_report("runs/top/dense")  # doctest: +SKIP
    PosixPath('runs/top/dense/report')
    """
    return build_report(run_dirs, out, data, extra_scores, analysis=analysis, hook=hook, progress=progress).path
