"""The tiers: ``make test-fast`` (developers), ``make test`` (CI: all but ``slow``), ``make test-all``."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INTEGRATION_FILES, LONG_FILES

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
@pytest.mark.parametrize(("workers", "expected"), [(None, "-n 2 --dist loadfile --no-loadscope-reorder"),
                                                     ("3", "-n 3 --dist loadfile --no-loadscope-reorder"), ("0", "")])
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


def test_the_long_files_are_collected_first_and_exist():
    """``make test`` hands files out in collection order: the longest first (``LONG_FILES``), so
    no worker is left alone with a long file at the end; a renamed file would silently drop out."""

    tests = Path(__file__).parent
    assert all((tests / name).is_file() for name in LONG_FILES)
    printed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "-m", "not slow", str(tests / "test_test_tiers.py"), str(tests / "test_tutorials.py")],
                             capture_output=True, text=True, check=True, cwd=tests.parent).stdout
    files = [line.split("::")[0] for line in printed.splitlines() if "::" in line]
    assert files and files[0].endswith("test_tutorials.py") and files[-1].endswith("test_test_tiers.py")
