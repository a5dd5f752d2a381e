"""The SLURM job templates on a real one-node Slurm: train, requeue and resume, two workers, predict.

Needs `sinfo`, `sbatch` and an idle node (`.ci/slurm-up` starts one; `.ci/run` calls it in CI);
otherwise every test here skips and says why. The jobs run the `hepnn` of this checkout (PATH
and PYTHONPATH through the templates' `setup` lines) on a few hundred jets with a tiny dense model.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hepnn
from hepnn.scale.jobs import check, read_sinfo, write

pytestmark = pytest.mark.slurm

EPOCHS = 12
SRC = Path(hepnn.__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SETUP = [f"export PATH={BIN}:$PATH", f"export PYTHONPATH={SRC}${{PYTHONPATH:+:$PYTHONPATH}}",
         "export TF_CPP_MIN_LOG_LEVEL=2 OMP_NUM_THREADS=1"]


def _slurm_reason() -> str | None:
    """Why the tests cannot run on SLURM here (None: they can)."""
    for tool in ("sinfo", "sbatch", "scontrol", "scancel"):
        if not shutil.which(tool):
            return f"{tool} not found (start a local Slurm with .ci/slurm-up, as root)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s (slurmctld not running? .ci/slurm-up starts it)"
    states = out.stdout.split()
    if out.returncode != 0 or not states:
        return f"sinfo failed: {out.stderr.strip()[:200] or 'no nodes'} (.ci/slurm-up starts a local Slurm)"
    if not {"idle", "mix"} & set(states):
        return f"no idle node (sinfo states: {' '.join(states)})"
    nodes = read_sinfo()
    if not nodes or max(n["cpus"] for n in nodes) < 2:
        return "the tests need a node with 2 CPUs (two workers of the multi-node template)"
    return None


@pytest.fixture(scope="module")
def slurm():
    """Skip (with the reason) unless a SLURM with an idle node answers."""
    reason = _slurm_reason()
    if reason:
        pytest.skip(f"no usable Slurm: {reason}")
    return read_sinfo()


def write_data(folder: Path) -> dict:
    import uproot
    import yaml

    rng = np.random.default_rng(0)
    files = {}
    for label, name in ((0, "qcd"), (1, "top")):
        for part in range(2):
            x = rng.normal(size=(150, 3)) + label
            path = folder / f"{name}_{part}.root"
            with uproot.recreate(path) as f:
                f["jets"] = {v: x[:, i].astype("float32") for i, v in enumerate("abc")}
            files[f"{name}_{part}"] = str(path)
    config = {"data": {"layout": "per_jet",
                       "files": [{"path": files["qcd_0"], "tree": "jets", "label": 0},
                                 {"path": files["top_0"], "tree": "jets", "label": 1}],
                       "inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
              "model": {"name": "dense", "units": [8], "dropout": 0.0},
              "training": {"epochs": EPOCHS, "batch_size": 8, "verbose": 0, "early_stopping": None,
                           "deterministic": True}}
    (folder / "cfg.yaml").write_text(yaml.safe_dump(config))
    return {"config": str(folder / "cfg.yaml"), "files": files}


def hepnn_cli(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "hepnn", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def data(slurm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    return {**write_data(folder), "folder": folder}


@pytest.fixture(scope="module")
def train_job(data):
    """The training template submitted before the reference run, so the two run side by side."""
    folder = data["folder"] / "job_train"
    (script,) = write("slurm", folder, config=data["config"], out=str(folder / "run"), setup=SETUP, time="00:10:00")
    return sbatch(script), folder


@pytest.fixture(scope="module")
def direct(data, train_job):
    """`hepnn train` run directly (no Slurm): the reference."""
    hepnn_cli("train", data["config"], "--out", str(data["folder"] / "direct"), cwd=data["folder"])
    return data["folder"] / "direct"


def sbatch(script: Path) -> str:
    out = subprocess.run(["sbatch", "--parsable", script.name], cwd=script.parent, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"sbatch {script} failed: {out.stderr}"
    return out.stdout.strip().split(";")[0]


def job(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def job_log(folder: Path, job_id: str) -> str:
    logs = list(folder.glob(f"*-{job_id}.log"))
    return logs[0].read_text() if logs else "(no log)"


def wait_for(job_id: str, folder: Path, until, timeout: float = 240, what: str = "done") -> dict:
    """Poll the job until ``until(info)``; fail with its log when it ends otherwise or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = job(job_id)
        if until(info):
            return info
        if info.get("JobState") in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"):
            pytest.fail(f"job {job_id} ended {info['JobState']} while waiting for {what}:\n{job_log(folder, job_id)}")
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], check=False)
    pytest.fail(f"job {job_id} not {what} after {timeout} s (state {job(job_id).get('JobState')}):\n"
                f"{job_log(folder, job_id)}")


def completed(info: dict) -> bool:
    return info.get("JobState") == "COMPLETED"


def epochs_done(run: Path) -> int:
    import json

    state = run / "checkpoints" / "state.json"
    try:
        return int(json.loads(state.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def weights(run: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


def losses(run: Path) -> np.ndarray:
    return np.array([float(row["loss"]) for row in csv.DictReader(open(run / "history.csv"))])


def test_check_reads_the_local_node(slurm):
    node = max(slurm, key=lambda n: n["cpus"])
    assert node["cpus"] == max(n["cpus"] for n in read_sinfo()) and node["memory_mb"] > 0
    assert check("slurm") == []
    problems = check("slurm", cpus=node["cpus"] + 1, gpus=node["gpus"] + 1, mem=f"{node['memory_mb'] + 1}M")
    assert len(problems) == 3
    assert problems[0].startswith(f"cpus-per-task={node['cpus'] + 1}: no node of partition")
    assert f"ask for --cpus {node['cpus']} or fewer" in problems[0]
    assert f"ask for --mem {node['memory_mb']}M or less" in problems[1]
    assert problems[2].startswith(f"gpus-per-node={node['gpus'] + 1}")


def test_training_template_runs_and_matches_a_direct_run(train_job, direct):
    job_id, folder = train_job
    wait_for(job_id, folder, completed)
    run = folder / "run"
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in direct.iterdir() if not p.name.startswith("."))
    np.testing.assert_array_equal(losses(run), losses(direct))
    for a, b in zip(weights(run), weights(direct), strict=True):
        np.testing.assert_array_equal(a, b)


def test_usr1_and_requeue_resume_to_the_same_weights(data, direct):
    folder = data["folder"] / "job_requeue"
    run = folder / "run"
    # a second per epoch: the signals must reach the job between epochs, before the tiny training ends
    # (on a fast machine the restarted job finished before the requeue of step 2 arrived)
    (script,) = write("slurm", folder, config=data["config"], out=str(run), setup=[*SETUP, "export HEPNN_FAULT_SLEEP=epoch:1"],
                      time="00:10:00")
    job_id = sbatch(script)
    # 1. USR1 to the batch script (what --signal=B:USR1@300 sends before the time limit)
    wait_for(job_id, folder, lambda info: epochs_done(run) >= 2, what="at epoch 2")
    subprocess.run(["scancel", "--signal=USR1", "--batch", job_id], check=True, timeout=30)
    first = wait_for(job_id, folder, lambda info: info.get("Restarts") == "1", what="requeued")
    stopped_at = epochs_done(run)
    assert 2 <= stopped_at < EPOCHS, "the job was stopped mid-training"
    # 2. a plain requeue (preemption, an administrator) of the restarted job
    wait_for(job_id, folder, lambda info: info.get("JobState") == "RUNNING" and epochs_done(run) > stopped_at + 1,
             what="running again past its checkpoint")
    subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=30)
    wait_for(job_id, folder, lambda info: info.get("Restarts") == "2", what="requeued twice")
    info = wait_for(job_id, folder, completed)
    assert first["Requeue"] == "1" and info["Restarts"] == "2"
    log = job_log(folder, job_id)
    assert "got USR1; stopping training and requeueing (restart 0)" in log
    resumed = re.findall(r"resuming from epoch (\d+)", log)
    assert len(resumed) == 2 and 2 <= int(resumed[0]) < int(resumed[1]) < EPOCHS, log
    assert len(losses(run)) == EPOCHS
    np.testing.assert_array_equal(losses(run), losses(direct))
    for a, b in zip(weights(run), weights(direct), strict=True):
        np.testing.assert_array_equal(a, b)


# slow (40-70 s on 2 cores: two TensorFlow workers and the direct run share the cores): `make test-slow`;
# `make test` keeps the two-worker synchronisation (tests/test_training_distributed.py) and the
# template's rendering (tests/test_scale_jobs.py)
@pytest.mark.slow
def test_multinode_template_trains_two_workers_in_sync(data, direct):
    import json

    folder = data["folder"] / "job_mw"
    run = folder / "run"
    (script,) = write("slurm-multinode", folder, config=data["config"], out=str(run), nodes=1, tasks_per_node=2,
                      cpus=1, setup=SETUP, time="00:10:00")
    job_id = sbatch(script)
    info = wait_for(job_id, folder, completed)
    assert info["NumTasks"] == "2"
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["strategy"] == "MultiWorkerMirroredStrategy"
    assert not (run / ".worker-1").exists(), "the non-chief scratch folder is removed"
    curve, reference = losses(run), losses(direct)
    assert len(curve) == EPOCHS
    # each batch of 8 is split between the two workers: the same descent as one worker, within tolerance
    np.testing.assert_allclose(curve, reference, atol=0.05)
    assert curve[-1] < curve[0]


# slow (26-37 s: a Dask cluster inside a Slurm job): `make test-slow`; `make test` keeps the Dask
# scoring (tests/test_scale_dask.py) and the rendered script run with any file names
# (tests/test_scale_left41.py)
@pytest.mark.slow
def test_predict_template_scores_files_like_hepnn_predict(data, direct):
    import uproot

    from hepnn.scale import predict_files

    inputs = [data["files"][k] for k in ("qcd_0", "qcd_1", "top_0", "top_1")]
    folder = data["folder"] / "job_predict"
    (script,) = write("slurm-predict", folder, run_dir=str(direct), files=" ".join(inputs),
                      out=str(folder / "scores"), workers=2, setup=SETUP, time="00:10:00")
    assert "#SBATCH --mem=4G" in script.read_text()   # 2G per Dask worker
    job_id = sbatch(script)
    expected = predict_files(str(direct), inputs, data["folder"] / "predict_direct")   # while the job runs
    assert expected.summary() == "4 file(s): 4 written, 0 skipped (already done), 0 failed"
    info = wait_for(job_id, folder, completed)
    assert info["NumCPUs"] == "2"
    assert "4 file(s): 4 written" in job_log(folder, job_id)
    for path in inputs:
        name = Path(expected[path]).name
        got = uproot.open(folder / "scores" / name)["jets"].arrays(library="np")
        want = uproot.open(expected[path])["jets"].arrays(library="np")
        assert list(got) == ["hepnn_score"] and len(got["hepnn_score"]) == 150
        np.testing.assert_array_equal(got["hepnn_score"], want["hepnn_score"])
