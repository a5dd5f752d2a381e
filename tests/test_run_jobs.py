"""`hepnn run --jobs N`: the variants' train, evaluate and explain steps in worker processes.

The promise: the same numbers as one process whose TensorFlow uses the workers' thread count
(TensorFlow's CPU sums depend on it; it is recorded in ``provenance.json``), every worker's
output reaches the terminal with its variant's name, and a failing variant is named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hepnn.exceptions import ConfigError, PluginError, UnknownNameError
from hepnn.run import resolve_jobs, run_analysis

VARIANTS = ("small", "wide", "deep")


def _write_root(path: Path, n: int, shift: float, seed: int) -> None:
    import uproot

    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        f["jets"] = {
            "jet_pt": rng.uniform(500, 700, n), "jet_eta": rng.uniform(-2, 2, n),
            "jet_mass": rng.normal(100 + 50 * shift, 40, n), "jet_tau21": rng.normal(0.6 - 0.2 * shift, 0.2, n),
            "jet_tau32": rng.normal(0.7 - 0.1 * shift, 0.2, n),
        }


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("jobs") / "ana"
    folder.mkdir()
    _write_root(folder / "sig.root", 600, 1, 1)
    _write_root(folder / "bkg.root", 600, 0, 2)
    (folder / "config.yaml").write_text(textwrap.dedent("""
        name: jobs_demo
        data:
          files: [{path: sig.root, tree: jets, label: 1}, {path: bkg.root, tree: jets, label: 0}]
          inputs: {hl: {kind: flat, variables: [jet_mass, jet_tau21, jet_tau32]}}
        training: {epochs: 3, batch_size: 64, seed: 4}
        evaluation: {working_points: [0.3, 0.5]}
        explain: {methods: [permutation], n_jets: 100}
        plots: {formats: [png]}
        variants:
          small: {model: {name: dense, inputs: [hl], units: [8]}}
          wide: {model: {name: dense, inputs: [hl], units: [32], dropout: 0.2}}
          deep: {model: {name: dense, inputs: [hl], units: [16, 16, 8], batch_norm: true}}
        baseline: {inputs: [hl], max_iter: 20}
    """))
    return folder


def _hepnn_run(folder: Path, out: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # hepnn run --jobs gives each worker its share of the cores unless the thread counts are exported:
    # a CI that exports them would set the workers' counts instead
    inherited = {k: v for k, v in os.environ.items() if k not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    env = {**inherited, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "hepnn", "run", str(folder), "--out", str(out), "--steps", "train,evaluate,explain",
         *args], env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _weights(run: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


def test_jobs_give_the_numbers_of_one_process_with_the_same_threads(analysis_dir, tmp_path):
    parallel = _hepnn_run(analysis_dir, tmp_path / "parallel", "--jobs", "2")
    threads = {json.loads((tmp_path / "parallel" / v / "provenance.json").read_text())["host"]["tensorflow_threads"]
               for v in VARIANTS}
    assert len(threads) == 1
    (n_threads,) = threads
    assert n_threads == max(1, len(os.sched_getaffinity(0)) // 2)
    serial = _hepnn_run(analysis_dir, tmp_path / "serial", env={"TF_NUM_INTRAOP_THREADS": str(n_threads)})

    # every worker line reaches the terminal, named; the parent's own lines too (the BDT baseline)
    out = parallel.stdout
    assert "steps train, evaluate, explain of 3 variants in 2 processes" in out
    for name in VARIANTS:
        assert f"[{name}] epoch 1/3" in out
        assert f"[jobs_demo] {name}: AUC" in out
        assert f"[jobs_demo] {name}: permutation on 100 jets" in out
    assert "[jobs_demo] BDT baseline on hl: AUC" in out
    assert "epoch 1/3" in serial.stdout and "[small] epoch" not in serial.stdout

    for name in VARIANTS:
        a, b = tmp_path / "parallel" / name, tmp_path / "serial" / name
        assert json.loads((a / "metrics.json").read_text()) == json.loads((b / "metrics.json").read_text()), name
        for wa, wb in zip(_weights(a), _weights(b), strict=True):
            np.testing.assert_array_equal(wa, wb)
        with np.load(a / "explain" / "permutation" / "values.npz") as va, \
                np.load(b / "explain" / "permutation" / "values.npz") as vb:
            assert sorted(va.files) == sorted(vb.files)
            for key in va.files:
                if "seconds" not in key:  # wall times
                    np.testing.assert_array_equal(va[key], vb[key])
    bdt_a = json.loads((tmp_path / "parallel" / "bdt" / "metrics.json").read_text())
    bdt_b = json.loads((tmp_path / "serial" / "bdt" / "metrics.json").read_text())
    assert bdt_a == bdt_b and 0.6 < bdt_a["auc"] < 1.0

    # the results table says what the numbers depend on
    from hepnn.plotting.step import write_results
    from hepnn.plugins import load_analysis

    table = write_results(load_analysis(analysis_dir), tmp_path / "parallel").read_text()
    assert f"- TensorFlow intra-op threads per run: {n_threads} (the last digits depend on the count" in table


def test_a_failing_variant_is_named_and_the_others_are_kept(analysis_dir, tmp_path):
    folder = tmp_path / "ana"
    folder.mkdir()
    for f in ("sig.root", "bkg.root", "config.yaml"):
        (folder / f).write_bytes((analysis_dir / f).read_bytes())
    # a plugin analysis (imported again by each worker) whose model builder fails for one variant
    (folder / "analysis.py").write_text(textwrap.dedent("""
        from hepnn import Analysis


        class Picky(Analysis):
            def build_model(self, config, input_shapes, n_outputs):
                if config.name.endswith("/wide"):
                    raise ValueError("no wide models here")
                return None
    """))
    lines: list[str] = []
    # the worker's error keeps its class and message, prefixed with the variant
    with pytest.raises(PluginError, match=r"variant 'wide': analysis plugin Picky: its build_model\(.*\) hook raised "
                                          r"ValueError: no wide models here"):
        run_analysis(folder, out=tmp_path / "out", steps="train", jobs=2, log=lines.append)
    # the variants that did not fail are trained (a second `hepnn run` resumes only what is missing)
    assert (tmp_path / "out" / "small" / "model.keras").is_file()
    assert any(line.startswith("[small] epoch 3/3") for line in lines)


def test_jobs_values():
    assert resolve_jobs(1) == resolve_jobs("1") == resolve_jobs(None) == 1
    assert resolve_jobs(" 3 ") == 3
    assert resolve_jobs("auto") == resolve_jobs("AUTO") == len(os.sched_getaffinity(0))
    for bad in (0, -1, "0", "two", "", True, 1.5):
        with pytest.raises(ConfigError, match="--jobs"):
            resolve_jobs(bad)


def test_cli_rejects_bad_jobs_before_doing_anything(analysis_dir, tmp_path, capsys):
    from hepnn.cli import main

    assert main(["run", str(analysis_dir), "--out", str(tmp_path / "out"), "--jobs", "zero"]) == 2
    err = capsys.readouterr().err
    assert "--jobs: 'zero' is not a number of processes" in err
    assert not (tmp_path / "out").exists()


def test_steps_select_variants(analysis_dir, tmp_path):
    from hepnn.plugins import load_analysis
    from hepnn.training.step import run_dirs

    analysis = load_analysis(analysis_dir)
    assert list(run_dirs(analysis, tmp_path)) == list(VARIANTS)
    assert list(run_dirs(analysis, tmp_path, ["deep", "small"])) == ["small", "deep"]  # the config's order
    assert run_dirs(analysis, tmp_path, ()) == {}
    with pytest.raises(UnknownNameError, match="smal"):
        run_dirs(analysis, tmp_path, ["smal"])


def test_costliest_variants_start_first():
    from hepnn.config import load_config
    from hepnn.run import costliest_first

    config = load_config({
        "data": {"inputs": {"p": {"kind": "sequence", "variables": ["a", "b"], "max_length": 4}}},
        "training": {"epochs": 10},
        "variants": {
            "dense": {"model": {"name": "dense", "inputs": ["p"]}},  # 1 x 10
            "pnet": {"model": {"name": "particlenet", "inputs": ["p"]}, "training": {"epochs": 2}},  # 8 x 2
            "sets": {"model": {"name": "deepsets", "inputs": ["p"]}, "training": {"epochs": 30}},  # 1.5 x 30
            "dense2": {"model": {"name": "dense", "inputs": ["p"]}},  # a tie keeps the config's order
        },
    })
    assert costliest_first(config, list(config.variants)) == ["sets", "pnet", "dense", "dense2"]
