"""The fast developer tier (``make test-fast``) and the full tier (``make test``, CI)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import INTEGRATION_FILES

ROOT = Path(__file__).resolve().parents[1]


def test_integration_files_exist():
    missing = sorted(name for name in INTEGRATION_FILES if not (ROOT / "tests" / name).is_file())
    assert not missing, f"tests/conftest.py INTEGRATION_FILES names files that do not exist: {missing}"


def test_make_test_runs_everything_and_test_fast_filters():
    makefile = (ROOT / "Makefile").read_text()
    recipes = dict(re.findall(r"^([\w-]+):[^\n]*\n((?:\t[^\n]*\n?)+)", makefile, flags=re.M))
    assert "-m pytest $(PYTEST_ARGS)" in recipes["test"] and " -m \"" not in recipes["test"]
    assert '-m "not slow and not integration"' in recipes["test-fast"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
