"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import random
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


SEED = 20261126

#: end-to-end test files (whole training runs, worker processes, clusters, docs and package
#: builds): marked ``integration`` so that ``make test-fast`` (``-m "not slow and not
#: integration"``) leaves them out; ``make test`` and CI run them.
INTEGRATION_FILES = frozenset({
    "test_analyses.py", "test_bench_gpu.py", "test_cli.py", "test_cli_outputs_protected.py",
    "test_datasets_generate.py", "test_docs.py",
    "test_explain_run.py", "test_export_deploy.py", "test_export_onnx.py", "test_faults_scale.py",
    "test_faults_training.py", "test_io_threads.py", "test_packaging.py", "test_report.py", "test_scale_dask.py", "test_scale_slurm.py",
    "test_training_distributed.py", "test_training_gpu_paths.py", "test_training_kfold.py", "test_tune_cli.py",
    "test_tune_study.py", "test_tune_toy.py", "test_tutorials.py",
})


#: the files that take longest (seconds of a 2-core run, 2026-12-03), longest first. ``make test``
#: hands whole files to two workers (``--dist loadfile``) in collection order
#: (``--no-loadscope-reorder``: pytest-xdist would otherwise hand out the files with the most tests
#: first, so these long files with few tests came last and one worker finished minutes before the
#: other); the other files follow in their usual order and fill the gaps.
LONG_FILES = (
    "test_tutorials.py",  # 220-300 s
    "test_scale_slurm.py",  # 70-100 s with a local Slurm (two of its tests are slow)
    "test_report.py",  # ~100 s
    "test_scale_dask.py", "test_faults_commands.py", "test_run_jobs.py", "test_models_contract.py",
    "test_training_gpu_paths.py", "test_analyses.py", "test_training_cli.py",  # 45-65 s each
    "test_bad_inputs_scale.py", "test_faults_training.py", "test_faults_scale.py", "test_tune_study.py",
    "test_datasets_generate.py",  # 30-40 s each
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in INTEGRATION_FILES:
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))  # stable: a file's tests keep their order


class _SeedKerasOnImport(importlib.abc.MetaPathFinder):
    """Seeds Keras right after its first import (a test that imports it inside its body)."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_seed(module):
            exec_module(module)
            module.utils.set_random_seed(SEED)

        spec.loader.exec_module = exec_and_seed
        return spec


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same Python, NumPy and Keras seeds.

    Without this, a test that builds an unseeded model depends on how many
    random numbers earlier tests drew, and a tolerance that holds for most
    initialisations fails once in a while. Tests that study seeds set their own.
    Keras is not imported for a test that does not use it: it is seeded here when
    already imported, else right after the test imports it.
    """
    random.seed(SEED)
    np.random.seed(SEED)
    finder = None
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(SEED)
    else:
        finder = _SeedKerasOnImport()
        sys.meta_path.insert(0, finder)
    yield
    if finder is not None and finder in sys.meta_path:
        sys.meta_path.remove(finder)


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
