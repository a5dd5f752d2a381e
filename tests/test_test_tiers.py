"""The tiers: ``make test-fast`` (developers), ``make test`` (CI: all but ``slow``), ``make test-all``."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import INTEGRATION_FILES

ROOT = Path(__file__).resolve().parents[1]


def test_integration_files_exist():
    missing = sorted(name for name in INTEGRATION_FILES if not (ROOT / "tests" / name).is_file())
    assert not missing, f"tests/conftest.py INTEGRATION_FILES names files that do not exist: {missing}"


def test_make_test_leaves_out_slow_tests_and_test_all_runs_everything():
    makefile = (ROOT / "Makefile").read_text()
    recipes = dict(re.findall(r"^([\w-]+):[^\n]*\n((?:\t[^\n]*\n?)+)", makefile, flags=re.M))
    assert '-m pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)' in recipes["test"]
    assert "-m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)" in recipes["test-all"]
    assert "-m pytest -m slow $(PYTEST_PARALLEL) $(PYTEST_ARGS)" in recipes["test-slow"]
    assert '-m "not slow and not integration" $(PYTEST_PARALLEL)' in recipes["test-fast"]
    assert re.search(r"^bench: test-slow$", makefile, flags=re.M), "make bench runs the slow tests first"
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize(("workers", "expected"), [(None, "-n 2 --dist loadfile"), ("3", "-n 3 --dist loadfile"), ("0", "")])
def test_make_test_runs_the_suite_in_worker_processes_a_file_each(workers, expected):
    # loadfile: a file's tests share one process, so its module and session fixtures (the
    # tutorials' sample cache, the Slurm and Dask clusters) are made once and never in parallel
    args = ["make", "-n", "-C", str(ROOT), "test", "PYTEST_ARGS=--co"]
    if workers is not None:
        args.append(f"PYTEST_WORKERS={workers}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_WORKERS", "MAKEFLAGS", "MAKELEVEL")}
    printed = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    line = next(line for line in printed.splitlines() if "-m pytest" in line)
    assert shlex.split(line.split("-m pytest", 1)[1].split(";")[0]) == ["-m", "not slow", *expected.split(), "--co"]
