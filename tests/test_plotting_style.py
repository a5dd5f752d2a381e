import subprocess
import sys

import matplotlib
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
