import numpy as np
import pytest
import sklearn.metrics

from hepnn.exceptions import UnknownNameError
from hepnn.plotting import PLOTS, plot_rejection, plot_roc


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 3000)
    return y, {"DNN": rng.normal(2.0 * y), "BDT": rng.normal(1.0 * y), "cut": rng.normal(0.5 * y)}


def test_rejection_plot_content(data):
    y, taggers = data
    res = plot_rejection(taggers, y, working_points=(0.5,), reference="BDT")
    assert len(res.ax.get_lines()) == 3
    assert set(res.lines) == set(taggers)
    assert res.ax.get_yscale() == "log"
    assert "rejection" in res.ax.get_ylabel().lower()
    assert "efficiency" in res.ax_ratio.get_xlabel().lower()
    assert res.ax_ratio.get_ylabel() == "Ratio to BDT"
    assert len(res.ax_ratio.get_lines()) == 3
    assert np.allclose(res.ratio_lines["BDT"].get_ydata(), 1.0)
    assert len(res.bands) == 3
    assert [t.get_text() for t in res.ax.get_legend().get_texts()] == list(taggers)
    for name, s in taggers.items():
        cut = np.median(s[y == 1])  # half of the signal passes
        assert res.rejections[name][0.5] == pytest.approx(1 / np.mean(s[y == 0] >= cut), rel=0.01)
        assert res.auc[name] == pytest.approx(sklearn.metrics.roc_auc_score(y, s))
    assert res.rejections["DNN"][0.5] > res.rejections["BDT"][0.5] > res.rejections["cut"][0.5]


def test_rejection_plot_on_given_axes_and_per_tagger_labels(data):
    import matplotlib.pyplot as plt

    y, taggers = data
    _, ax = plt.subplots()
    res = plot_rejection({"a": (taggers["DNN"], y), "b": (taggers["BDT"][:100], y[:100])}, ax=ax, uncertainty=False)
    assert res.ax is ax and res.ax_ratio is None
    assert len(ax.get_lines()) == 2 and not res.bands


def test_rejection_unknown_reference(data):
    y, taggers = data
    with pytest.raises(UnknownNameError, match="did you mean 'DNN'"):
        plot_rejection(taggers, y, reference="DNNN")


def test_plain_roc_legend_has_sklearn_auc(data):
    y, taggers = data
    res = plot_roc(taggers, y)
    assert len(res.lines) == 3
    assert len(res.ax.get_lines()) == 4  # + diagonal
    assert res.ax.get_yscale() == "linear"
    texts = [t.get_text() for t in res.ax.get_legend().get_texts()]
    for name, s in taggers.items():
        assert f"{name} (AUC = {sklearn.metrics.roc_auc_score(y, s):.3f})" in texts


def test_missing_labels_is_explained(data):
    _, taggers = data
    with pytest.raises(ValueError, match="without labels"):
        plot_roc(taggers)


def test_registry():
    assert PLOTS.get("roc") is plot_roc
    assert PLOTS.get("rejection") is plot_rejection
    with pytest.raises(UnknownNameError):
        PLOTS.get("rocc")


def _drawn_style(line):
    from matplotlib.colors import to_hex

    return to_hex(line.get_color()), line.get_linestyle(), line.get_marker()


@pytest.mark.parametrize("n", [3, 11, 25, 45])
def test_many_curves_have_distinct_styles(n):
    """The demo draws 11 taggers: no two curves (nor their ratio curves) may share colour and line style."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    taggers = {f"t{i}": rng.normal((1 + 0.05 * i) * y) for i in range(n)}
    res = plot_rejection(taggers, y, uncertainty=False)
    styles = [_drawn_style(res.lines[name]) for name in taggers]
    assert len(set(styles)) == n
    assert [_drawn_style(res.ratio_lines[name]) for name in taggers] == styles
    if n <= 10:  # as many colours as curves: every curve solid, each in its own colour
        assert {s[1] for s in styles} == {"-"} and len({s[0] for s in styles}) == n
    else:  # colours are reused only with another line style
        assert len({s[0] for s in styles}) == 10 and {"-", "--"} <= {s[1] for s in styles}
    roc = plot_roc(taggers, y)
    assert len({_drawn_style(roc.lines[name]) for name in taggers}) == n
    # the legend shows each curve's own style; for many curves it sits beside the axes, hiding none
    for ax, drawn in ((res.ax, styles), (roc.ax, None)):
        legend = ax.get_legend()
        handles = [_drawn_style(h) for h in legend.legend_handles]
        assert len(set(handles)) == n and (drawn is None or handles == drawn)
        ax.figure.canvas.draw()
        outside = legend.get_window_extent().x0 >= ax.get_window_extent().x1
        assert outside == (n > 6)


def test_distinct_styles_follow_the_style_palette():
    import matplotlib
    from cycler import cycler

    from hepnn.plotting.common import curve_styles

    palette = ["#000000", "#ff0000", "#00ff00", "#ff0000"]  # a repeated colour counts once
    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=palette)}):
        styles = curve_styles(7)
        points = curve_styles(7, markers=True)
    assert [s["color"] for s in styles] == ["#000000", "#ff0000", "#00ff00"] * 2 + ["#000000"]
    assert [s["linestyle"] for s in styles] == ["-"] * 3 + ["--"] * 3 + [":"]
    assert len({(p["color"], p["marker"]) for p in points}) == 7


def test_rejections_and_auc_match_hand_sorted_references():
    rng = np.random.default_rng(31)
    n = 500
    y = rng.integers(0, 3, n)
    s = np.round(rng.normal(y == 1, 1.0), 1)  # ties; signal = class 1, one-vs-rest
    w = rng.uniform(0.2, 2.0, n)
    wps = (0.3, 0.5, 0.7)
    res = plot_rejection({"a": s}, y, weights=w, signal=1, working_points=wps)
    is_sig = y == 1
    for wp in wps:
        # hand-made curve over distinct cuts score >= t, tightest first, then the crossing segment
        cuts = np.unique(s)[::-1]
        es = np.array([w[is_sig & (s >= t)].sum() / w[is_sig].sum() for t in cuts])
        eb = np.array([w[~is_sig & (s >= t)].sum() / w[~is_sig].sum() for t in cuts])
        es, eb = np.r_[0.0, es], np.r_[0.0, eb]
        i = int(np.argmax(es >= wp))
        b = eb[i] if es[i] == wp else eb[i - 1] + (wp - es[i - 1]) / (es[i] - es[i - 1]) * (eb[i] - eb[i - 1])
        assert res.rejections["a"][wp] == pytest.approx(1.0 / b, rel=1e-12)
    ref_auc = sklearn.metrics.roc_auc_score(is_sig, s, sample_weight=w)
    assert res.auc["a"] == pytest.approx(ref_auc, rel=1e-12)
    roc = plot_roc({"a": s}, y, weights=w, signal=1)
    assert roc.auc["a"] == pytest.approx(ref_auc, rel=1e-12)
    assert roc.rejections["a"][0.5] == pytest.approx(res.rejections["a"][0.5], rel=1e-12)


def test_rejection_refuses_nan_scores_and_weights():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="non-finite"):
        plot_rejection({"a": np.array([0.1, np.nan, 0.3, 0.9])}, y)
    with pytest.raises(ValueError, match="non-finite"):
        plot_rejection({"a": np.array([0.1, 0.2, 0.3, 0.9])}, y, weights=np.array([1.0, np.nan, 1.0, 1.0]))


def test_a_tagger_whose_signed_weights_leave_no_signal_is_named():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    w = np.array([1.0, 1.0, 1.0, -2.0])  # NLO weights: the signal sums to -1, its efficiencies are undefined
    with pytest.raises(ValueError, match=r"taggers\['nn'\]: efficiency_curve needs signal .* signal weight -1.0"):
        plot_roc({"bdt": (s, y), "nn": (s, y, w)})
    res = plot_roc({"nn": (s, y, np.array([1.0, -0.5, 1.0, 2.0]))})  # signed totals 0.5 and 3 are fine
    # thresholds 0.8, 0.4, 0.35, 0.1: signal 2/3, 2/3, 1, 1; background 0, -1, -1, 1 (the -0.5 jet passes at 0.4)
    np.testing.assert_allclose(res.curves["nn"][0], [0, 2 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(res.curves["nn"][1], [0, 0, -1, -1, 1])
