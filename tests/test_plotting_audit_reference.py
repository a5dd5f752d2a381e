"""Audit of the plotting layer against brute-force numpy/scipy references.

What is checked is what was drawn (``Line2D`` data, error-bar segments, mplhep stairs) or written
beside the plots (report summaries for ``manifest.json``), against references computed here by hand.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import jensenshannon

from hepnn.plotting import (binned_efficiency, plot_average_images, plot_confusion_matrix, plot_efficiency,
                            plot_learning_curves, plot_mass_sculpting, plot_reconstruction_error, plot_rejection,
                            plot_roc, plot_scores, read_history)

ONE_SIGMA = 0.6826894921370859


# --- brute-force references -------------------------------------------------------------------


def _curve(y, s, w):
    """(eff_s, eff_b) for every distinct threshold, highest first, from (0, 0): a jet passes when score >= t."""
    ws, wb = w[y == 1].sum(), w[y == 0].sum()
    es, eb = [0.0], [0.0]
    for t in np.unique(s)[::-1]:
        es.append(w[(y == 1) & (s >= t)].sum() / ws)
        eb.append(w[(y == 0) & (s >= t)].sum() / wb)
    return np.array(es), np.array(eb)


def _rejection(es, eb, wp):
    """1/eff_b at eff_s = wp: linear between the last curve point below wp and the first reaching it."""
    k = int(np.argmax(es >= wp))
    b = eb[k] if es[k] == wp else eb[k - 1] + (wp - es[k - 1]) / (es[k] - es[k - 1]) * (eb[k] - eb[k - 1])
    return 1 / b if b > 0 else np.inf


def _clopper_pearson(k, n, cl=ONE_SIGMA):
    alpha = (1 - cl) / 2
    lo = scipy.stats.beta.ppf(alpha, k, n - k + 1) if k > 0 else 0.0
    hi = scipy.stats.beta.ppf(1 - alpha, k + 1, n - k) if k < n else 1.0
    return lo, hi


def _cut(s, w, wp):
    """Tightest cut keeping a weighted fraction >= wp of the jets (whole groups of tied scores)."""
    order = np.argsort(-s, kind="mergesort")
    ss, cw = s[order], np.cumsum(w[order]) / w.sum()
    for i in range(len(ss)):
        if (i == len(ss) - 1 or ss[i + 1] != ss[i]) and cw[i] >= wp * (1 - 1e-12):
            return ss[i]
    return ss[-1]


class _Context:
    """What the report's draw functions use of a ReportContext, without a run folder."""

    def __init__(self, runs=(), taggers=None, working_points=(0.3, 0.5), working_point=0.5):
        self.runs, self.taggers = list(runs), taggers or {}
        self.working_points, self.working_point = tuple(working_points), working_point
        self.notes, self.saved_hists = [], {}

    def note(self, text):
        self.notes.append(text)

    def pyplot(self):
        import matplotlib.pyplot as plt

        return plt

    def finish(self, fig, name, label_ax=None):
        self.pyplot().close(fig)
        return [f"plots/{name}.png"]

    def hists(self, hists, name):
        self.saved_hists[name] = dict(hists)
        return f"hists/{name}.json"


def _report_item(name, **kw):
    from hepnn.plotting.report import REPORT_FIGURES, FigureItem

    entry = REPORT_FIGURES.get(name)
    return FigureItem(entry, stem=kw.pop("stem", name), runs=kw.pop("runs", []), **kw)


# --- ROC and rejection -----------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_rejection_and_roc_lines_match_brute_force_with_ties(weighted):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1500)
    s = np.round(rng.normal(y, 1.0), 1)  # many tied scores
    w = rng.uniform(0.5, 1.5, len(y)) if weighted else None
    ww = np.ones(len(y)) if w is None else w
    es, eb = _curve(y, s, ww)
    res = plot_rejection({"nn": s}, y, weights=w, working_points=(0.3, 0.5, 0.7))
    keep = (es >= 0.1) & (eb > 0)
    np.testing.assert_allclose(res.lines["nn"].get_xydata(), np.column_stack([es[keep], 1 / eb[keep]]))
    for wp in (0.3, 0.5, 0.7):
        assert res.rejections["nn"][wp] == pytest.approx(_rejection(es, eb, wp), rel=1e-9)
    assert res.auc["nn"] == pytest.approx(np.trapezoid(es, eb), rel=1e-12)
    roc = plot_roc({"nn": s}, y, weights=w)
    np.testing.assert_allclose(roc.lines["nn"].get_xydata(), np.column_stack([eb, es]))
    assert roc.ax.get_xlabel().startswith("Background efficiency") and roc.ax.get_ylabel().startswith("Signal")


def test_rejection_ratio_is_undefined_where_the_reference_rejection_is_infinite():
    # the reference keeps no background below eff_s = 0.5 (infinite rejection); the other tagger has 4 there.
    # The ratio other / reference is undefined there, not 0 (it was drawn as a drop to 0 on 55 grid points)
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    ref = np.array([0.9, 0.8, 0.4, 0.3, 0.5, 0.2, 0.1, 0.05])
    other = np.array([0.9, 0.7, 0.4, 0.3, 0.8, 0.2, 0.1, 0.05])
    res = plot_rejection({"ref": ref, "other": other}, y)
    assert res.rejections["ref"][0.3] == np.inf and res.rejections["other"][0.3] == 4.0
    grid, ratio = res.ratio_lines["other"].get_xydata().T
    es_r, eb_r = _curve(y, ref, np.ones(8))
    es_o, eb_o = _curve(y, other, np.ones(8))
    rej_o = np.array([_rejection(es_o, eb_o, g) for g in grid])
    rej_r = np.array([_rejection(es_r, eb_r, g) for g in grid])
    defined = np.isfinite(rej_o) & np.isfinite(rej_r)
    assert np.count_nonzero(np.isfinite(rej_o) & ~np.isfinite(rej_r)) > 50
    expected = rej_o / np.where(defined, rej_r, 1.0)
    assert np.all(np.isnan(ratio[~defined]))  # was 0.0 where the reference is infinite
    np.testing.assert_allclose(ratio[defined], expected[defined])
    assert not np.any(ratio == 0.0)


def test_rejection_refuses_one_class_inputs_by_tagger_name():
    with pytest.raises(ValueError, match=r"taggers\['nn'\].*background weight 0"):
        plot_rejection({"nn": [0.9, 0.1]}, [1, 1])
    with pytest.raises(ValueError, match=r"taggers\['nn'\].*signal weight 0"):
        plot_roc({"nn": [0.9, 0.1]}, [0, 0])


# --- efficiency against pT -----------------------------------------------------------------------


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_efficiency_points_and_clopper_pearson_bars_match_brute_force(flat, weighted):
    rng = np.random.default_rng(3)
    n = 1200
    x = rng.uniform(200, 800, n)
    x[:5], x[5:10], x[10:15] = 800.0, 150.0, 900.0  # on the last edge (inside), under- and overflow (left out)
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(y + x / 800, 1), 2)
    w = rng.uniform(0.5, 2, n) if weighted else None
    ww = np.ones(n) if w is None else w
    edges = np.array([200, 300, 450, 600, 800.0])
    res = plot_efficiency(x, s, y, edges, working_point=0.6, flat=flat, weights=w)
    b = np.digitize(x, edges) - 1
    b[x == edges[-1]] = len(edges) - 2
    sig = y == 1
    ref = {1: [], 0: []}
    for i in range(len(edges) - 1):
        sel = b == i
        cut = _cut(s[sel & sig], ww[sel & sig], 0.6) if flat else _cut(s[sig], ww[sig], 0.6)
        for cls in (1, 0):
            m = sel & (y == cls)
            eff = ww[m & (s >= cut)].sum() / ww[m].sum()
            n_eff = ww[m].sum() ** 2 / (ww[m] ** 2).sum()
            ref[cls].append((eff, *_clopper_pearson(eff * n_eff, n_eff)))
    for name, cls in (("signal", 1), ("background", 0)):
        r = np.array(ref[cls])
        container = res.artists[name]
        np.testing.assert_allclose(container.lines[0].get_ydata(), r[:, 0])
        np.testing.assert_allclose(container.lines[0].get_xdata(), 0.5 * (edges[1:] + edges[:-1]))
        segments = container.lines[2][-1].get_segments()  # the vertical bars
        np.testing.assert_allclose([seg[0][1] for seg in segments], r[:, 1], rtol=1e-7)
        np.testing.assert_allclose([seg[1][1] for seg in segments], r[:, 2], rtol=1e-7)


def test_efficiency_plot_with_negative_weights_draws_a_bin_outside_the_unit_interval():
    # bin 1: signal weights 1 (passing) and -0.6 + 0.2 (failing): efficiency 1 / 0.6 = 1.667, kept by the metrics
    # with the interval of the clipped efficiency; drawing it raised "'yerr' must not contain negative values"
    x = np.array([10, 20, 30, 60, 70, 80.0])
    y = np.array([1, 1, 1, 0, 0, 0])
    s = np.array([0.9, 0.1, 0.05, 0.9, 0.2, 0.1])
    w = np.array([1.0, -0.6, 0.2, 1.0, 1.0, 1.0])
    res = plot_efficiency(x, s, y, [0, 50, 100], weights=w)
    eff = 1.0 / 0.6
    line, segments = res.artists["signal"].lines[0], res.artists["signal"].lines[2][-1].get_segments()
    assert line.get_ydata()[0] == pytest.approx(eff)
    assert res.table.eff_s_hi[0] == 1.0
    # the bar reaches from the interval's lower end up to the point
    assert segments[0][0][1] == pytest.approx(res.table.eff_s_lo[0]) and segments[0][1][1] == pytest.approx(eff)
    assert res.ax.get_ylim()[1] >= eff  # the point is inside the axes
    res_r = plot_efficiency(x, s, y, [0, 50, 100], weights=w, quantity="rejection")
    assert res_r.ax.get_yscale() == "log"


def test_rejection_of_a_bin_without_background_is_nan_and_without_passing_background_infinite():
    # bin 0 holds signal only; bin 1 holds background jets, none passing
    t = binned_efficiency([10, 20, 30, 40], [0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], [0, 25, 50])
    assert np.isnan(t.eff_b[0]) and t.eff_b[1] == 0.0
    assert np.isnan(t.rejection[0])  # was inf: an empty bin is no infinite rejection
    assert t.rejection[1] == np.inf
    assert np.isnan(t.rejection_hi[0]) and t.rejection_hi[1] == np.inf
    assert t.rejection_lo[1] == pytest.approx(1 / _clopper_pearson(0, 2)[1])


def test_rejection_against_pt_draws_a_lower_limit_where_no_background_passes():
    rng = np.random.default_rng(2)
    n = 400
    x = rng.uniform(0, 100, n)
    y = rng.integers(0, 2, n)
    s = rng.normal(2 * y, 1)
    s[(x > 75) & (y == 0)] = -5  # no background jet of the last bin passes
    res = plot_efficiency(x, s, y, [0, 25, 50, 75, 100], quantity="rejection")
    cut = _cut(s[y == 1], np.ones(np.count_nonzero(y == 1)), 0.5)
    last = (x > 75) & (y == 0)
    assert np.count_nonzero(last & (s >= cut)) == 0
    assert res.table.rejection[-1] == np.inf
    # the infinite rejection was silently dropped from the log-scale plot: now a lower limit (arrow up) at
    # 1 / (upper end of the background efficiency's interval)
    limit = res.artists["rejection_limit"]
    segments = limit.lines[2][0].get_segments()  # horizontal bars: (x_lo, y) - (x_hi, y)
    ys = {round(seg[0][0]): seg[0][1] for seg in segments}
    assert ys[75] == pytest.approx(1 / _clopper_pearson(0, np.count_nonzero(last))[1])
    finite = np.isfinite(res.table.rejection)
    np.testing.assert_allclose(res.artists["rejection"].lines[0].get_ydata(), res.table.rejection[finite])


def test_efficiency_without_signal_or_background_jets_is_a_clear_error():
    x, s = [100.0, 200.0], [0.9, 0.1]
    for flat in (False, True):
        with pytest.raises(ValueError, match="no signal jets"):  # was every bin silently nan: nothing drawn
            binned_efficiency(x, s, [0, 0], [0, 150, 300], flat=flat)
    with pytest.raises(ValueError, match="no background jets"):
        plot_efficiency(x, s, [1, 1], [0, 150, 300], quantity="rejection")
    res = plot_efficiency(x, s, [1, 1], [0, 150, 300])  # the signal efficiency alone is well defined
    np.testing.assert_allclose(res.artists["signal"].lines[0].get_ydata(), [1.0, 0.0])


# --- overtraining check --------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_score_histograms_error_bars_and_ks_match_brute_force(weighted):
    rng = np.random.default_rng(5)
    y_te, y_tr = rng.integers(0, 2, 700), rng.integers(0, 2, 1400)
    s_te = np.clip(rng.normal(0.3 + 0.4 * y_te, 0.2), 0, 1)  # exactly 0 and 1 included
    s_tr = np.clip(rng.normal(0.3 + 0.4 * y_tr, 0.2), 0, 1)
    w_te = rng.uniform(0.2, 2, len(y_te)) if weighted else None
    w_tr = rng.uniform(0.2, 2, len(y_tr)) if weighted else None
    res = plot_scores(s_te, y_te, s_tr, y_tr, test_weights=w_te, train_weights=w_tr, bins=20)
    edges = np.linspace(0, 1, 21)
    for cls, name in ((0, "background"), (1, "signal")):
        a, b = y_te == cls, y_tr == cls
        wa = np.ones(a.sum()) if w_te is None else w_te[a]
        wb = np.ones(b.sum()) if w_tr is None else w_tr[b]
        ref_te = np.histogram(s_te[a], edges, weights=wa, density=True)[0]
        np.testing.assert_allclose(res.artists[("test", name)].stairs.get_data().values, ref_te)
        norm = wb.sum() * np.diff(edges)
        line = res.artists[("train", name)].errorbar.lines[0]
        np.testing.assert_allclose(line.get_ydata(), np.histogram(s_tr[b], edges, weights=wb)[0] / norm)
        if weighted:  # sqrt(sum w^2) per bin, normalised like the points
            segs = res.artists[("train", name)].errorbar.lines[2][-1].get_segments()
            half = np.array([(seg[1][1] - seg[0][1]) / 2 for seg in segs])
            np.testing.assert_allclose(half, np.sqrt(np.histogram(s_tr[b], edges, weights=wb**2)[0]) / norm)
            grid = np.union1d(s_te[a], s_tr[b])
            cdf_a = np.array([wa[s_te[a] <= g].sum() for g in grid]) / wa.sum()
            cdf_b = np.array([wb[s_tr[b] <= g].sum() for g in grid]) / wb.sum()
            assert res.ks[name].statistic == pytest.approx(np.max(np.abs(cdf_a - cdf_b)), abs=1e-12)
        else:
            assert res.ks[name].pvalue == scipy.stats.ks_2samp(s_te[a], s_tr[b]).pvalue


def test_report_scores_of_an_autoencoder_are_binned_over_the_error_range():
    from hepnn.plotting.report import _scores_figure

    rng = np.random.default_rng(8)
    y_te, y_tr = np.arange(300) % 2, np.arange(400) % 2
    err_te, err_tr = rng.exponential(1e-4, 300) * (1 + y_te), rng.exponential(1e-4, 400) * (1 + y_tr)
    run = SimpleNamespace(name="ae", task="autoencoder", classes=["qcd", "top"], signal=0,
                          score_test=err_te, score_train=err_tr, test={"label": y_te}, train={"label": y_tr},
                          weight_test=None, weight_train=None)
    fig = _scores_figure(_Context(runs=[run]), _report_item("scores", run=run, runs=[run]))
    h = fig.result.hists["test/qcd"]
    # errors of 1e-4 binned over (0, 1) all fell into the first of 40 bins
    assert h.axes[0].edges[0] == pytest.approx(min(err_te.min(), err_tr.min()))
    assert h.axes[0].edges[-1] == pytest.approx(max(err_te.max(), err_tr.max()))
    assert np.count_nonzero(h.values()) > 5
    assert h.sum().value == np.count_nonzero(y_te == 0)


# --- mass sculpting ------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_mass_sculpting_densities_cuts_and_jsd_match_brute_force(weighted):
    rng = np.random.default_rng(7)
    n = 3000
    y = rng.integers(0, 2, n)
    m = rng.uniform(20, 300, n)
    s = rng.normal(y + (m > 150) * 0.5, 1)
    m[np.flatnonzero(y == 0)[0]] = np.nan  # a background jet without a mass: in no bin
    w = rng.uniform(0.5, 1.5, n) if weighted else None
    ww = np.ones(n) if w is None else w
    res = plot_mass_sculpting(m, s, y, working_points=(0.5, 0.3), weights=w, bins=20)
    bkg = (y == 0) & np.isfinite(m)
    edges = np.linspace(np.nanmin(m[y == 0]), np.nanmax(m[y == 0]), 21)
    before = np.histogram(m[bkg], edges, weights=ww[bkg])[0]
    np.testing.assert_allclose(res.artists["before"].stairs.get_data().values, before / before.sum() / np.diff(edges))
    for wp in (0.5, 0.3):
        cut = _cut(s[y == 1], ww[y == 1], wp)
        assert res.cuts[wp] == cut
        sel = bkg & (s >= cut)
        after = np.histogram(m[sel], edges, weights=ww[sel])[0]
        drawn = res.artists[f"eff_s={wp:g}"].stairs.get_data().values
        np.testing.assert_allclose(drawn, after / after.sum() / np.diff(edges))
        assert res.jsd[wp] == pytest.approx(jensenshannon(before, after, base=2) ** 2, rel=1e-9)


# --- learning curves -----------------------------------------------------------------------------


def test_history_with_a_column_some_epochs_lack_is_read_and_drawn(tmp_path):
    # hepnn's history.csv is the union of the rows' columns: a run resumed on a GPU machine has
    # gpu_peak_memory_mb only for its later epochs, an empty cell before (was "every column must be numeric")
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss,learning_rate,gpu_peak_memory_mb\n"
                    "1,0.7,0.72,0.001,\n2,0.5,0.6,0.001,\n3,0.4,0.55,0.0005,1200.0\n")
    history = read_history(path)
    np.testing.assert_array_equal(history["epoch"], [1, 2, 3])
    np.testing.assert_allclose(history["gpu_peak_memory_mb"], [np.nan, np.nan, 1200.0])
    res = plot_learning_curves(path, ["loss"])
    np.testing.assert_allclose(res.lines["loss"]["train"].get_xydata(), [[1, 0.7], [2, 0.5], [3, 0.4]])
    np.testing.assert_allclose(res.lines["loss"]["validation"].get_xydata(), [[1, 0.72], [2, 0.6], [3, 0.55]])
    assert res.lines["loss"]["validation"].get_linestyle() == "--"


# --- confusion matrix, images ---------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_cells_match_brute_force(normalize):
    rng = np.random.default_rng(1)
    t, p, w = rng.integers(0, 3, 300), rng.random((300, 3)), rng.uniform(0.5, 2, 300)
    res = plot_confusion_matrix(t, p, normalize=normalize, weights=w, class_names=["q", "W", "t"])
    c = np.zeros((3, 3))
    np.add.at(c, (t, p.argmax(axis=1)), w)
    divide = {None: 1.0, "true": c.sum(1, keepdims=True), "pred": c.sum(0, keepdims=True), "all": c.sum()}
    c = c / divide[normalize]
    np.testing.assert_allclose(res.image.get_array(), c)
    for text in res.texts:  # the text at (column j, row i) is C[i, j]
        j, i = text.get_position()
        assert text.get_text() == format(c[int(i), int(j)], ".2f" if normalize else ".0f")
    assert [tick.get_text() for tick in res.ax.get_yticklabels()] == ["q", "W", "t"]


def test_average_images_and_their_difference_match_numpy():
    rng = np.random.default_rng(0)
    images, y = rng.random((30, 4, 5)), np.arange(30) % 3
    res = plot_average_images(images, y, class_names=["q", "W", "t"], difference=(2, 0), log=False)
    for c, name in enumerate(["q", "W", "t"]):
        np.testing.assert_allclose(res.means[name], images[y == c].mean(axis=0))
        # drawn transposed: eta (first image axis) on x, phi on y
        np.testing.assert_allclose(res.panels[name].image.get_array(), images[y == c].mean(axis=0).T)
    np.testing.assert_allclose(res.difference, images[y == 2].mean(0) - images[y == 0].mean(0))
    assert res.panels["difference"].ax.get_title() == "t $-$ q"


# --- anomaly detection ----------------------------------------------------------------------------


def test_reconstruction_auc_counts_every_anomalous_class_as_in_the_metrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)  # 0: the trained-on background; 1 and 2 anomalous
    errors = rng.exponential(1e-3, 600) * np.where(y > 0, 2.0, 1.0) * np.where(y == 2, 1.5, 1.0)
    from sklearn.metrics import roc_auc_score

    res = plot_reconstruction_error(errors, y, anomaly=[1, 2], bins=30)
    assert res.auc == pytest.approx(roc_auc_score(y != 0, errors))
    assert plot_reconstruction_error(errors, y, anomaly=1).auc == pytest.approx(roc_auc_score(y == 1, errors))
    edges = np.geomspace(errors.min(), errors.max(), 31)
    for c in range(3):
        drawn = res.artists[f"class {c}"].stairs.get_data().values
        np.testing.assert_allclose(drawn, np.histogram(errors[y == c], edges, density=True)[0])

    # the report's figure: its legend AUC (and manifest summary) was that of class 1 against classes 0 and 2
    from hepnn.plotting.report import _reconstruction_figure

    run = SimpleNamespace(name="ae", task="autoencoder", classes=["qcd", "top", "w"], signal=0, score_test=errors,
                          test={"label": y}, weight_test=None)
    fig = _reconstruction_figure(_Context(runs=[run]), _report_item("reconstruction", run=run, runs=[run]))
    assert fig.summary["auc"] == pytest.approx(roc_auc_score(y != 0, errors))


# --- report summaries (manifest.json) ---------------------------------------------------------------


def test_report_rejection_summary_is_valid_json_with_null_for_infinite_rejection():
    from hepnn.plotting.report import _draw

    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.4, 0.3, 0.5, 0.2, 0.1, 0.05])  # no background above eff_s = 0.5
    run = SimpleNamespace(name="nn", weight_test=None)
    d = _Context(runs=[run], taggers={"nn": (s, y)}, working_points=(0.3, 0.5, 0.75))
    (fig,) = _draw(d, _report_item("rejection", runs=[run]))
    es, eb = _curve(y, s, np.ones(8))
    assert fig.summary["rejection"]["nn"] == {"0.3": None, "0.5": None, "0.75": pytest.approx(_rejection(es, eb, 0.75))}
    json.dumps(fig.summary, allow_nan=False)  # was "Infinity": not JSON


def test_report_fold_summary_at_a_working_point_below_the_drawn_range():
    from hepnn.plotting.report import _folds_figure

    rng = np.random.default_rng(4)
    runs, per_fold = [], {0.05: [], 0.5: []}
    for k in range(3):
        y = rng.integers(0, 2, 4000)
        s = rng.normal(1.0 * y, 1.0)
        runs.append(SimpleNamespace(name=f"run/fold{k}", is_sig_test=y == 1, score_test=s, weight_test=None))
        es, eb = _curve(y, s, np.ones(len(y)))
        for wp in per_fold:
            per_fold[wp].append(_rejection(es, eb, wp))
    d = _Context(runs=runs, working_points=(0.05, 0.5))
    fig = _folds_figure(d, _report_item("rejection_folds", runs=runs, group="run", stem="rejection_folds_run"))
    for wp in (0.05, 0.5):
        # 0.05 lies below the curve's grid (0.1 to 1): it was reported as the rejection at 0.1
        got = fig.summary["rejection"][f"{wp:g}"]
        assert got["mean"] == pytest.approx(np.mean(per_fold[wp]), rel=1e-9)
        assert got["std"] == pytest.approx(np.std(per_fold[wp], ddof=1), rel=1e-9)


def test_report_note_reads_an_autoencoder_as_anomalous_classes_against_its_background():
    from hepnn.plotting.report import _note_signal_definitions

    binary = SimpleNamespace(name="dense", task="binary", classes=["qcd", "top"], signal=1)
    ae = SimpleNamespace(name="ae", task="autoencoder", classes=["qcd", "top"], signal=0)  # trained on qcd
    d = _Context()
    _note_signal_definitions(d, [binary, ae])
    assert d.notes == []  # both measure top against qcd; the note called the autoencoder "qcd against top"
    other = SimpleNamespace(name="ae_top", task="autoencoder", classes=["qcd", "top"], signal=1)  # trained on top
    _note_signal_definitions(d, [binary, other])
    assert len(d.notes) == 1 and "dense: top against qcd; ae_top: qcd against top" in d.notes[0]


def test_json_baselines_keep_their_weights(tmp_path):
    from hepnn.plotting.report import _baseline_metrics
    from hepnn.plotting.step import read_baselines

    s, y, w = [0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], [1.0, 3.0, 1.0, 1.0]
    (tmp_path / "baselines.json").write_text(json.dumps({"bdt": {"scores": s, "labels": y, "weights": w}}))
    baselines = read_baselines(tmp_path / "baselines.json")
    assert len(baselines["bdt"]) == 3  # the weights were dropped: an unweighted baseline beside weighted runs
    np.testing.assert_array_equal(baselines["bdt"][2], w)
    es, eb = _curve(np.array(y), np.array(s), np.array(w))
    assert _baseline_metrics(baselines, (0.5,))["bdt"]["auc"] == pytest.approx(np.trapezoid(es, eb), abs=1e-6)
    (tmp_path / "plain.json").write_text(json.dumps({"bdt": {"scores": s, "labels": y}}))
    assert len(read_baselines(tmp_path / "plain.json")["bdt"]) == 2


def test_report_efficiency_figure_without_background_values_is_skipped_with_a_note():
    from hepnn.plotting.report import SkipFigure, _efficiency_figure, REPORT_FIGURES

    rng = np.random.default_rng(9)
    y = np.arange(40) % 2
    pt = np.where(y == 1, rng.uniform(200, 800, 40), np.nan)  # no background jet has a pT value
    run = SimpleNamespace(name="nn", is_sig_test=y == 1, score_test=rng.random(40), weight_test=None,
                          test={"data": {"spec_jet_pt": pt}})
    item = _report_item("efficiency_pt_fixed", run=run, runs=[run], spectator="spec_jet_pt")
    assert REPORT_FIGURES.get("efficiency_pt_fixed").spectator == "pt"
    # was drawn as an empty rejection panel on a log scale, as if the figure had content
    with pytest.raises(SkipFigure, match="no efficiency against pt.*no background jets"):
        _efficiency_figure(_Context(runs=[run]), item, flat=False)
