"""The report and plots: fixes of the bugs an audit left open (re-run report folders, empty or infinite
figures, the multiclass accuracy, weights of the reconstruction error, axes of feature maps, epochs)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from hepnn.metrics import efficiency_curve, rejection_at, roc_auc  # noqa: E402
from hepnn.plotting import (plot_average_images, plot_conv_filters, plot_feature_maps, plot_latent,  # noqa: E402
                            plot_learning_curves, plot_mass_sculpting, plot_reconstruction_error, read_history)
from hepnn.plotting import report as report_module  # noqa: E402
from hepnn.plotting.report import (REPORT_FIGURES, FigureItem, ReportContext, ReportFigure, ReportRun,  # noqa: E402
                                   SkipFigure, build_report, report_figure)

PLOTS = SimpleNamespace(formats=("png",), style="plain", label="Simulation", energy=14.0, working_point=0.5)


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def toy(n=500, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return {
        "jet": (rng.normal(size=(n, 4)) + y[:, None]).astype("float32"),
        "label": y.astype("int32"),
        "weight": np.ones(n, "float32"),
        "split": rng.choice([0, 1, 2], n, p=[0.6, 0.2, 0.2]).astype("int8"),
        "spec_jet_mass": rng.uniform(50, 250, n).astype("float32"),
    }


def train(path, data):
    pytest.importorskip("tensorflow")
    from hepnn.training.trainer import Trainer

    config = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c", "d"]}},
                       "spectators": ["jet_mass"]},
              "model": {"name": "dense", "units": [4]},
              "training": {"epochs": 1, "batch_size": 64, "verbose": 0},
              "evaluation": {"working_points": [0.3, 0.5]},
              "plots": {"formats": ["png"]}}
    Trainer(config, log=lambda _: None).fit(path, data=data)
    return path


def fake_run(name, scores, is_sig, tmp_path, *, weights=None, task="binary", labels=None, classes=("qcd", "top")):
    labels = is_sig.astype(int) if labels is None else labels
    return ReportRun(name=name, path=tmp_path, config=None, task=task, classes=list(classes),
                     test={"label": labels, "data": {}, "outputs": scores}, train=None, metrics={}, signal=1,
                     score_test=np.asarray(scores, dtype=float), is_sig_test=np.asarray(is_sig, dtype=bool),
                     weight_test=weights)


def context(tmp_path, runs, wps=(0.3, 0.5)):
    (tmp_path / "plots").mkdir(parents=True, exist_ok=True)
    return ReportContext(tmp_path, PLOTS, runs, {}, tuple(wps), 0.5)


def draw(name, ctx, item_runs, **kwargs):
    entry = REPORT_FIGURES.get(name)
    item = FigureItem(entry, stem=name, runs=item_runs, run=item_runs[0], **kwargs)
    return entry.draw(ctx, item)


# 1. a report re-run into its folder -----------------------------------------------------------------


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    data = toy()
    run = train(root / "dense", data)
    import matplotlib.pyplot as plt

    # what `hepnn explain` leaves: a finished method folder and its staged .tmp/.old folders
    for folder in ("explain/permutation", "explain/.tmp", "explain/.old/permutation"):
        (run / folder).mkdir(parents=True)
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        fig.savefig(run / folder / "ranking.png")
        plt.close(fig)
    return {"run": run, "data": data, "root": root}


def _listed(report_dir: Path) -> set[str]:
    manifest = json.loads((report_dir / "manifest.json").read_text())
    return {f for fig in manifest["figures"] for f in fig["files"]}


def test_rerun_killed_midway_leaves_no_old_page_and_prunes_what_the_old_report_wrote(binary_run, monkeypatch):
    run, data, out = binary_run["run"], binary_run["data"], binary_run["root"] / "report"

    @report_figure("audit_extra", section="overtraining")
    def audit_extra(ctx, item):
        fig, ax = ctx.pyplot().subplots()
        ax.plot([0, 1])
        return ReportFigure(name=item.stem, section="overtraining", variant=item.run.name, title="Extra",
                            caption="Drawn by the first report only.", files=ctx.finish(fig, item.stem, ax))

    try:
        first = build_report(run, out=out, data=data, progress=False)
    finally:
        REPORT_FIGURES.unregister("audit_extra")
    assert "plots/audit_extra.png" in _listed(out) and (out / "plots" / "audit_extra.png").is_file()
    (out / "plots" / "mine.png").write_bytes(b"the user's own file")  # never listed by a report
    assert {f.name for f in first.figures} >= {"roc", "rejection"}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while drawing")

    @report_figure("audit_killed", section="performance", scope="all")
    def audit_killed(ctx, item):  # drawn only by the re-run that is killed, after the figures of all taggers
        fig, ax = ctx.pyplot().subplots()
        ax.plot([0, 1])
        return ReportFigure(name=item.stem, section="performance", title="Killed", caption="Drawn before the kill.",
                            files=ctx.finish(fig, item.stem, ax))

    old_page = (out / "index.html").stat().st_mtime_ns
    monkeypatch.setattr(report_module, "plot_scores", killed)  # the first figure per run: killed after the others
    try:
        with pytest.raises(KeyboardInterrupt):
            build_report(run, out=out, data=data, progress=False)
    finally:
        REPORT_FIGURES.unregister("audit_killed")
    # the folder no longer looks complete: no page, no manifest, no metrics of the old report beside new plots
    assert not (out / "index.html").exists() and not (out / "manifest.json").exists()
    assert not (out / "metrics.json").exists()
    assert (out / "plots" / "rejection.png").stat().st_mtime_ns > old_page  # drawn again by the killed re-run
    assert (out / "plots" / "audit_killed.png").is_file()
    monkeypatch.undo()

    third = build_report(run, out=out, data=data, progress=False)
    listed = _listed(out)
    assert (out / "index.html").is_file() and "plots/roc.png" in listed
    # the figures the new report no longer draws are gone: listed by the first report's manifest, or drawn by the
    # killed re-run ...
    assert "plots/audit_extra.png" not in listed and not (out / "plots" / "audit_extra.png").exists()
    assert not (out / "plots" / "audit_killed.png").exists()
    assert "audit_extra" not in (out / "index.html").read_text()
    # ... the user's file stays, and every listed file exists
    assert (out / "plots" / "mine.png").read_bytes() == b"the user's own file"
    assert all((out / f).is_file() for f in listed)
    assert not any(p.name.startswith(".hepnn-report") for p in out.iterdir())
    # 1b. staged dot-folders of `hepnn explain` are no explanations
    explain = [f.name for f in third.figures if f.section == "explain"]
    assert explain == ["explain_dense_permutation_ranking"]
    assert not any(f.startswith("explain/dense/.") for f in listed)


def test_explanations_skip_the_staged_dot_folders_of_hepnn_explain(tmp_path):
    import matplotlib.pyplot as plt

    run_dir = tmp_path / "run"
    for folder in ("permutation", ".tmp", ".old/permutation", ".old"):
        (run_dir / "explain" / folder).mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        fig.savefig(run_dir / "explain" / folder / "ranking.png")
        plt.close(fig)
    run = fake_run("dense", np.zeros(4), np.arange(4) % 2 == 1, run_dir)
    ctx = context(tmp_path / "report", [run])
    figures = draw("explanations", ctx, [run])
    assert [f.name for f in figures] == ["explain_dense_permutation_ranking"]
    assert figures[0].files == ["explain/dense/permutation/ranking.png"]
    assert sorted(p.relative_to(tmp_path / "report").as_posix() for p in (tmp_path / "report").rglob("*.png")) == \
        ["explain/dense/permutation/ranking.png"]


# 2. mass sculpting with no background jet passing the cut ---------------------------------------------


def separated(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.uniform(50, 250, n), y + 0.01 * rng.random(n), y  # every signal jet above every background jet


def test_mass_sculpting_without_background_after_the_cut_is_named_not_drawn_empty():
    mass, scores, y = separated()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty unit-area histogram divided by zero before
        res = plot_mass_sculpting(mass, scores, y, working_points=(0.5, 0.3))
    assert res.empty == [0.5, 0.3]
    assert set(res.artists) == {"before"}
    labels = [t.get_text() for t in res.ax.get_legend().get_texts()]
    assert "$\\varepsilon_S$ = 0.3: no background jet passes" in labels
    assert res.hists["eff_s=0.3"].values().sum() == 0 and np.isnan(res.jsd[0.3])
    # a working point with background left is drawn as before
    rng = np.random.default_rng(1)
    res = plot_mass_sculpting(mass, rng.normal(y), y, working_points=(0.5,))
    assert res.empty == [] and "eff_s=0.5" in res.artists


def test_report_mass_sculpting_names_the_working_point_without_background(tmp_path):
    mass, scores, y = separated()
    run = fake_run("tagger", scores, y == 1, tmp_path)
    run.test["data"]["spec_jet_mass"] = mass
    ctx = context(tmp_path, [run])
    fig = draw("mass_sculpting", ctx, [run], spectator="spec_jet_mass")  # the mass before the cut only
    assert fig.summary["no_background_passes"] == ["0.5", "0.3"]
    assert ctx.notes == ["tagger: mass sculpting plot: no background jet of the test split passes the cut at "
                         "eff_S = 0.5, eff_S = 0.3, so the sculpting cannot be shown there (not drawn); use more "
                         "test jets or a higher working point"]
    assert "Jensen" not in fig.caption and "No background jet passes the cut at eff_S = 0.5, eff_S = 0.3" in fig.caption
    assert set(fig.result.artists) == {"before"}
    ctx.notes.clear()
    # background left at 0.5 only: drawn, with a note naming 0.3
    cuts = plot_mass_sculpting(mass, scores, y, working_points=(0.5, 0.3)).cuts
    scores = scores.copy()
    scores[np.flatnonzero(y == 0)[:55]] = (cuts[0.5] + cuts[0.3]) / 2  # 55 background jets between the two cuts
    run.score_test = scores
    fig = draw("mass_sculpting", ctx, [run], spectator="spec_jet_mass")
    assert fig.summary["no_background_passes"] == ["0.3"]
    assert len(ctx.notes) == 1 and "passes the cut at eff_S = 0.3, so" in ctx.notes[0]
    assert "Jensen-Shannon divergence to the distribution before the cut: 0.5: " in fig.caption
    assert "No background jet passes the cut at eff_S = 0.3" in fig.caption
    assert fig.result.hists["eff_s=0.5"].values().sum() == 55


# 3. k-fold means with an infinite fold --------------------------------------------------------------


def test_kfold_rejection_mean_is_infinite_when_a_fold_is_and_says_so(tmp_path):
    rng = np.random.default_rng(0)
    runs = []
    for k in range(3):
        y = np.arange(300) % 2
        scores = rng.normal(y, 1.0)
        if k == 0:
            scores = y + 0.01 * rng.random(300)  # fold 0 keeps no background at any cut below eff_S = 1
        runs.append(fake_run(f"kf/fold{k}", scores, y == 1, tmp_path))
    ctx = context(tmp_path, runs)
    fig = draw("rejection_folds", ctx, runs, group="kf")
    at = fig.summary["rejection"]["0.3"]
    finite = []
    for run in runs[1:]:
        eff_s, eff_b, _ = efficiency_curve(run.is_sig_test.astype(int), run.score_test)
        finite.append(float(rejection_at(eff_s, eff_b, 0.3)))
    assert at["n_infinite"] == 1 and at["mean"] == np.inf and at["std"] is None
    assert at["mean_of_finite_folds"] == pytest.approx(np.mean(finite))
    assert any("0.3: 1 of 3 folds have infinite rejection" in n for n in ctx.notes)
    assert "infinite there and not drawn" in fig.caption
    # the curve is not a mean over the two finite folds: nothing drawn where fold 0 is infinite
    assert np.all(np.isnan(fig.result["line"].get_ydata()[:-1]))


def test_kfold_rejection_mean_of_finite_folds_is_unchanged(tmp_path):
    rng = np.random.default_rng(2)
    runs = [fake_run(f"kf/fold{k}", rng.normal(np.arange(400) % 2, 1.0), np.arange(400) % 2 == 1, tmp_path)
            for k in range(3)]
    ctx = context(tmp_path, runs)
    fig = draw("rejection_folds", ctx, runs, group="kf")
    values = []
    for run in runs:
        eff_s, eff_b, _ = efficiency_curve(run.is_sig_test.astype(int), run.score_test)
        values.append(float(rejection_at(eff_s, eff_b, 0.5)))
    at = fig.summary["rejection"]["0.5"]
    assert at["n_infinite"] == 0 and ctx.notes == []
    assert at["mean"] == pytest.approx(np.mean(values)) and at["std"] == pytest.approx(np.std(values, ddof=1))


# 4. the multiclass metrics table shows the overall accuracy -------------------------------------------


def test_multiclass_report_table_has_the_overall_accuracy(tmp_path):
    data = toy(n=450, n_classes=3, seed=3)
    run = train(tmp_path / "multi", data)
    report = build_report(run, out=tmp_path / "report", data=data, progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    from hepnn.training.evaluate import predict_split

    pred = predict_split(run, "test", data=data, store=False)
    accuracy = np.mean(np.argmax(pred["outputs"], axis=1) == pred["label"])
    assert metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    page = report.index.read_text()
    row = next(line for line in page.splitlines() if "all classes (highest probability)" in line)
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert cells[2] == f"{metrics['accuracy']:.4g}" and cells[-1] == str(len(pred["label"]))


# 5. the latent space of one jet ----------------------------------------------------------------------


def test_latent_of_one_jet_is_a_clear_error_and_a_report_note(tmp_path):
    with pytest.raises(ValueError, match="needs at least 2 jets, received 1"):
        plot_latent(np.ones((1, 4)), [0])
    assert plot_latent(np.ones((1, 2)), [0]).projection.shape == (1, 2)  # nothing to project: drawn
    run = fake_run("ae", np.ones(1), np.zeros(1, bool), tmp_path, task="autoencoder", labels=np.zeros(1, int))
    ctx = context(tmp_path, [run])
    ctx.cache["views"] = {("ae", "latent"): {"latent": np.ones((1, 4))}}
    with pytest.raises(SkipFigure, match="ae: no latent-space plot: its PCA projection needs at least 2 test jets"):
        draw("latent", ctx, [run])


# 6. feature maps: eta along x, as every jet image ------------------------------------------------------


def test_feature_maps_put_eta_on_x_like_jet_images():
    image = np.zeros((5, 3))
    image[4, 0] = 1.0  # the largest eta, the smallest phi
    fmap = plot_feature_maps({"mean top": image[..., None]}, n_maps=1)
    avg = plot_average_images(image[None], np.zeros(1, int), difference=None, log=False, extent=(-1, 1, -1, 1))
    drawn = np.asarray(fmap.images[0].get_array())
    reference = np.asarray(next(iter(avg.panels.values())).image.get_array())
    assert drawn.shape == reference.shape == (3, 5)  # (phi rows, eta columns)
    np.testing.assert_array_equal(drawn, image.T)
    assert np.unravel_index(np.argmax(drawn), drawn.shape) == np.unravel_index(np.argmax(reference), reference.shape)
    ax = fmap.axes[0]
    assert ax.get_xlabel() == "$\\Delta\\eta$" and ax.get_ylabel().splitlines() == ["mean top", "$\\Delta\\phi$"]
    # the first convolution's kernels beside them: the same orientation
    kernel = plot_conv_filters(image[:, :, None, None], n_filters=1)
    np.testing.assert_array_equal(kernel.images[0].get_array(), image.T)
    assert (kernel.axes[0].get_xlabel(), kernel.axes[0].get_ylabel()) == ("$\\Delta\\eta$", "$\\Delta\\phi$")


# 7. the reconstruction error honours weights ---------------------------------------------------------


def test_reconstruction_error_is_weighted(tmp_path):
    rng = np.random.default_rng(4)
    y = np.arange(400) % 2
    errors = rng.exponential(1 + y)
    w = rng.uniform(0.2, 3.0, 400)
    res = plot_reconstruction_error(errors, y, class_names=["qcd", "top"], weights=w, density=False)
    assert res.hists["qcd"].values().sum() == pytest.approx(w[y == 0].sum())
    assert res.hists["top"].values().sum() == pytest.approx(w[y == 1].sum())
    assert res.auc == pytest.approx(roc_auc(y, errors, w))
    assert res.auc != pytest.approx(roc_auc(y, errors))
    run = fake_run("ae", errors, y == 1, tmp_path, weights=w, task="autoencoder", labels=y)
    run.signal = 0  # the trained-on background
    fig = draw("reconstruction", context(tmp_path, [run]), [run])
    assert fig.summary["auc"] == pytest.approx(roc_auc(y, errors, w))
    assert fig.caption.endswith("Weighted by the jets' weights (evaluation.weighted).")
    with pytest.raises(ValueError, match="weights has 3 entries but there are 400 jets"):
        plot_reconstruction_error(errors, y, weights=w[:3])


# 8. learning curves count epochs from 1 -------------------------------------------------------------


def test_keras_csvlogger_history_is_drawn_from_epoch_one_like_hepnns(tmp_path):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    model.fit(x, x[:, :1], epochs=3, verbose=0, validation_split=0.25,
              callbacks=[keras.callbacks.CSVLogger(str(tmp_path / "keras.csv"))])
    assert (tmp_path / "keras.csv").read_text().splitlines()[1].startswith("0,")  # Keras counts from 0
    res = plot_learning_curves(tmp_path / "keras.csv", ["loss"])
    assert res.lines["loss"]["train"].get_xdata().tolist() == [1, 2, 3]
    assert read_history(tmp_path / "keras.csv")["epoch"].tolist() == [1, 2, 3]
    hepnn_history = tmp_path / "history.csv"  # hepnn's own history.csv counts from 1: unchanged
    hepnn_history.write_text("epoch,loss,val_loss\n1,0.7,0.8\n2,0.5,0.6\n")
    assert read_history(hepnn_history)["epoch"].tolist() == [1, 2]


def test_a_null_metric_is_a_dash_and_only_a_null_rejection_is_infinite():
    """metrics.json writes NaN and infinite values as null; the table showed every null as infinity,
    so an AUC that could not be computed (one class in the test split) read as an infinite AUC."""
    from types import SimpleNamespace

    from hepnn.plotting.report import _metrics_table

    run = SimpleNamespace(name="dense", task="binary", metrics={
        "auc": None, "accuracy": 0.5, "rejection": {"0.5": None, "0.8": 12.5}, "n_test": 40})
    table = _metrics_table([run], {})
    row = next(line for line in table.splitlines() if line.startswith("<tr><td>dense"))
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert cells == ["dense", "&ndash;", "0.5", "&infin;", "12.5", "40"]
