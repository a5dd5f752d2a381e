"""The numbers hepnn owns do not depend on the machine: CPU instruction set and thread count.

hepnn promises that its reader (``hepnn.io.load``: derived variables with its own ``libm`` and
``hypot``, padding, images) and the preprocessing fitted on its output give the same bits on
any x86-64 CPU and core count (``hepnn/io/libm.py``, ``hepnn/_numba.py``). CI runs on some
machine of "the same kind", maybe with AVX-512 or without AVX2, with other cores: these tests
read one small file in fresh processes that see another machine, and compare hashes.

"Another machine" is what each library lets a process pretend:

* numpy: ``NPY_DISABLE_CPU_FEATURES`` with every SIMD target numpy dispatches to on this CPU
  (numpy >= 2.4 names them ``X86_V3``, ``X86_V4``, ...; the older names such as ``AVX2``
  ``AVX512F`` are silently ignored there, so the names are taken from numpy itself and the
  process checks that none is left on);
* numba: ``NUMBA_CPU_NAME=generic`` (baseline x86-64 code for hepnn's compiled loops, no AVX);
* OpenBLAS: ``OPENBLAS_CORETYPE=Sandybridge`` (another GEMM kernel) and one thread;
* one core (the affinity mask, as ``taskset -c 0``); and four reader and OpenBLAS threads
  (``OMP_NUM_THREADS=4``) on blocks small enough that every thread is used.

TensorFlow's numbers are not in this promise (oneDNN and XLA pick kernels by CPU and batch
shape); tests that compare two TensorFlow code paths use tolerances for that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import awkward as ak
import pytest

from test_io_fixtures import PER_JET_YAML, make_per_jet, per_jet_data, write_tree

#: run in a fresh process: load the config, print a sha256 per array and of the fitted preprocessing
SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    import numpy as np

    if os.environ.get("PORTABILITY_SMALL_BLOCKS"):  # many threads and blocks even for a small file
        import hepnn.io.representations as reps
        import hepnn.preprocessing.preprocessor as prep
        reps._MIN_ELEMENTS_PER_THREAD = 1
        reps._FEATURE_BLOCK = 7
        reps._JETS_PER_IMAGE_BLOCK = 1
        prep._MIN_VALUES_PER_THREAD = 1
        prep._JETS_PER_BLOCK = 3
        prep._ROWS_PER_BLOCK = 5
        prep._COMPILED_FIT_VALUES = 1
    if os.environ.get("PORTABILITY_ONE_CORE"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    import numba
    import llvmlite.binding
    import hepnn.io
    from hepnn.config import load_config
    from hepnn.io.threads import reader_threads
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:
        from numpy.core import _multiarray_umath as umath

    def digest(value):
        return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()

    def exact(value):  # floats as hex: JSON of the fitted state, to the last bit
        if isinstance(value, dict):
            return {k: exact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, np.ndarray)):
            return [exact(v) for v in value]
        if isinstance(value, (float, np.floating)):
            return float(value).hex()
        return value if isinstance(value, (str, int, bool, type(None))) else repr(value)

    data = hepnn.io.load(load_config(sys.argv[1]))
    out = {k: digest(v) for k, v in data.items() if isinstance(v, np.ndarray)}
    state = data.preprocessing.to_dict()
    out["preprocessing"] = hashlib.sha256(json.dumps(exact(state), sort_keys=True).encode()).hexdigest()
    out["_simd"] = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    out["_cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    out["_numba_cpu"] = numba.config.CPU_NAME or llvmlite.binding.get_host_cpu_name()
    out["_reader_threads"] = reader_threads()
    out["_n_jets"] = int(len(data["label"]))
    print("PORTABILITY " + json.dumps(out))
""")

# rel_phi, delta_r (hepnn's hypot), log_* (its log), an image that is centred, rotated and flipped
YAML = PER_JET_YAML.replace(
    "variables: [rel_eta, rel_phi, log_pt, log_pt_frac, log_e, log_e_frac, delta_r]",
    "variables: [rel_eta, rel_phi, log_pt, log_pt_frac, log_e, log_e_frac, delta_r, eta, phi, pt]",
)

_HAS_AFFINITY = hasattr(os, "sched_getaffinity")


def _clean_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NPY_", "NUMBA_CPU", "OPENBLAS_", "PORTABILITY_"))
           and k not in ("HEPNN_READER_THREADS", "OMP_NUM_THREADS")}
    if "NUMBA_CPU_NAME" in extra:  # the loops compiled for a pretended CPU go to their own cache
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba_cache")
    env.update(PYTHONHASHSEED="0", **extra)
    return env


def _hashes(config: Path, tmp_path: Path, **extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(config)], env=_clean_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, f"{extra}: {proc.stderr[-3000:]}"
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("PORTABILITY ")]
    return json.loads(line.removeprefix("PORTABILITY "))


def _differences(reference: dict, other: dict) -> list[str]:
    keys = sorted(k for k in reference if not k.startswith("_"))
    assert keys == sorted(k for k in other if not k.startswith("_"))
    return [k for k in keys if reference[k] != other[k]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small per-jet file pair, and the hashes of one plain process reading it with one thread."""
    assert YAML != PER_JET_YAML, "test_io_fixtures.PER_JET_YAML changed: update YAML here"
    tmp_path = tmp_path_factory.mktemp("portability")
    config = make_per_jet(tmp_path, n=150, yaml_text=YAML)
    reference = _hashes(config, tmp_path, HEPNN_READER_THREADS="1")
    assert reference["_n_jets"] == 300
    return config, tmp_path, reference


def test_another_cpu_gives_the_same_bits(setup):
    """numpy without its SIMD targets, numba's baseline x86-64 code, another OpenBLAS kernel, one core."""
    config, tmp_path, reference = setup
    simd = reference["_simd"]  # the SIMD targets numpy dispatches to on this CPU, all turned off
    extra = {"NPY_DISABLE_CPU_FEATURES": " ".join(simd), "NUMBA_CPU_NAME": "generic",
             "OPENBLAS_CORETYPE": "Sandybridge", "OPENBLAS_NUM_THREADS": "1"}
    if _HAS_AFFINITY:
        extra["PORTABILITY_ONE_CORE"] = "1"
    other = _hashes(config, tmp_path, **extra)
    assert other["_simd"] == [], f"NPY_DISABLE_CPU_FEATURES={' '.join(simd)!r} left {other['_simd']} on"
    assert other["_numba_cpu"] == "generic"
    assert not _HAS_AFFINITY or other["_cores"] == 1
    assert _differences(reference, other) == [], f"the reader's arrays depend on the CPU: {extra}"


def test_thread_counts_give_the_same_bits(setup):
    """Four reader threads (from OMP_NUM_THREADS, as in a batch job) on blocks of a few jets, and
    four OpenBLAS threads, against one thread on whole chunks."""
    config, tmp_path, reference = setup
    other = _hashes(config, tmp_path, OMP_NUM_THREADS="4", PORTABILITY_SMALL_BLOCKS="1")
    assert other["_reader_threads"] == 4 and reference["_reader_threads"] == 1
    assert _differences(reference, other) == [], "the reader's arrays depend on the thread count"


def test_the_hashes_see_a_changed_value(setup):
    """The comparison can fail: one constituent's px changed in its 7th digit changes the hashes."""
    config, tmp_path, reference = setup
    data = per_jet_data(150, seed=1)
    px = ak.to_numpy(ak.flatten(data["part_px"]))
    px[5] *= 1 + 1e-6  # a few float32 ulps
    data["part_px"] = ak.unflatten(px, ak.num(data["part_px"]))
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "qcd.root").write_bytes((tmp_path / "qcd.root").read_bytes())
    write_tree(moved / "top.root", "jets", data)
    (moved / "config.yaml").write_text(config.read_text())
    other = _hashes(moved / "config.yaml", tmp_path, HEPNN_READER_THREADS="1")
    assert {"particles", "preprocessing"} <= set(_differences(reference, other))


def _compile_warnings(source: str, filename: str) -> list[str]:
    """Warnings Python gives compiling ``source`` (as on a clean checkout: no cached bytecode)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile(source, filename, "exec")
    return [f"{filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught]


def test_a_clean_checkout_compiles_without_warnings():
    """An invalid escape such as ``"\\ "`` in a docstring warns only when the module is compiled, so
    only on a clean checkout (CI) and not where ``__pycache__`` holds its bytecode; under
    ``error::DeprecationWarning:hepnn`` (Python >= 3.12: SyntaxWarning) it can then fail a test."""
    assert _compile_warnings('"""a \\ b"""\n', "probe.py"), "the check must see an invalid escape"
    root = Path(__file__).resolve().parents[1]
    found = [w for path in sorted([*root.joinpath("hepnn").rglob("*.py"), *root.joinpath("tests").glob("*.py")])
             for w in _compile_warnings(path.read_text(encoding="utf-8"), str(path.relative_to(root)))]
    assert found == []
