import subprocess
import sys

import matplotlib
import numpy as np
import pytest

from hepnn.exceptions import UnknownNameError
from hepnn.plotting import label, save_figure, use_style


def test_import_is_light_and_changes_no_rcparams():
    code = (
        "import sys, hepnn, hepnn.plotting\n"
        "heavy = [m for m in ('matplotlib', 'mplhep', 'hist', 'scipy', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import matplotlib\n"
        "before = dict(matplotlib.rcParams)\n"
        "import importlib; importlib.reload(hepnn.plotting)\n"
        "assert dict(matplotlib.rcParams) == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plotting_does_not_apply_a_style():
    import numpy as np

    from hepnn.plotting import plot_rejection, plot_scores

    before = dict(matplotlib.rcParams)
    y = np.arange(100) % 2
    plot_rejection({"a": np.linspace(0, 1, 100) + y}, y)
    plot_scores(np.linspace(0, 1, 100), y, np.linspace(0, 1, 100), y)
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize("name", ["CMS", "ATLAS", "LHCb", "ALICE", "plain"])
def test_use_style_context_restores(name):
    before = dict(matplotlib.rcParams)
    with use_style(name):
        if name != "plain":
            assert dict(matplotlib.rcParams) != before
    assert dict(matplotlib.rcParams) == before


def test_use_style_as_function_and_unknown():
    use_style("cms")
    assert matplotlib.rcParams["xtick.direction"] == "in"
    with pytest.raises(UnknownNameError, match="did you mean 'ATLAS'"):
        use_style("ATLASS")


@pytest.mark.parametrize(
    ("experiment", "expected"),
    [
        ("CMS", ["CMS", "Work in progress"]),
        ("ATLAS", ["ATLAS", "Work in progress"]),
        ("plain", ["Work in progress"]),
    ],
)
def test_label(experiment, expected):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    texts = [t.get_text() for t in label(ax, experiment=experiment, text="Work in progress", energy=13.6)]
    assert texts[: len(expected)] == expected
    assert any("13.6 TeV" in t for t in texts)
    assert not any("Simulation" in t for t in texts)


def test_save_figure(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    written = save_figure(fig, tmp_path / "plots" / "roc", formats=("png", "pdf"))
    assert [p.name for p in written] == ["roc.png", "roc.pdf"]
    assert written[0].read_bytes()[:4] == b"\x89PNG" and written[1].read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["roc.pdf", "roc.png"]
    with pytest.raises(ValueError, match="formats"):
        save_figure(fig, tmp_path / "x", formats=("gif",))


def test_plain_label_where_mplhep_puts_it_without_drawing_the_figure():
    import matplotlib.pyplot as plt
    import mplhep

    boxes = []
    for ours in (True, False):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        draws = []
        fig.canvas.mpl_connect("draw_event", lambda event, draws=draws: draws.append(event))
        if ours:
            texts = label(ax, experiment="plain", text="Simulation", energy=14)
            assert not draws  # mplhep draws the figure twice to measure its texts
        else:
            texts = [t for t in mplhep.label.exp_label(exp="", llabel="Simulation", com="14", ax=ax)
                     if t is not None and t.get_text()]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes.append([t.get_window_extent(renderer).bounds for t in texts])
        if ours:
            assert [t.get_text() for t in texts] == ["Simulation", "(14 TeV)"]
            assert texts[0].get_fontstyle() == "italic"
        plt.close(fig)
    (sim, energy), (sim_ref, energy_ref) = boxes
    np.testing.assert_allclose(sim, sim_ref, atol=0.5)
    # the same right edge and baseline region (mplhep's text starts with a mathtext space)
    np.testing.assert_allclose([energy[0] + energy[2], energy[1]], [energy_ref[0] + energy_ref[2], energy_ref[1]],
                               atol=0.5)


def _log_figure(seed):
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(6, 3))
    rng = np.random.default_rng(seed)
    ax.semilogy(np.arange(20), 10 ** rng.uniform(0, 3, 20), "o", label="$1/\\varepsilon_B$")
    ax2.semilogy(np.arange(20), rng.uniform(40, 90, 20))  # minor labels such as 6x10^1
    ax.legend(title="$\\varepsilon_S$ = 0.5")
    return fig


def test_save_figure_parses_the_math_text_of_a_figure_once_with_the_same_pixels(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib import _mathtext
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    parses = []
    parse = _mathtext.Parser.parse
    monkeypatch.setattr(_mathtext.Parser, "parse", lambda self, s, *a, **k: parses.append(s) or parse(self, s, *a, **k))
    for seed in (0, 1):  # plain matplotlib: the tick labels parsed again in every draw of every figure
        fig = _log_figure(seed)
        fig.savefig(tmp_path / f"plain{seed}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
    n_plain = len(parses)
    parses.clear()
    for seed in (0, 1):
        fig = _log_figure(seed)
        save_figure(fig, tmp_path / f"shared{seed}", formats=("png",))
        assert type(fig.canvas) is FigureCanvasAgg  # the figure's own canvas is given back
        plt.close(fig)
    assert n_plain > 0 and len(parses) == len(set(parses)) and 2 * len(parses) <= n_plain
    for seed in (0, 1):
        plain = plt.imread(tmp_path / f"plain{seed}.png")
        shared = plt.imread(tmp_path / f"shared{seed}.png")
        assert plain.shape == shared.shape and plain.shape[0] > 300
        np.testing.assert_array_equal(plain, shared)


def _styled_figure(kind):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(1)
    layout = "constrained" if kind == "constrained" else None
    fig, axes = plt.subplots(1, 2 if kind == "two panels" else 1, layout=layout, squeeze=False)
    ax = axes[0, 0]
    if kind == "image":
        ax.imshow(rng.random((25, 25)))
    elif kind == "offset":
        ax.plot(np.arange(10), 1e6 + rng.random(10))  # the y axis shows an offset text
    elif kind == "power":
        ax.plot(np.arange(10), 3e7 * rng.random(10))  # ... a power of ten
    elif kind == "log":
        ax.hist(rng.exponential(size=500), bins=20, log=True)
    else:
        ax.hist(rng.normal(size=500), bins=20)
    return fig, ax


def _pixels(fig):
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba()).copy()
    plt.close(fig)
    return pixels


@pytest.mark.parametrize(("name", "kind"), [
    ("CMS", "hist"), ("CMS", "offset"), ("CMS", "constrained"), ("ATLAS", "power"), ("ATLAS", "image"),
    ("LHCb", "log"), ("LHCb", "offset"), ("ALICE", "two panels"), ("plain", "hist"), ("plain", "power")])
def test_label_without_mplheps_extra_draws_lands_where_mplhep_puts_it(name, kind):
    """``label`` leaves out mplhep's full drawings of the figure (none to place a text after
    another without a layout engine; none to measure an offset text that is not there): the
    pixels equal those of mplhep's own call, with and without an offset text."""
    import matplotlib
    import mplhep

    from hepnn.plotting import style

    matplotlib.use("Agg")
    loc = 0 if name == "plain" and kind != "hist" else None  # plain at loc 0 with options goes through mplhep
    options = {"fontsize": 11} if name == "plain" else {}
    with use_style(name):
        fig, ax = _styled_figure(kind)
        label(ax, experiment=name, text="Work in progress", energy=13.6, loc=loc, **options)
        ours = _pixels(fig)
        fig, ax = _styled_figure(kind)
        if name == "plain":
            mplhep.label.exp_label(exp="", llabel="Work in progress", com="13.6", loc=loc, ax=ax, **options)
        else:
            getattr(mplhep, style._LABEL_MODULE[name]).label(text="Work in progress", data=True, com="13.6",
                                                             loc=loc, ax=ax)
        theirs = _pixels(fig)
    np.testing.assert_array_equal(ours, theirs)


def test_label_leaves_out_mplheps_drawings_and_restores_the_canvas(monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: (draws.append(1), original(self, renderer))[1])
    with use_style("CMS"):
        fig, ax = _styled_figure("hist")
        label(ax, experiment="CMS", text="Work in progress", energy=13.6)
        assert draws == []  # mplhep drew the figure twice
        assert "draw" not in vars(fig.canvas)
        fig, ax = _styled_figure("offset")
        label(ax, experiment="CMS", text="Work in progress", energy=13.6)
        assert len(draws) == 1  # the offset text is measured on a drawn figure, as mplhep does
    plt.close("all")
