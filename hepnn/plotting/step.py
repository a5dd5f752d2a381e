"""The ``report`` step of ``hepnn run``: one combined report of an analysis' runs.

Besides ``OUT/report`` the step writes ``OUT/results.md``: the test-split numbers of
every run and of the BDT baseline as Markdown tables, with the sample sizes, seeds
and the command that produced them. ``hepnn run ANALYSIS --update-readme`` copies
that text between the ``<!-- hepnn:results:begin -->`` and
``<!-- hepnn:results:end -->`` markers of the analysis' ``README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from .._fileio import atomic_write_text
from .._version import __version__
from ..config import variant
from ..exceptions import ConfigError, InputDataError
from ..training.baseline import BDT_DIR
from ..training.kfold import is_kfold_run
from ..training.rundir import RunDirectory
from ..training.step import run_dirs
from .report import make_report

__all__ = [
    "report_step",
    "read_baselines",
    "collect_results",
    "results_table",
    "write_results",
    "replace_results_block",
    "update_readme",
    "RESULTS_BEGIN",
    "RESULTS_END",
]

RESULTS_BEGIN = "<!-- hepnn:results:begin -->"
RESULTS_END = "<!-- hepnn:results:end -->"
RESULTS_FILE = "results.md"


def read_baselines(path: str | Path) -> dict[str, tuple]:
    """Baseline scores from ``baselines.npz`` (``scores_<name>``, ``labels_<name>``, optionally
    ``weights_<name>``) or ``baselines.json``: ``{name: (scores, labels)}`` or ``(scores, labels, weights)``.

    The JSON form is ``{name: {"scores": [...], "labels": [...]}}``, optionally with ``"weights": [...]``.
    A missing file gives ``{}``.
    """
    import numpy as np

    path = Path(path)
    if not path.is_file():
        return {}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            names = [k[len("scores_"):] for k in f.files if k.startswith("scores_")]
            return {n: (f[f"scores_{n}"], f[f"labels_{n}"]) + ((f[f"weights_{n}"],) if f"weights_{n}" in f.files else ())
                    for n in names if f"labels_{n}" in f.files}
    payload = json.loads(path.read_text())
    # weights, when given, as in the npz form (dropped, the baseline's curve would be unweighted beside weighted runs)
    return {str(n): (np.asarray(v["scores"], float), np.asarray(v["labels"], int))
            + ((np.asarray(v["weights"], float),) if v.get("weights") is not None else ())
            for n, v in payload.items()}


def report_step(
    analysis: Any,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
    extra_scores: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``OUT/report`` for every run of the analysis, with its ``plots()`` hook and any baselines.

    Baselines come from ``extra_scores`` or, when not given, from ``OUT/baselines.npz`` /
    ``OUT/baselines.json`` when such a file exists.
    """
    out_dir = Path(out_dir)
    dirs = {name: path for name, path in run_dirs(analysis, out_dir).items()}
    # a k-fold run has its models in folds/<k>/ (the report names a missing one)
    missing = [name for name, path in dirs.items() if not (RunDirectory(path).is_trained() or is_kfold_run(path))]
    if missing:
        msg = f"[{analysis.name}] report: runs {missing} are not trained; run the train step first"

        raise InputDataError(msg)
    if extra_scores is None:
        extra_scores = {}
        for name in ("baselines.npz", "baselines.json"):
            extra_scores.update(read_baselines(out_dir / name))
    runs: Any = dirs if len(dirs) > 1 else next(iter(dirs.values()))
    # OUT is the analysis folder `hepnn run` claimed (or was told to with --force); "report" is a name reserved
    # for this step, so OUT/report is hepnn's, also one an older hepnn left half-written
    report = make_report(
        runs, out=out_dir / "report", data=data, extra_scores=extra_scores or None,
        analysis=analysis, hook=analysis.plots, force=True,
    )
    log(f"[{analysis.name}] report -> {report / 'index.html'}")
    results = write_results(analysis, out_dir)
    log(f"[{analysis.name}] results table -> {results}")
    return report


# --- the results table ------------------------------------------------------------


def collect_results(analysis: Any, out_dir: str | Path) -> dict[str, dict]:
    """Every run's ``metrics.json`` (and the BDT baseline's) with what the table shows about it.

    Returns ``{name: {"metrics": {...}, "model": "dense on highlevel", "train_classes": [...] or None}}``
    in run order, the baseline last as ``"BDT (baseline)"``. Runs without ``metrics.json`` are left out.
    """
    out_dir = Path(out_dir)
    config = analysis.config
    rows: dict[str, dict] = {}
    for name, path in run_dirs(analysis, out_dir).items():
        metrics_file = path / "metrics.json"
        if not metrics_file.is_file():
            continue
        cfg = variant(config, name) if config.variants else config
        inputs = ", ".join(cfg.model.inputs or cfg.data.inputs)
        cell = cfg.model.params.get("cell")
        model = f"{cfg.model.name}{f' ({cell})' if cell else ''} on {inputs}"
        rows[name] = {"metrics": json.loads(metrics_file.read_text()), "model": model,
                      "train_classes": list(cfg.training.train_classes) if cfg.training.train_classes else None}
    bdt = out_dir / BDT_DIR / "metrics.json"
    if bdt.is_file() and config.baseline is not None:
        names = ", ".join(config.baseline.inputs or [n for n, s in config.data.inputs.items() if s.kind != "image"])
        rows["BDT (baseline)"] = {"metrics": json.loads(bdt.read_text()),
                                  "model": f"HistGradientBoostingClassifier on {names}", "train_classes": None}
    return rows


def _fmt_auc(value: Any) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def _fmt_rejection(value: Any) -> str:
    """1/eB with three significant digits; ``None`` (no background left in the test set) is infinite."""
    if value is None:
        return "∞"
    value = float(value)
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def _wp_header(wp: float) -> str:
    return f"{100 * float(wp):g}%"


def _rejections(metrics: Mapping, wps) -> list[str]:
    rejection = metrics.get("rejection", {})
    return [_fmt_rejection(rejection.get(f"{float(wp):g}")) if f"{float(wp):g}" in rejection else "–" for wp in wps]


def results_table(
    rows: Mapping[str, Mapping],
    working_points,
    *,
    command: str | None = None,
    setup: list[str] | None = None,
) -> str:
    """The Markdown text of the results: one table per kind of run, then the set-up lines.

    Parameters
    ----------
    rows : mapping
        As returned by :func:`collect_results`: name -> ``{"metrics", "model", "train_classes"}``
        (``model`` and ``train_classes`` optional).
    working_points : sequence of float
        Signal efficiencies of the rejection columns.
    command : str, optional
        The command that produced the numbers.
    setup : list of str, optional
        Extra bullet lines (sample sizes, seeds).

    Examples
    --------
    >>> m = {"task": "binary", "auc": 0.95, "rejection": {"0.5": 40.0}, "n_test": 100}
    >>> print(results_table({"dense": {"metrics": m}}, [0.5]).splitlines()[0])
    | model | architecture | AUC | 1/εB @ 50% | test jets |
    >>> print(results_table({"dense": {"metrics": m}}, [0.5]).splitlines()[2])
    | dense |  | 0.9500 | 40 | 100 |
    """
    wps = [float(wp) for wp in working_points]
    binary = {n: r for n, r in rows.items() if r["metrics"].get("task", "binary") == "binary"}
    multi = {n: r for n, r in rows.items() if r["metrics"].get("task") == "multiclass"}
    anomaly = {n: r for n, r in rows.items() if r["metrics"].get("task") == "autoencoder"}
    parts: list[str] = []
    wp_cols = " | ".join(f"1/εB @ {_wp_header(wp)}" for wp in wps)
    light_cols = " | ".join(f"1/εlight @ {_wp_header(wp)}" for wp in wps)
    sep = "|" + "---|" * (3 + len(wps) + 1)
    if binary:
        parts.append(f"| model | architecture | AUC | {wp_cols} | test jets |")
        parts.append(sep)
        for name, row in binary.items():
            m = row["metrics"]
            parts.append(f"| {name} | {row.get('model', '')} | {_fmt_auc(m.get('auc'))} | "
                         f"{' | '.join(_rejections(m, wps))} | {m.get('n_test', '–')} |")
        parts.append("")
        parts.append("1/εB @ x%: background rejection at signal efficiency x; ∞: no background "
                     "jet of the test split passes.")
        parts.append("")
    if multi:
        for tag, what in (("b", "b-jet"), ("c", "c-jet")):
            key = f"{tag}_vs_light"
            if not any(key in r["metrics"].get("discriminants", {}) for r in multi.values()):
                continue
            parts.append(f"**{tag}-tagging** (discriminant {tag} vs light): light-jet rejection at each "
                         f"{what} efficiency")
            parts.append("")
            parts.append(f"| model | architecture | accuracy | {tag}-vs-light AUC | {light_cols} | test jets |")
            parts.append("|" + "---|" * (4 + len(wps) + 1))
            for name, row in multi.items():
                m = row["metrics"]
                d = m.get("discriminants", {}).get(key, {})
                parts.append(f"| {name} | {row.get('model', '')} | {_fmt_auc(m.get('accuracy'))} | "
                             f"{_fmt_auc(d.get('auc'))} | {' | '.join(_rejections(d, wps))} | {m.get('n_test', '–')} |")
            parts.append("")
        if not any(r["metrics"].get("discriminants") for r in multi.values()):
            parts.append("| model | architecture | accuracy | test jets |")
            parts.append("|---|---|---|---|")
            for name, row in multi.items():
                m = row["metrics"]
                parts.append(f"| {name} | {row.get('model', '')} | {_fmt_auc(m.get('accuracy'))} | {m.get('n_test', '–')} |")
            parts.append("")
    if anomaly:
        parts.append("**Anomaly detection** (score: reconstruction error; the trained-on class is the background)")
        parts.append("")
        parts.append(f"| model | architecture | trained on | background | AUC | {wp_cols} | test jets |")
        parts.append("|" + "---|" * (5 + len(wps) + 1))
        for name, row in anomaly.items():
            m = row["metrics"]
            trained = ", ".join(row.get("train_classes") or []) or "all"
            parts.append(f"| {name} | {row.get('model', '')} | {trained} | {m.get('background', '–')} | "
                         f"{_fmt_auc(m.get('auc'))} | {' | '.join(_rejections(m, wps))} | {m.get('n_test', '–')} |")
        parts.append("")
        parts.append("AUC below 0.5: the signal jets are reconstructed better than the background jets the "
                     "autoencoder was trained on (the anomaly score points the wrong way).")
        parts.append("")
    if any(r["metrics"].get("weighted") for r in rows.values()):
        parts.append("Weighted by the jets' weights (`evaluation.weighted`: `data.weight` times each file "
                     "group's `weight`).")
        parts.append("")
    folded = [name for name, r in rows.items() if r["metrics"].get("scored_out_of_fold")]
    if folded:
        parts.append(f"k-fold ({', '.join(folded)}): every jet scored by the fold model that did not train on it; "
                     "its test jets are all jets.")
        parts.append("")
    if not rows:
        parts.append("(no evaluated runs)")
        parts.append("")
    if command or setup:
        if command:
            parts.append(f"Produced by `{command}`.")
            parts.append("")
        for line in setup or []:
            parts.append(f"- {line}")
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


def _setup_lines(analysis: Any) -> list[str]:
    config = analysis.config
    lines = []
    generate = config.generate
    if generate is not None and generate.samples:
        samples = []
        for index, (name, sample) in enumerate(generate.samples.items()):
            seed = sample.seed if sample.seed is not None else generate.seed + index
            layout = "" if sample.layout == "per_jet" else f", {sample.layout}"
            samples.append(f"`{name}` {sample.n_jets} {sample.sample} jets (seed {seed}{layout})")
        lines.append("generated samples: " + "; ".join(samples))
    else:
        lines.append("data: " + ", ".join(f"`{f.path}`" for f in config.data.files))
    split = config.data.split
    lines.append(f"split train/val/test {split.train:g}/{split.val:g}/{split.test:g} (seed {split.seed}); "
                 f"numbers on the test split")
    t = config.training
    lines.append(f"training: up to {t.epochs} epochs, batch {t.batch_size}, {t.optimizer.name} "
                 f"(learning rate {t.optimizer.learning_rate:g}), seed {t.seed}"
                 + (f", early stopping (patience {t.early_stopping.patience})" if t.early_stopping else ""))
    lines.append(f"hepnn {__version__}")
    return lines


def _tensorflow_threads(analysis: Any, out_dir: Path) -> str:
    """The intra-op thread counts the runs' ``provenance.json`` record (``"1"``, ``"1, 2"``; ``""``: none)."""
    counts = set()
    for path in run_dirs(analysis, out_dir).values():
        try:
            host = json.loads(RunDirectory(path).provenance.read_text()).get("host", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(host, dict) and isinstance(host.get("tensorflow_threads"), int):
            counts.add(host["tensorflow_threads"])
    return ", ".join(str(c) for c in sorted(counts))


def write_results(analysis: Any, out_dir: str | Path, command: str | None = None) -> Path:
    """Write ``OUT/results.md`` from the runs' ``metrics.json`` files and return its path.

    ``command`` defaults to the one ``hepnn run`` recorded on the analysis (``analysis.command``).
    """
    out_dir = Path(out_dir)
    rows = collect_results(analysis, out_dir)
    command = command or getattr(analysis, "command", None) or f"hepnn run {analysis.name}"
    setup = _setup_lines(analysis)
    threads = _tensorflow_threads(analysis, out_dir)
    if threads:
        setup.insert(-1, f"TensorFlow intra-op threads per run: {threads} (the last digits depend on the count; "
                         "`TF_NUM_INTRAOP_THREADS` sets it)")
    table = results_table(rows, analysis.config.evaluation.working_points, command=command, setup=setup)
    return atomic_write_text(out_dir / RESULTS_FILE, f"# Results of `{analysis.name}`\n\n{table}")


def replace_results_block(text: str, table: str, where: str = "README.md") -> str:
    r"""``text`` with everything between the results markers replaced by ``table``.

    Examples
    --------
    >>> replace_results_block(f"a\n{RESULTS_BEGIN}\nold\n{RESULTS_END}\nb\n", "new\n")
    'a\n<!-- hepnn:results:begin -->\nnew\n<!-- hepnn:results:end -->\nb\n'
    """
    begin, end = text.find(RESULTS_BEGIN), text.find(RESULTS_END)
    if begin < 0 or end < 0 or end < begin or text.count(RESULTS_BEGIN) != 1 or text.count(RESULTS_END) != 1:
        msg = (f"{where}: expected one {RESULTS_BEGIN} line followed by one {RESULTS_END} line around the "
               f"results block; add them where the table should go")
        raise ValueError(msg)
    head = text[: begin + len(RESULTS_BEGIN)]
    tail = text[end:]
    return f"{head}\n{table.rstrip()}\n{tail}"


def update_readme(analysis: Any, out_dir: str | Path, readme: str | Path | None = None) -> Path:
    """Put ``OUT/results.md`` (without its title) into the results block of the analysis' README.

    ``readme`` defaults to ``README.md`` in the analysis folder. The file is replaced atomically.
    """
    out_dir = Path(out_dir)
    results = out_dir / RESULTS_FILE
    if not results.is_file():
        msg = f"{results}: no results table; run the report step first (hepnn run ANALYSIS --steps report)"
        raise InputDataError(msg)
    if readme is None:
        if getattr(analysis, "directory", None) is None:
            msg = f"analysis {analysis.name!r} has no folder, so no README.md to update"
            raise ConfigError(msg)
        readme = Path(analysis.directory) / "README.md"
    readme = Path(readme)
    if not readme.is_file():
        msg = f"{readme}: no such file; create it with {RESULTS_BEGIN} and {RESULTS_END} lines"
        raise ConfigError(msg)
    body = results.read_text().split("\n", 1)
    table = body[1].lstrip("\n") if body[0].startswith("# ") and len(body) > 1 else results.read_text()
    try:
        text = replace_results_block(readme.read_text(), table, where=str(readme))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return atomic_write_text(readme, text)
