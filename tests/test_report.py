"""The run report: hepnn.plotting.report, ``hepnn report`` and the report step, on tiny trained runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from hepnn.plotting import load_hists  # noqa: E402
from hepnn.plotting.report import build_report, find_spectator, make_report  # noqa: E402
from hepnn.training.trainer import Trainer  # noqa: E402

WP_KEYS = ("0.3", "0.5")


def toy(n=600, seed=0, spectators=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    out = {
        "jet": rng.normal(size=(n, 4)).astype("float32") + y[:, None],
        "image": (rng.random((n, 8, 8, 1)) * (1 + y[:, None, None, None])).astype("float32"),
        "label": y.astype("int32"),
        "weight": np.ones(n, "float32"),
        "split": rng.choice([0, 1, 2], n, p=[0.6, 0.2, 0.2]).astype("int8"),
    }
    if spectators:
        out["spec_jet_pt"] = rng.uniform(500, 700, n).astype("float32")
        out["spec_jet_eta"] = rng.uniform(-2, 2, n).astype("float32")
        out["spec_jet_mass"] = (rng.uniform(50, 250, n) + 20 * y).astype("float32")
    return out


def toy_config(model, plots=None):
    cfg = {
        "data": {
            "inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c", "d"]}, "image": {"kind": "image"}},
            "spectators": ["jet_pt", "jet_eta", "jet_mass"],
        },
        "model": model,
        "training": {"epochs": 2, "batch_size": 64, "verbose": 0},
        "evaluation": {"working_points": [0.3, 0.5]},
    }
    if plots:
        cfg["plots"] = plots
    return cfg


def quiet(_):
    pass


def baseline(data):
    test = data["split"] == 2
    return {"bdt": (data["jet"][test].sum(axis=1), data["label"][test])}


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    data = toy()
    dense = Trainer(
        toy_config({"name": "dense", "units": [8], "inputs": ["jet"]},
                   plots={"style": "CMS", "label": "Work in progress", "energy": 13.6}),
        log=quiet,
    ).fit(root / "dense", data=data)
    Trainer(toy_config({"name": "cnn", "inputs": ["image"]}), log=quiet).fit(root / "cnn", data=data)
    # what an explainer leaves behind
    import matplotlib.pyplot as plt

    method = root / "dense" / "explain" / "permutation"
    method.mkdir(parents=True)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(method / "ranking.png")
    fig.savefig(method / "ranking.pdf")
    plt.close(fig)
    rng = np.random.default_rng(3)
    np.savez(method / "values.npz", values_jet=rng.normal(size=(50, 4)) * [4, 3, 2, 1],
             inputs_jet=rng.normal(size=(50, 4)), feature_names_jet=np.array(["a", "b", "c", "d"]))
    assert dense is not None
    return {"root": root, "data": data, "dense": root / "dense", "cnn": root / "cnn"}


@pytest.fixture(scope="module")
def toy_figures():
    """A plot added to the report by one registered function (and one that needs a multiclass run)."""
    from hepnn.plotting.report import REPORT_FIGURES, ReportFigure, report_figure

    @report_figure("toy_score_mean", section="overtraining", plots=("scores",))
    def toy_score_mean(ctx, item):
        fig, ax = ctx.pyplot().subplots()
        ax.hist(item.run.score_test, bins=10)
        return ReportFigure(name=item.stem, section="overtraining", variant=item.run.name, title="Toy",
                            caption="Mean test score.", files=ctx.finish(fig, item.stem, ax),
                            summary={"mean": float(np.mean(item.run.score_test))})

    @report_figure("toy_multiclass_only", section="multiclass", tasks=("multiclass",))
    def toy_multiclass_only(ctx, item):
        raise AssertionError("drawn for a binary run")

    yield
    REPORT_FIGURES.unregister("toy_score_mean")
    REPORT_FIGURES.unregister("toy_multiclass_only")


@pytest.fixture(scope="module")
def single(runs, toy_figures):
    return build_report(runs["dense"], data=runs["data"], extra_scores=baseline(runs["data"]), progress=False)


@pytest.fixture(scope="module")
def combined(runs):
    return build_report({"dense": runs["dense"], "cnn": runs["cnn"]}, out=runs["root"] / "combined",
                        data=runs["data"], extra_scores=baseline(runs["data"]), progress=False)


def _links(index: Path) -> tuple[list[str], list[str]]:
    text = index.read_text()
    return re.findall(r'<img src="([^"]+)"', text), re.findall(r'<a href="([^"]+)"', text)


@pytest.mark.parametrize("which", ["single", "combined"])
def test_index_shows_every_png_with_its_pdf(which, request):
    report = request.getfixturevalue(which)
    assert report.path.name == ("report" if which == "single" else "combined")
    imgs, links = _links(report.index)
    pngs = sorted(p.relative_to(report.path).as_posix() for p in report.path.rglob("*.png"))
    assert pngs and sorted(imgs) == pngs
    for png in pngs:
        assert png.replace(".png", ".pdf") in links
        assert (report.path / png.replace(".png", ".pdf")).is_file()
    for ref in imgs + links:
        assert not ref.startswith("/") and (report.path / ref).is_file(), ref
    for fig in report.figures:
        for f in fig.files:
            assert (report.path / f).is_file()
    manifest = json.loads((report.path / "manifest.json").read_text())
    assert [f["name"] for f in manifest["figures"]] == [f.name for f in report.figures]


def test_single_report_plots(single):
    names = {f.name for f in single.figures}
    expected = {"rejection", "roc", "scores", "learning", "mass_sculpting", "images_image"}
    expected |= {f"efficiency_{q}_{m}" for q in ("pt", "eta") for m in ("fixed", "flat")}
    assert expected <= names
    assert single.notes == []
    eff = single.figure("efficiency_pt_flat").result[0]
    np.testing.assert_allclose(eff.table.eff_s[np.isfinite(eff.table.eff_s)], 0.5, atol=0.15)
    assert single.figure("efficiency_eta_fixed").summary["variable"] == "spec_jet_eta"
    assert single.figure("mass_sculpting").summary["variable"] == "spec_jet_mass"
    assert "eff_S = 0.5" in single.figure("efficiency_pt_fixed").caption
    lc = single.figure("learning").result
    assert [len(lc.history["epoch"])] == [2] and "validation" in lc.lines["loss"]


def test_combined_rejection_has_every_tagger_and_baseline(combined):
    rej = combined.figure("rejection").result
    assert list(rej.lines) == ["dense", "cnn", "bdt"]
    assert len(rej.ax.get_lines()) == 3 and len(rej.ratio_lines) == 3
    assert rej.ax.get_yscale() == "log" and rej.ax_ratio.get_ylabel() == "Ratio to dense"
    roc = combined.figure("roc").result
    assert len(roc.lines) == 3 and "AUC" in roc.lines["cnn"].get_label()
    names = {f.name for f in combined.figures}
    assert {"scores_dense", "scores_cnn", "learning_dense", "learning_cnn", "efficiency_pt_fixed_cnn"} <= names
    assert sorted(combined.figure("images_image").result.panels) == ["background", "difference", "signal"]


def test_metrics_equal_evaluate_run(runs, single, combined):
    from hepnn.training.evaluate import evaluate_run

    expected = {v: evaluate_run(runs[v], data=runs["data"]) for v in ("dense", "cnn")}
    assert json.loads((combined.path / "metrics.json").read_text()) == expected
    assert json.loads((single.path / "metrics.json").read_text()) == expected["dense"]
    text = single.index.read_text()
    assert f"{expected['dense']['auc']:.4g}" in text and "bdt (baseline)" in text
    roc_auc = combined.figure("roc").summary["auc"]["dense"]
    assert roc_auc == pytest.approx(expected["dense"]["auc"], abs=1e-6)


def test_ks_pvalues_and_hists_match_the_scores(runs, combined):
    from scipy.stats import ks_2samp

    from hepnn.training.evaluate import predict_split

    test = predict_split(runs["cnn"], "test", data=runs["data"])
    train = predict_split(runs["cnn"], "train", data=runs["data"])
    s_te, s_tr = test["outputs"][:, 0], train["outputs"][:, 0]
    ks = combined.figure("scores_cnn").summary["ks_pvalue"]
    for cls, name in enumerate(["background", "signal"]):
        ref = ks_2samp(s_te[test["label"] == cls], s_tr[train["label"] == cls]).pvalue
        assert ks[name] == pytest.approx(ref, rel=1e-9)
    hists = load_hists(combined.path / "hists" / "scores_cnn.json")
    assert sorted(hists) == ["test/background", "test/signal", "train/background", "train/signal"]
    assert hists["test/signal"].sum().value == pytest.approx(np.sum(test["label"] == 1))
    assert hists["train/background"].sum().value == pytest.approx(np.sum(train["label"] == 0))
    sculpt = load_hists(combined.path / "hists" / "mass_sculpting_cnn.json")
    assert sculpt["before"].sum().value == pytest.approx(np.sum(test["label"] == 0))


def test_explanations_are_included(single):
    copied = single.figure("explain_dense_permutation_ranking")
    assert copied.files == ["explain/dense/permutation/ranking.png", "explain/dense/permutation/ranking.pdf"]
    imp = single.figure("importance_dense_permutation_jet").result
    assert imp.order[0] == "a" and sorted(imp.importance) == ["a", "b", "c", "d"]


def test_style_only_during_report_and_missing_spectators_noted(runs, single, tmp_path):
    texts = [t.get_text() for t in single.figure("rejection").result.ax.texts]
    assert "CMS" in texts and "Work in progress" in texts  # the run's plots config
    before = dict(matplotlib.rcParams)
    out = make_report(runs["dense"], out=tmp_path / "r", data=toy(spectators=False), progress=False)
    assert out == tmp_path / "r"
    assert dict(matplotlib.rcParams) == before
    manifest = json.loads((out / "manifest.json").read_text())
    names = {f["name"] for f in manifest["figures"]}
    assert {"rejection", "roc", "scores"} <= names
    assert not any(n.startswith(("efficiency_", "mass_sculpting")) for n in names)
    notes = manifest["notes"]
    assert any("against pt" in n for n in notes) and any("mass sculpting" in n for n in notes)
    assert "add it to data.spectators" in (out / "index.html").read_text()


def test_find_spectator():
    keys = {"spec_jet_pt": 0, "spec_jet_ptd": 0, "spec_jet_eta": 0, "spec_fatjet_msoftdrop": 0, "spec_jet_mass": 0}
    assert find_spectator(keys, "pt") == "spec_jet_pt"
    assert find_spectator(keys, "mass") == "spec_fatjet_msoftdrop"
    assert find_spectator({"jet_pt": 0}, "pt") is None


def _write_root(path, n, shift, seed):
    import uproot

    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        f["jets"] = {
            "jet_pt": rng.uniform(500, 700, n), "jet_eta": rng.uniform(-2, 2, n),
            "jet_mass": rng.uniform(50, 250, n) + 30 * shift, "jet_tau21": rng.uniform(0, 1, n) - 0.3 * shift,
        }


def test_cli_report(tmp_path, capsys):
    from hepnn.cli import main

    _write_root(tmp_path / "sig.root", 200, 1, 1)
    _write_root(tmp_path / "bkg.root", 200, 0, 2)
    cfg = {
        "data": {
            "files": [{"path": str(tmp_path / "sig.root"), "tree": "jets", "label": 1},
                      {"path": str(tmp_path / "bkg.root"), "tree": "jets", "label": 0}],
            "inputs": {"jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau21"]}},
            "spectators": ["jet_pt", "jet_eta", "jet_mass"],
        },
        "model": {"name": "dense", "units": [8]},
        "training": {"epochs": 1, "verbose": 0},
        "plots": {"formats": ["png"]},
    }
    run = tmp_path / "run"
    Trainer(cfg, log=quiet).fit(run)
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--no-progress"]) == 0
    assert (tmp_path / "rep" / "index.html").is_file() and (tmp_path / "rep" / "plots" / "roc.png").is_file()
    assert not list((tmp_path / "rep").rglob("*.pdf"))  # plots.formats is respected
    assert "efficiency_pt_fixed" in (tmp_path / "rep" / "index.html").read_text()

    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text((run / "config.yaml").read_text())
    assert main(["report", str(empty)]) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.keras" in err[0]


def test_report_step_with_hook_and_baselines(runs, tmp_path):
    from hepnn import Analysis
    from hepnn.plotting.step import report_step

    written = []

    class WithPlots(Analysis):
        def plots(self, run_dir, results):
            import matplotlib.pyplot as plt

            assert set(results) == {"model"} and "auc" in results["model"]["metrics"]
            fig, ax = plt.subplots()
            ax.plot([1, 2])
            path = Path(run_dir) / "custom.png"
            fig.savefig(path)
            plt.close(fig)
            written.append(path)
            return [path]

    import shutil

    analysis = WithPlots(config=toy_config({"name": "dense", "units": [8], "inputs": ["jet"]}))
    shutil.copytree(runs["dense"], tmp_path / "model", ignore=shutil.ignore_patterns("report", "explain"))
    test = runs["data"]["split"] == 2
    np.savez(tmp_path / "baselines.npz", scores_bdt=runs["data"]["jet"][test, 0], labels_bdt=runs["data"]["label"][test])
    lines = []
    out = report_step(analysis, tmp_path, log=lines.append, data=toy(spectators=False))
    assert out == tmp_path / "report" and written and lines
    text = (out / "index.html").read_text()
    assert '<img src="custom.png"' in text and "bdt (baseline)" in text
    manifest = json.loads((out / "manifest.json").read_text())
    rej = next(f for f in manifest["figures"] if f["name"] == "rejection")
    assert rej["summary"]["curves"] == ["model", "bdt"]


def test_cnn_runs_show_their_filters_and_feature_maps(runs, combined):
    from hepnn.explain.gradcam import conv_layers
    from hepnn.models import load_model

    names = {f.name for f in combined.figures}
    assert {"conv_filters_cnn", "feature_maps_cnn"} <= names
    assert "conv_filters_dense" not in names and "feature_maps_dense" not in names  # no image input
    model = load_model(runs["cnn"] / "model.keras")
    kernel = np.asarray(conv_layers(model)[0].kernel)
    drawn = combined.figure("conv_filters_cnn").result
    np.testing.assert_allclose(drawn.values[0], kernel[..., 0].sum(axis=-1), rtol=1e-6)
    fmap = combined.figure("feature_maps_cnn")
    assert fmap.summary["layer"] == conv_layers(model)[-1].name
    assert len(fmap.result.images) == 2 * min(6, conv_layers(model)[-1].filters)  # two classes


def test_a_registered_plot_is_drawn_in_the_report(runs, single):
    from hepnn.training.evaluate import predict_split

    fig = single.figure("toy_score_mean")
    assert fig.section == "overtraining" and fig.plots == ["scores"] and fig.files == ["plots/toy_score_mean.png",
                                                                                          "plots/toy_score_mean.pdf"]
    test = predict_split(runs["dense"], "test", data=runs["data"])
    assert fig.summary["mean"] == pytest.approx(float(np.mean(np.asarray(test["outputs"]).reshape(-1))), rel=1e-5)
    assert "toy_multiclass_only" not in {f.name for f in single.figures}  # its declared task does not match
    manifest = json.loads((single.path / "manifest.json").read_text())
    entry = next(f for f in manifest["figures"] if f["name"] == "toy_score_mean")
    assert entry["plots"] == ["scores"]
    assert next(f for f in manifest["figures"] if f["name"] == "roc")["plots"] == ["roc"]
    text = single.index.read_text()
    assert '<figure id="toy_score_mean"><img src="plots/toy_score_mean.png"' in text
    # in its section, after the scores of the same section
    assert text.index('id="scores"') < text.index('id="toy_score_mean"') < text.index("<h2>Learning curves</h2>")


def test_report_figure_registration_checks_what_it_declares():
    from hepnn.exceptions import UnknownNameError
    from hepnn.plotting.report import REPORT_FIGURES, report_figure, report_figures

    with pytest.raises(UnknownNameError, match="perfromance"):
        report_figure("bad", section="perfromance")
    with pytest.raises(UnknownNameError, match="rco"):
        report_figure("bad", section="performance", plots=("rco",))
    with pytest.raises(UnknownNameError, match="energy"):
        report_figure("bad", section="efficiency", spectator="energy")
    with pytest.raises(ValueError, match="input_kind"):
        report_figure("bad", section="images", scope="input")
    with pytest.raises(ValueError, match="already registered"):
        report_figure("roc", section="performance", scope="all")(lambda ctx, item: None)
    assert "bad" not in REPORT_FIGURES
    names = [e.name for e in report_figures()]
    assert names[:3] == ["rejection", "roc", "rejection_folds"]
    assert {"efn_filters", "conv_filters", "feature_maps", "explanations"} <= set(names)
    conv = REPORT_FIGURES.get("conv_filters")
    assert conv.input_kind == "image" and conv.tasks == ("binary", "multiclass")
    assert REPORT_FIGURES.get("mass_sculpting").spectator == "mass"


def test_combined_report_plots_rejection_against_sculpting(runs, combined):
    fig = combined.figure("rejection_vs_sculpting")
    for variant in ("dense", "cnn"):
        entry = json.loads((runs[variant] / "metrics.json").read_text())["sculpting"]
        assert entry["variable"] == "jet_mass"
        if entry["inv_jsd_50"] is None or entry["rejection_50"] is None:  # e.g. every background jet passes
            assert variant not in fig.result.points
        else:
            assert fig.result.points[variant] == (entry["inv_jsd_50"], entry["rejection_50"])
    assert fig.result.points
    assert fig.section == "sculpting" and "1/JSD" in fig.caption


def test_combined_report_notes_runs_with_another_signal(runs, combined, tmp_path):
    assert not any("define signal" in n for n in combined.notes)
    cfg = toy_config({"name": "dense", "units": [8], "inputs": ["jet"]})
    cfg["evaluation"]["signal"] = "background"
    Trainer(cfg, log=quiet).fit(tmp_path / "swapped", data=runs["data"])
    report = build_report({"dense": runs["dense"], "swapped": tmp_path / "swapped"}, out=tmp_path / "report",
                          data=runs["data"], progress=False)
    note = next(n for n in report.notes if "define signal" in n)
    assert "dense: signal against background" in note and "swapped: background against signal" in note
    assert "define signal" in (report.path / "index.html").read_text()


def test_mass_sculpting_plot_of_a_decorrelated_run_uses_its_variable(tmp_path):
    # metrics.json checked the sculpting of training.decorrelate.variable, the report looked for a
    # spectator named like *mass* only: "no mass sculpting plot (...; add it to data.spectators)" for a
    # run decorrelated against a spectator that data.spectators lists
    data = toy(spectators=False)
    data["spec_m"] = (np.random.default_rng(5).uniform(50, 250, len(data["label"])) + 20 * data["label"]).astype("float32")
    config = toy_config({"name": "dense", "units": [4], "inputs": ["jet"]})
    config["data"]["spectators"] = ["m"]
    config["training"]["decorrelate"] = {"method": "disco", "variable": "m"}
    Trainer(config, log=quiet).fit(tmp_path / "disco", data=data)
    report = build_report(tmp_path / "disco", out=tmp_path / "report", data=data, progress=False)
    figure = report.figure("mass_sculpting")
    assert figure.summary["variable"] == "spec_m"
    assert not any("mass sculpting" in n for n in json.loads((report.path / "manifest.json").read_text())["notes"])
    before = load_hists(report.path / "hists" / "mass_sculpting.json")["before"]
    background = data["spec_m"][(data["split"] == 2) & (data["label"] == 0)]
    expected, _ = np.histogram(background, before.axes[0].edges)
    np.testing.assert_allclose(before.values(), expected)


def test_kfold_spread_caption_says_whether_weighted(tmp_path):
    # evaluation.weighted: the fold-spread figure's rejections were weighted, its caption did not say so
    import uproot

    rng = np.random.default_rng(2)
    for name, shift in (("sig", 1.0), ("bkg", -1.0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["jets"] = {"a": rng.normal(shift, 1, 120).astype(np.float32), "b": rng.normal(0, 1, 120).astype(np.float32),
                         "w": rng.uniform(0.5, 1.5, 120)}
    cfg = {"data": {"directory": str(tmp_path), "weight": "w",
                    "files": [{"path": "sig.root", "tree": "jets", "label": 1},
                              {"path": "bkg.root", "tree": "jets", "label": 0, "weight": 3.0}],
                    "inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}}},
           "model": {"name": "dense", "units": [4]}, "training": {"epochs": 1, "verbose": 0, "folds": 3},
           "evaluation": {"weighted": True}}
    Trainer(cfg, log=lambda _: None).fit(tmp_path / "run")
    report = build_report(tmp_path / "run", out=tmp_path / "report", progress=False)
    assert report.figure("rejection_folds_run").caption.endswith("Weighted by the jets' weights (evaluation.weighted).")
