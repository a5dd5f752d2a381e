"""hepnn.plotting.writer: figures saved in worker processes are the files of an in-process save."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.plotting import save_figure, use_style
from hepnn.plotting.writer import FigureWriter, default_plot_processes


def _figure(seed: int, plt):
    rng = np.random.default_rng(seed)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    ax.hist(rng.normal(size=500), bins=20, histtype="step", label="signal")
    ax.set_yscale("log")  # math-text tick labels (10^2)
    ax.set_xlabel(r"$p_T$ [GeV]")
    ax.legend()
    ax2.imshow(rng.random((16, 16)), origin="lower")
    return fig


def test_worker_files_equal_in_process_files_under_a_style(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    with use_style("ATLAS"):  # rcParams a worker must take over (fonts, tick directions and sizes)
        with FigureWriter(processes=2, start_after=1) as writer:
            for i in range(4):
                fig = _figure(i, plt)
                save_figure(fig, here / f"f{i}", formats=("png",))
                assert writer.save(fig, there / f"f{i}", formats=("png", "svg")) == [
                    there / f"f{i}.png", there / f"f{i}.svg"]
                plt.close(fig)
            assert writer._pool is not None  # figures 2-4 went to the workers
            # a figure that does not pickle (a lambda formatter) is saved in this process
            fig = _figure(9, plt)
            fig.axes[0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.1f}!"))
            save_figure(fig, here / "lambda", formats=("png",))
            writer.save(fig, there / "lambda", formats=("png",))
            plt.close(fig)
    for i in range(4):
        assert (there / f"f{i}.png").read_bytes() == (here / f"f{i}.png").read_bytes(), i
        assert (there / f"f{i}.svg").stat().st_size > 0
    assert (there / "lambda.png").read_bytes() == (here / "lambda.png").read_bytes()
    # and the plain style in this process afterwards, whatever the workers applied
    with FigureWriter(processes=0) as writer:
        fig = _figure(0, plt)
        writer.save(fig, tmp_path / "plain", formats=("png",))
        plt.close(fig)
    assert (tmp_path / "plain.png").read_bytes() != (here / "f0.png").read_bytes()


def test_a_failed_save_in_a_worker_names_the_file(tmp_path):
    import matplotlib.pyplot as plt

    (tmp_path / "in_the_way").write_text("a file, not a folder")
    writer = FigureWriter(processes=1, start_after=0)
    fig = _figure(0, plt)
    writer.save(fig, tmp_path / "in_the_way" / "roc", formats=("png",))  # queued: the error comes at close
    plt.close(fig)
    with pytest.raises(OSError, match=r"in_the_way/roc: saving the figure failed in a worker process"):
        writer.close()
    with pytest.raises(ValueError, match="formats"):
        FigureWriter(processes=1, start_after=0).save(_figure(1, plt), tmp_path / "x", formats=("gif",))
    plt.close("all")


def test_small_reports_start_no_workers(tmp_path):
    import matplotlib.pyplot as plt

    with FigureWriter(processes=4, start_after=3) as writer:
        for i in range(3):
            fig = _figure(i, plt)
            writer.save(fig, tmp_path / f"f{i}", formats=("png",))
            plt.close(fig)
        assert writer._pool is None
    assert all((tmp_path / f"f{i}.png").is_file() for i in range(3))


def test_default_processes(monkeypatch):
    monkeypatch.setenv("HEPNN_PLOT_PROCESSES", "0")
    assert default_plot_processes() == 0
    monkeypatch.setenv("HEPNN_PLOT_PROCESSES", "3")
    assert default_plot_processes() == 3
    monkeypatch.delenv("HEPNN_PLOT_PROCESSES")
    assert 1 <= default_plot_processes() <= 4
