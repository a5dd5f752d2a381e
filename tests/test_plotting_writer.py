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
    with pytest.raises(OSError, match=r"in_the_way/roc: saving the figure failed: (NotADirectoryError|FileNotFoundError|FileExistsError)"):
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


def test_a_script_without_main_guard_is_not_run_again_by_the_workers(tmp_path):
    """Spawned workers must not re-run the user's script (it would train its model again)."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "analysis_script.py"
    script.write_text(textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import Formatter
        from hepnn.plotting.writer import FigureWriter

        with open({str(tmp_path / "runs.txt")!r}, "a") as f:  # "training": must happen once
            f.write("ran\\n")

        class Percent(Formatter):  # a class of this script: a worker cannot unpickle it
            def __call__(self, x, pos=None):
                return f"{{100 * x:.0f}}%"

        with FigureWriter(processes=2, start_after=0) as writer:
            for i in range(3):
                fig, ax = plt.subplots()
                ax.plot([0, 1], [i, 1])
                if i == 2:
                    ax.yaxis.set_major_formatter(Percent())
                writer.save(fig, {str(tmp_path)!r} + f"/fig{{i}}", formats=("png",))
                plt.close(fig)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "runs.txt").read_text() == "ran\n"
    for i in range(3):
        assert (tmp_path / f"fig{i}.png").stat().st_size > 1000
