"""hepnn.scale on a dask.distributed LocalCluster of 2 worker processes: exact scores,
one model load per worker, a killed worker loses no file, Tagger.predict_dask."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time

import pytest

pytest.importorskip("keras")
pytest.importorskip("pythia8mc")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")
distributed = pytest.importorskip("distributed")
pytest.importorskip("dask_awkward")

import hepnn  # noqa: E402
from hepnn.scale import predict_files  # noqa: E402
from hepnn.scale.predict import load_counts  # noqa: E402
from test_scale_predict import check_friend, event_run, scale_files  # noqa: E402,F401

TIMEOUT = 240  # a loaded 2-core machine: workers import TensorFlow on their first task


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       silence_logs=logging.CRITICAL, dashboard_address="127.0.0.1:0")
    c = distributed.Client(cluster, timeout=TIMEOUT)
    c.wait_for_workers(2, timeout=TIMEOUT)
    yield c
    # A loaded machine can be slow to stop worker processes; that is no failure of hepnn's.
    try:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)
    except (TimeoutError, OSError):
        pass


@pytest.fixture(scope="module")
def many_files(scale_files, tmp_path_factory):
    """6 inputs (copies of the 3 generated files under other names) so both workers get work."""
    folder = tmp_path_factory.mktemp("scale_many")
    out = []
    for k in range(2):
        for i, path in enumerate(scale_files["events"]):
            out.append(str(shutil.copy(path, folder / f"copy{k}_{i}.root")))
    return out


def test_cluster_scores_equal_the_single_process_path(client, many_files, event_run, tmp_path):
    result = predict_files(event_run, many_files, tmp_path, client=client)
    assert len(result.written) == 6 and not result.failed
    tagger = hepnn.Tagger.load(event_run)
    for path in many_files:
        check_friend(tagger, path, result[path])
    again = predict_files(event_run, many_files, tmp_path, client=client)
    assert len(again.skipped) == 6


def test_model_is_loaded_once_per_worker(client, many_files, event_run, tmp_path):
    predict_files(event_run, many_files, tmp_path, client=client)
    predict_files(event_run, many_files, tmp_path, client=client, resume=False)
    counts = client.run(load_counts)
    loads = [c.get(os.path.abspath(event_run), 0) for c in counts.values()]
    assert len(counts) == 2 and max(loads) == 1, counts


def test_predict_dask_is_lazy_and_exact(client, scale_files, event_run):
    tagger = hepnn.Tagger.load(event_run)
    files = scale_files["events"]
    lazy = tagger.predict_dask(files, step_size=10)
    assert type(lazy).__module__.startswith("dask_awkward") and lazy.npartitions > len(files)
    scores = lazy.compute()
    expected = ak.concatenate([tagger.predict_file(p) for p in files])
    assert ak.to_list(scores) == ak.to_list(expected)


def test_a_killed_worker_loses_no_file(client, many_files, event_run, tmp_path):
    pids = client.run(os.getpid)
    killed = {}

    def kill_first_busy_worker():
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not killed:
            busy = [addr for addr, keys in client.processing().items() if keys and addr in pids]
            if busy:
                killed[busy[0]] = pids[busy[0]]
                os.kill(pids[busy[0]], signal.SIGKILL)
                return
            time.sleep(0.05)

    client.restart()  # fresh workers: the first task spends seconds importing TensorFlow, plenty to kill it in
    pids.update(client.run(os.getpid))
    thread = threading.Thread(target=kill_first_busy_worker, daemon=True)
    thread.start()
    result = predict_files(event_run, many_files, tmp_path, client=client)
    thread.join(timeout=5)
    assert killed, "no worker was killed"
    assert len(result.written) == 6 and not result.failed
    tagger = hepnn.Tagger.load(event_run)
    for path in many_files:
        check_friend(tagger, path, result[path])
    assert list(killed.values())[0] not in client.run(os.getpid).values()


def test_cli_scheduler_option(client, scale_files, event_run, tmp_path, capsys):
    from hepnn.cli import main

    address = client.scheduler.address
    code = main(["predict", event_run, *scale_files["events"][:2], "--out", str(tmp_path), "--scheduler", address,
                 "--quiet"])
    assert code == 0 and "2 written" in capsys.readouterr().out
    check_friend(hepnn.Tagger.load(event_run), scale_files["events"][1], tmp_path / "ttbar_1_scores.root")
