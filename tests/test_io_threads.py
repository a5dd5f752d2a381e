"""hepnn.io.threads: the reader's thread count (HEPNN_READER_THREADS, OMP_NUM_THREADS, Dask workers)."""

from __future__ import annotations

import logging
import os
import sys
import types

import pytest

from hepnn.io.threads import default_threads, reader_threads


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@pytest.fixture
def no_settings(monkeypatch):
    monkeypatch.delenv("HEPNN_READER_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return monkeypatch


def test_setting_omp_and_cores(no_settings):
    assert default_threads() == min(8, _cores())
    no_settings.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3 and reader_threads(100, per_thread=50) == 2 and reader_threads(10, 50) == 1
    no_settings.setenv("HEPNN_READER_THREADS", "5")  # the reader's own setting wins
    assert default_threads() == 5
    no_settings.setenv("HEPNN_READER_THREADS", "0")
    assert default_threads() == 1


def test_one_thread_inside_a_dask_task(no_settings):
    fake = types.ModuleType("distributed")

    def outside():
        raise ValueError("No worker found")

    fake.get_worker = outside
    no_settings.setitem(sys.modules, "distributed", fake)
    assert default_threads() == min(8, _cores())
    fake.get_worker = lambda: object()
    assert default_threads() == 1
    no_settings.setenv("HEPNN_READER_THREADS", "4")
    assert default_threads() == 4


def _report():
    from hepnn.io.threads import reader_threads as threads

    return threads(), os.environ.get("OMP_NUM_THREADS")


def test_dask_worker_threads_in_process(no_settings):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, silence_logs=logging.CRITICAL,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        threads, omp = client.submit(_report, pure=False).result(timeout=120)
    assert omp is None and threads == 1  # no OMP_NUM_THREADS here: the worker itself is detected
    # the cores this process may run on (its affinity mask, as the reader counts them), not
    # os.cpu_count(): under `taskset -c 0` or in a one-CPU cpuset the reader rightly uses one thread
    if _cores() > 1:
        assert reader_threads() == min(8, _cores())  # outside the task: the cores again


def test_dask_worker_process_uses_one_reader_thread(no_settings):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, silence_logs=logging.CRITICAL,
                                  dashboard_address=None) as cluster, distributed.Client(cluster, timeout=120) as client:
        threads, omp = client.submit(_report, pure=False).result(timeout=240)
    assert (threads, omp) == (1, "1")  # Dask's nanny sets OMP_NUM_THREADS=1 in worker processes
