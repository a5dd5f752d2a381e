"""bench/gpu.py (issue 17) in its CPU mode: the JSON it writes, its numbers, and its exit codes.

On a machine without a GPU the GPU-only sections must be marked skipped with the reason; on a
machine with one they run (tiny sizes here either way).
"""

from __future__ import annotations

import json
import math

import pytest
from script_helpers import load_script

tf = pytest.importorskip("tensorflow")

GPU = bool(tf.config.list_physical_devices("GPU"))


@pytest.fixture(scope="module")
def gpu_bench():
    return load_script("bench/gpu.py", "hepnn_bench_gpu")


@pytest.fixture(scope="module")
def cpu_run(gpu_bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_bench")
    rc = gpu_bench.main(["--allow-cpu", "--families", "dense", "--steps", "3", "--batch-size", "16",
                         "--sections", "throughput,cudnn,masking_cpu_vs_gpu,mirrored", "--out", str(out)])
    return rc, json.loads((out / "gpu.json").read_text()), (out / "gpu.md").read_text()


def finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_cpu_mode_writes_figures_and_marks_gpu_sections(cpu_run):
    rc, result, table = cpu_run
    assert rc == 0, result["checks_failed"]
    assert result["schema_version"] == 1 and result["checks_failed"] == []
    env = result["environment"]
    assert env["tensorflow"] == tf.__version__ and env["keras"] and env["python"]
    assert result["mode"] == ("gpu" if GPU else "cpu") and result["gpu_visible"] is GPU

    dense = result["families"]["dense"]
    assert dense["status"] == "ok" and dense["model"] == "dense"
    for policy in ("float32", "mixed_float16"):
        row = dense[policy]
        assert finite_positive(row["jets_per_s"]) and finite_positive(row["ms_per_step"]), row
        assert 0.0 <= row["input_wait_share"] < 1.0 and row["loss_finite"]
        assert 0.0 <= row["input_wait_share_steady"] <= row["input_wait_share"] + 1e-3
        assert 0.0 <= row["first_batch_wait_s"] < 60 and row["epoch_prepare_s"] >= 0.0
        assert row["input_wait_share"] - 1e-3 <= row["input_wait_share_incl_prepare"] <= 1.0
        assert row["steps"] == 3 and row["batch_size"] == 16
    assert dense["float32"]["optimizer"] == "Adam" and dense["mixed_float16"]["optimizer"] == "LossScaleOptimizer"
    assert math.isclose(dense["mixed_speedup"], dense["mixed_float16"]["jets_per_s"] / dense["float32"]["jets_per_s"],
                        rel_tol=1e-2)
    scores = dense["mixed_scores"]
    assert scores["ok"] and scores["output_dtype_float32"] and 0.0 <= scores["max_diff"] <= scores["tolerance"] == 0.02
    assert scores["max_diff"] > 0.0  # float16 maths really ran: scores differ a little from float32

    mirrored = result["mirrored"]
    assert mirrored["status"] == "ok" and mirrored["ok"] and mirrored["n_replicas"] >= 1
    assert len(mirrored["loss_mirrored"]) == len(mirrored["loss_single_device"]) == 3
    assert all(finite_positive(v) for v in mirrored["loss_mirrored"])
    assert mirrored["max_rel_diff"] <= mirrored["tolerance"]
    assert mirrored["loss_mirrored"][-1] < mirrored["loss_mirrored"][0]  # it trains

    assert result["streaming"] == {"status": "skipped", "reason": "not selected (--sections)"}
    if GPU:  # the cuDNN section trains GRU and LSTM itself; no sequence family was measured for masking
        assert result["cudnn"]["status"] == "ok" and result["cudnn"]["gru"]["cudnn_kernel_used"]
        assert result["masking_cpu_vs_gpu"]["status"] == "skipped"
    else:
        for section in ("cudnn", "masking_cpu_vs_gpu"):
            assert result[section]["status"] == "skipped", section
            assert result[section]["reason"].startswith("no GPU visible: "), result[section]
        assert all(t["met"] is None for t in result["targets"])  # no GPU: targets not evaluated
    names = [t["name"] for t in result["targets"]]
    assert "input_wait_share in memory, dense float32 (steady: first-step wait excluded)" in names
    assert "| dense |" in table and "MirroredStrategy" in table


@pytest.mark.skipif(GPU, reason="a GPU is visible: the script runs instead of stopping")
def test_without_a_gpu_it_stops_with_a_clear_message(gpu_bench, tmp_path, capsys):
    rc = gpu_bench.main(["--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("no GPU visible: ") and "--allow-cpu" in err and "hepnn[gpu]" in err
    assert not (tmp_path / "out").exists()  # nothing was run or written


def test_bad_options_are_refused(gpu_bench, capsys):
    with pytest.raises(SystemExit):
        gpu_bench.main(["--sections", "throughput,cudnnn"])
    assert "--sections: unknown cudnnn" in capsys.readouterr().err
    assert gpu_bench.main(["--allow-cpu", "--families", "dense,lstmm", "--sections", "mirrored"]) == 2
    assert "--families: unknown lstmm" in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_mode_sequence_autoencoder_and_streaming(gpu_bench, tmp_path):
    rc = gpu_bench.main(["--allow-cpu", "--families", "gru,autoencoder", "--steps", "2", "--batch-size", "16",
                         "--sections", "throughput,masking_cpu_vs_gpu,streaming", "--stream-jets", "150",
                         "--stream-family", "dense", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert rc == 0, result["checks_failed"]
    for family in ("gru", "autoencoder"):
        fam = result["families"][family]
        assert fam["status"] == "ok" and finite_positive(fam["mixed_float16"]["jets_per_s"]), fam
        assert fam["mixed_scores"]["ok"]
    assert result["families"]["autoencoder"]["mixed_scores"]["what"].startswith("max relative difference")
    stream = result["streaming"]
    assert stream["status"] == "ok" and stream["n_jets"] == 300
    for mode in ("in_memory", "stream_cache"):
        assert finite_positive(stream[mode]["jets_per_s"]) and 0.0 <= stream[mode]["input_wait_share"] <= 1.0
