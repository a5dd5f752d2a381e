"""tf.distribute: MultiWorkerMirroredStrategy with two local CPU worker processes on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from hepnn.training import distribute

WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from hepnn.training.trainer import Trainer

    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    data = {"jet": (rng.normal(size=(n, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(n, "float32"), "split": np.where(np.arange(n) < 480, 0, 1).astype("int8")}
    cfg = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
           "model": {"name": "dense", "units": [8], "dropout": 0.0},
           "training": {"epochs": 2, "batch_size": 32, "verbose": 0}}
    trainer = Trainer(cfg, log=lambda line: None).fit(sys.argv[1], data=data)
    print(json.dumps({"history": trainer.history_}))
""")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_cpu_workers_train_in_sync(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    # all-reduced gradients: both workers hold the same model, so they report the same losses
    losses = [[round(row["loss"], 6) for row in o["history"]] for o in outputs]
    assert losses[0] == losses[1]
    assert outputs[0]["history"][-1]["loss"] < 0.75  # binary cross-entropy per jet, not summed over workers
    run = tmp_path / "run"
    assert (run / "model.keras").is_file()
    assert not (run / ".worker-1").exists(), "the non-chief scratch folder is removed"
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["strategy"] == "MultiWorkerMirroredStrategy"


def test_cluster_detection(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert not distribute.is_multi_worker() and distribute.is_chief() and distribute.n_workers() == 1
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert distribute.is_multi_worker() and not distribute.is_chief()
    assert distribute.n_workers() == 2 and distribute.worker_index() == 1
    monkeypatch.delenv("TF_CONFIG")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert distribute.is_multi_worker() and distribute.is_chief() and distribute.n_workers() == 4
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.is_multi_worker()
