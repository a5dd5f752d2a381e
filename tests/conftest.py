"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same Python, NumPy and Keras seeds.

    Without this, a test that builds an unseeded model depends on how many
    random numbers earlier tests drew, and a tolerance that holds for most
    initialisations fails once in a while. Tests that study seeds set their own.
    """
    import keras

    keras.utils.set_random_seed(20261126)
    yield


@pytest.fixture(autouse=True)
def _plotting_rcparams(request):
    """For tests/test_plotting_*.py: Agg backend, default rcParams, figures closed afterwards."""
    if not request.module.__name__.rpartition(".")[2].startswith("test_plotting_"):
        yield
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = matplotlib.rcParams.copy()
    matplotlib.rcdefaults()
    yield
    plt.close("all")
    matplotlib.rcParams.update(saved)
