"""``explain_run``: explain a trained run directory and write ``RUN_DIR/explain/<method>/``.

::

    RUN_DIR/explain/<method>/
      values.npz      values_<input>, inputs_<input>, feature_names_<input>, base_values, outputs, labels
      summary.json    method, options, timings (with one predict pass), class/pT-bin summaries, extras
      rules.txt       the surrogate tree's rules (surrogate only)
      *.png           the method's plots
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._faults import fault
from .._fileio import atomic_write_text, dir_mode, flush_folder, flush_to_disk
from ..config import load_config
from ..exceptions import ConfigError, InputDataError, UnknownNameError
from ..outdir import lock_directory
from ..plotting import plot_beeswarm, plot_heatmap, plot_importance, plot_position_importance, save_figure
from ..runs.spec import class_index, load_spec
from ..training.evaluate import evaluation_weights, load_run_data, split_data
from ..training.kfold import fold_parts, is_kfold_run
from ..training.rundir import RunDirectory, load_run_model, write_json
from ..training.splits import SPLITS
from .explanation import Explanation, jsonable
from .registry import EXPLAINERS, check_options, explain, option_names, positive_int_problem
from .target import Target

__all__ = ["explain_run", "explain_folds", "run_target", "write_plots"]


def explain_run(
    run_dir: str | os.PathLike,
    method: str,
    n_jets: int | None = None,
    split: str = "test",
    data: Mapping | None = None,
    options: Mapping[str, Any] | None = None,
    plots: bool = True,
    random_state: int = 0,
    target: Target | None = None,
    analysis: Any = None,
) -> Explanation:
    """Explain up to ``n_jets`` jets of a run's ``split`` with ``method`` and write the results.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``hepnn train``.
    method : str
        Explainer name (see ``hepnn.explain.EXPLAINERS``).
    n_jets : int, optional
        Jets explained (default: ``config.explain.n_jets``); a random subset when the split is larger.
    split : str
        Data split to explain.
    data : mapping, optional
        Preprocessed data (as given to the trainer) instead of reading the config's files.
    options : mapping, optional
        Explainer options; default ``config.explain.options[method]`` (``shap`` also gets
        ``background_size`` from ``config.explain.background_size``). An explainer with a
        ``weights`` option (``permutation``) gets the jets' weights when ``evaluation.weighted``.
    plots : bool
        Write the PNG plots beside ``values.npz``.
    target : Target, optional
        The run's model as :func:`run_target` returns it; pass it to explain one run with
        several methods without compiling its functions again.
    analysis : hepnn.Analysis, optional
        The analysis whose ``select``/``labels`` hooks the run was trained with (needed to read
        its data again when ``data`` is not given).

    Returns
    -------
    Explanation

    Raises
    ------
    ConfigError
        For a k-fold run, whose fold models are explained one by one by :func:`explain_folds`.

    Examples
    --------
    >>> expl = explain_run("runs/top/model", "permutation", n_jets=500)  # doctest: +SKIP
    """
    EXPLAINERS.get(method)
    if is_kfold_run(run_dir):
        msg = (f"{run_dir} is a k-fold run of several models: explain them with explain_folds(), each on its own "
               "fold's jets (`hepnn explain` does), or pass one fold's run, RUN/folds/<k>")
        raise ConfigError(msg)
    if split not in SPLITS:
        raise UnknownNameError(split, "split", SPLITS)
    if n_jets is not None:
        problem = positive_int_problem(n_jets)
        if problem:
            msg = f"n_jets: {problem}"
            raise ConfigError(msg)
    pred = split_data(run_dir, split, data=data, analysis=analysis)
    config = pred["config"]
    if options is None:
        options = dict(config.explain.options.get(method, {}))
        if method == "shap":
            options.setdefault("background_size", config.explain.background_size)
    options = dict(options)
    check_options(method, options)
    n_jets = config.explain.n_jets if n_jets is None else int(n_jets)
    part = pred["data"]
    spec = pred["spec"]
    names = list(spec.names)
    n_total = len(part["label"])
    if n_total == 0:
        msg = f"{run_dir}: the {split!r} split has no jets to explain"
        raise InputDataError(msg)
    rng = np.random.default_rng(random_state)
    pick = np.sort(rng.choice(n_total, size=min(n_jets, n_total), replace=False))
    x = {n: np.asarray(part[n], dtype=np.float32)[pick] for n in names}
    labels = np.asarray(part["label"])[pick]
    feature_names = _feature_names(spec, part)
    weights = evaluation_weights(config, pred)
    # the evaluation's weights (evaluation.weighted) go to an explainer that takes them, not into summary.json
    takes_weights = "weights" in option_names(EXPLAINERS.get(method)) and "weights" not in options
    weighted = {"weights": weights[pick]} if weights is not None and takes_weights else {}

    if target is None:
        target = run_target(run_dir, pred)
    start = time.perf_counter()
    target.predict(x)
    predict_seconds = time.perf_counter() - start
    expl = explain(target, x, method, labels=labels, feature_names=feature_names, **options, **weighted)
    summary = _summary(expl, options, predict_seconds, pred["classes"], part, pick)
    _write_explanation(Path(run_dir) / "explain" / method, expl, summary, pred["classes"] if plots else None)
    return expl


def _write_explanation(out_dir: Path, expl: Explanation, summary: dict, class_names: list[str] | None) -> None:
    """Write ``out_dir`` (values, rules, plots when ``class_names`` is not None, summary) as one set.

    The files are written into a hidden folder of the run, ``.explain-<method>.part``, which
    replaces ``out_dir`` when complete: a kill leaves the previous explanation whole, never the
    new ``values.npz`` beside the old ``summary.json`` and plots (or a ``values.npz`` without
    them), which the report and :meth:`Explanation.load` would read as one explanation. Files in
    ``out_dir`` that hepnn did not write are kept (hard-linked into the new set). Between the two
    renames of the swap ``out_dir`` is briefly absent, never mixed; the next write completes a
    swap that was killed and removes a killed write's staging folder. The run folder is locked
    meanwhile (:func:`hepnn.outdir.lock_directory`).
    """
    run_dir = out_dir.parent.parent
    stage, old = (run_dir / f".explain-{out_dir.name}.{what}" for what in ("part", "old"))
    with lock_directory(run_dir, reader="hepnn explain"):
        _finish_swap(out_dir, stage, old)
        stage.mkdir(mode=dir_mode())
        try:
            expl.save(stage)
            fault("explain-write", {"method": expl.method, "dir": str(out_dir)})
            rules = expl.extra.get("rules")
            if isinstance(rules, str):
                atomic_write_text(stage / "rules.txt", rules)
            if class_names is not None:
                summary["plots"] = [p.name for p in write_plots(expl, stage, class_names=class_names)]
            write_json(stage / "summary.json", summary)
            _keep_users_files(out_dir, stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        out_dir.parent.mkdir(mode=dir_mode(), exist_ok=True)
        flush_to_disk(stage)  # the new set on disk before the old one moves aside
        if out_dir.exists():
            os.replace(out_dir, old)
        fault("explain-swap", {"method": expl.method, "dir": str(out_dir)})
        os.replace(stage, out_dir)
        flush_folder(out_dir.parent)
        shutil.rmtree(old, ignore_errors=True)


def _finish_swap(out_dir: Path, stage: Path, old: Path) -> None:
    """What a killed :func:`_write_explanation` left: a swap killed between its renames (``old`` there,
    ``out_dir`` not) is completed with the complete new set; a staging folder of a write killed before
    its swap (hepnn's files and links to the others) is removed."""
    if old.is_dir():
        if not out_dir.exists():
            os.replace(stage if stage.is_dir() else old, out_dir)
        if old.is_dir():
            shutil.rmtree(old)
    if stage.is_dir():
        shutil.rmtree(stage)


#: the names of the files an explanation folder holds (and the stems of its plots)
_OWN_FILES = ("values.npz", "summary.json", "rules.txt")
_OWN_PLOTS = ("importance_", "beeswarm_", "positions_", "heatmap_", "feature_maps_", "filters")


def _keep_users_files(out_dir: Path, stage: Path) -> None:
    """Hard-link (copy where links fail) into ``stage`` the entries of ``out_dir`` hepnn did not write."""
    if not out_dir.is_dir():
        return
    try:
        listed = set(json.loads((out_dir / "summary.json").read_text()).get("plots", []))
    except (OSError, ValueError, AttributeError, TypeError):
        listed = set()
    for entry in out_dir.iterdir():
        name = entry.name
        ours = (name in _OWN_FILES or name in listed or (name.startswith(".") and ".part" in name)
                or (name.startswith(_OWN_PLOTS) and name.endswith((".png", ".pdf"))))
        if ours or (stage / name).exists():
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), stage / name)
        elif entry.is_dir():
            shutil.copytree(entry, stage / name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, stage / name)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def explain_folds(run_dir: str | os.PathLike, method: str, data: Mapping | None = None, analysis: Any = None,
                  **kwargs: Any) -> list[Explanation]:
    """:func:`explain_run` on each fold model of a k-fold run, on the jets of its own fold.

    Fold ``k``'s model is explained on the ``split`` of its data (the test split is its fold,
    jets it never trained on; see :func:`hepnn.training.kfold.fold_data`) and its explanation
    written to ``RUN_DIR/folds/<k>/explain/<method>/``. ``data``: the k-fold run's data with
    its preprocessing applied (read once for all folds when not given); ``kwargs`` go to
    :func:`explain_run` (``n_jets`` per fold, ``split``, ``options``, ...). Returns one
    :class:`Explanation` per fold.

    Examples
    --------
    >>> per_fold = explain_folds("runs/top/kfold", "permutation", n_jets=500)  # doctest: +SKIP
    """
    run = RunDirectory(run_dir)
    if not is_kfold_run(run.path):
        msg = f"{run_dir} is not a k-fold run (no folds.json); explain it with explain_run()"
        raise ConfigError(msg)
    if data is None:
        data = load_run_data(run.path, load_config(run.config), analysis)
    return [explain_run(path, method, data=part, analysis=analysis, **kwargs) for path, part in fold_parts(run.path, data)]


def run_target(run_dir: str | os.PathLike, split: Mapping | None = None) -> Target:
    """The quantity :func:`explain_run` explains for a run: its model (loaded once per process) and task.

    ``split`` is :func:`hepnn.training.evaluate.split_data`'s result when the caller has it.
    """
    run = RunDirectory(run_dir)
    if split is None:
        config = load_config(run.config)
        spec = load_spec(run.path, config)
    else:
        config, spec = split["config"], split["spec"]
    background = (class_index(list(spec.classes), config.evaluation.background, "evaluation.background", 0)
                  if spec.task == "autoencoder" else None)  # the anomaly AUC's background, as evaluate's
    return Target(load_run_model(run.model), task=spec.task, mask_value=spec.mask_value,
                  class_index=_class_index(list(spec.classes), spec.task, config), background=background)


def _feature_names(spec, part) -> dict[str, list[str]]:
    """The spec's feature names of each input whose array has that many features."""
    return {i.name: list(i.feature_names) for i in spec.inputs
            if i.feature_names and len(i.feature_names) == np.shape(part[i.name])[-1]}


def _class_index(classes, task, config) -> int | None:
    if task != "multiclass":
        return None
    signal = getattr(config.evaluation, "signal", None)
    return classes.index(signal) if signal in classes else len(classes) - 1


def _summary(expl: Explanation, options, predict_seconds, classes, part, pick) -> dict:
    n = expl.n_jets
    seconds = float(expl.extra.get("seconds", 0.0))
    summary: dict = {
        "method": expl.method, "options": jsonable(dict(options)), "n_jets": n,
        "seconds": seconds, "predict_seconds": predict_seconds,
        "seconds_per_1000_jets": seconds / max(n, 1) * 1000,
        "mean_abs": {k: jsonable(v) for k, v in expl.mean_abs().items()},
        "extra": {k: jsonable(v) for k, v in expl.extra.items() if k not in ("summary_values", "tree_outputs")
                  and not (isinstance(v, np.ndarray) and v.size > 10_000)},
    }
    if expl.labels is not None and len(expl.labels) == n:
        summary["by_class"] = {
            (classes[c] if c < len(classes) else str(c)): {"n_jets": sub.n_jets, "mean_abs": jsonable(sub.mean_abs())}
            for c, sub in expl.by_class().items()
        }
    pt = next((k for k in ("spec_jet_pt", "spec_pt") if k in part), None)
    # rows are jets (not activation maximisation's one row per unit): explain_run passes the jets'
    # labels, and explain() keeps them only then (also when there are as many units as jets)
    if pt is not None and expl.labels is not None and n == len(pick) and n:
        values = np.asarray(part[pt])[pick]
        edges = np.unique(np.quantile(values, [0, 0.25, 0.5, 0.75, 1.0]))
        if len(edges) >= 2:
            edges[-1] = np.nextafter(edges[-1], np.inf)
            summary["by_pt_bin"] = {
                f"{lo:.6g}-{hi:.6g}": {"n_jets": sub.n_jets, "mean_abs": jsonable(sub.mean_abs())}
                for (lo, hi), sub in expl.by_bin(values, edges).items()
                if sub.n_jets  # an empty bin (few jets) has no mean: NaN is not JSON
            }
    return summary


def write_plots(expl: Explanation, out_dir: str | os.PathLike, class_names: list[str] | None = None) -> list[Path]:
    """The method's standard plots as PNG files in ``out_dir``; returns the paths.

    An explainer with a ``write_plots(expl, out_dir, class_names)`` attribute adds its own
    plots (``feature_maps``: the filters and feature maps).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written: list[Path] = []

    def save(fig, stem):
        written.extend(save_figure(fig, out_dir / stem, formats=("png",)))
        plt.close(fig)

    for name, values in expl.values.items():
        v = np.asarray(values, dtype=float)
        x = np.asarray(expl.inputs[name])
        if not np.any(v):
            continue
        names = expl.feature_names.get(name)
        if v.ndim == 2:
            fig, ax = plt.subplots()
            plot_importance(v, names, ax=ax)
            save(fig, f"importance_{name}")
            if len(v) > 1:
                fig, ax = plt.subplots()
                plot_beeswarm(v, x, names, ax=ax)
                save(fig, f"beeswarm_{name}")
        elif v.ndim == 3:
            fig, ax = plt.subplots()
            plot_position_importance(v, ax=ax)
            save(fig, f"positions_{name}")
            fig, ax = plt.subplots()
            plot_importance(v.sum(axis=1), names, ax=ax)
            save(fig, f"importance_{name}")
        elif v.ndim == 4:
            fig, ax = plt.subplots()
            plot_heatmap(v.mean(axis=0).sum(axis=-1), colorbar_label=f"mean {expl.method} attribution", ax=ax)
            save(fig, f"heatmap_{name}")
    own = getattr(EXPLAINERS.get(expl.method), "write_plots", None) if expl.method in EXPLAINERS else None
    if own is not None:
        written.extend(own(expl, out_dir, class_names=class_names))
    return written
