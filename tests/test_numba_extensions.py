"""hepnn's compiled loops leave numba's extension entry points to whoever needs them (hepnn._numba)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")
pytest.importorskip("awkward")

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from numba.core import entrypoints
    from hepnn.io.representations import _element_kernels

    pad_rows = _element_kernels().pad_rows
    out = np.full((2, 4, 1), -1.0, np.float32)
    pad_rows(np.arange(3, dtype=np.float32)[:, None], np.array([0, 1, 3]), 4, 0.0,
             np.zeros(1), np.ones(1), False, out, 0, 2)
    assert out[:, :, 0].tolist() == [[0, 0, 0, 0], [1, 2, 0, 0]], out
    # the loop ran without the extensions' imports and left numba to run them later
    assert entrypoints._already_initialized is False
    assert "awkward._connect.numba" not in sys.modules and "vector.backends._numba" not in sys.modules

    # a user's own numba function on awkward arrays, compiled afterwards, works as without hepnn
    import awkward as ak
    import numba

    @numba.njit
    def total(jets):
        s = 0.0
        for jet in jets:
            for pt in jet:
                s += pt
        return s

    assert total(ak.Array([[1.0, 2.0], [], [3.5]])) == 6.5
    assert entrypoints._already_initialized is True
    print("ok")
    """
)


def test_compiled_loops_leave_numba_extensions_to_the_first_other_compilation():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def test_after_the_extensions_ran_the_loops_compile_as_usual():
    script = SCRIPT.split("# the loop ran")[0].replace(
        "pad_rows = ", "entrypoints.init_all()\npad_rows = "
    ) + "assert entrypoints._already_initialized is True\nprint('ok')\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
