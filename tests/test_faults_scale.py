"""Fault injection for `hepnn predict` and `hepnn generate --jobs N`: SIGKILL mid-run, then rerun.

Promises checked: nothing partial ever appears under a final output name (atomic writes),
a killed `generate` leaves no worker process running, and a rerun of the killed command
completes (and, for `predict`, equals an uninterrupted run bit for bit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
uproot = pytest.importorskip("uproot")

import hepnn.io  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from test_io_fixtures import per_jet_data, write_top_qcd, write_tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N_BIG = 8000


def quiet(_):
    pass


def toy_config(top, qcd):
    return load_config({
        "name": "faults-toy",
        "data": {
            "layout": "per_jet",
            "files": [{"path": str(top), "tree": "jets", "label": 1}, {"path": str(qcd), "tree": "jets", "label": 0}],
            "inputs": {"jet": {"kind": "flat", "variables": ["jet_mass", "jet_tau21", "jet_tau32", "jet_nparticles"]}},
        },
        "model": {"name": "dense", "units": [8]},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A trained per-jet run (dense on four jet variables) and its two input files."""
    from hepnn.training.trainer import Trainer

    root = tmp_path_factory.mktemp("faults_scale")
    config = toy_config(*write_top_qcd(root, 300))
    Trainer(config, log=quiet).fit(root / "run", data=hepnn.io.load(config))
    return {"run": root / "run", "top": root / "top.root", "qcd": root / "qcd.root", "root": root}


def env():
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}


def hepnn_cmd(*args):
    return [sys.executable, "-m", "hepnn", *map(str, args)]


#: seconds an orphaned worker may take to end (they end within a second; the margin is for a
#: loaded or briefly stalled machine, not a timing claim)
ORPHAN_GRACE_S = 30


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _ppid_and_state(int(entry))
            if info is not None:
                children.setdefault(info[0], []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pid: int) -> bool:
    info = _ppid_and_state(pid)
    return info is not None and info[1] not in ("Z", "X")  # a zombie has ended (only its exit status is left)


def start(args, log: Path) -> subprocess.Popen:
    """Start ``args`` with stdout and stderr into ``log`` (no pipes: orphans could hold them open)."""
    with open(log, "w") as handle:
        return subprocess.Popen(args, env=env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, what: str, proc=None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            text = log.read_text()[-3000:] if log is not None else ""
            pytest.fail(f"the command ended (code {proc.returncode}) before {what}:\n{text}")
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def kill_all(proc, pids=()):
    """SIGKILL ``proc`` and ``pids`` (the processes this test started), then reap ``proc``."""
    for pid in (proc.pid, *pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


# --- hepnn predict --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_inputs(toy_run):
    """Five per-jet files big enough that scoring them takes a moment."""
    folder = toy_run["root"] / "inputs"
    folder.mkdir()
    for k in range(5):
        data = per_jet_data(N_BIG, seed=100 + k, n_max=3)
        write_tree(folder / f"in{k}.root", "jets", data)
    return sorted(folder.glob("in*.root"))


def _scores(path):
    return uproot.open(path)["jets"]["hepnn_score"].array(library="np")


def test_killed_predict_leaves_no_partial_output_and_rerun_equals_uninterrupted(toy_run, many_inputs, tmp_path):
    from hepnn.scale import output_names, predict_files

    out = tmp_path / "scores"
    args = hepnn_cmd("predict", toy_run["run"], *many_inputs, "--out", out, "--step-size", "1000", "--quiet")
    log = tmp_path / "predict.log"
    proc = start(args, log)
    try:
        wait_for(lambda: out.is_dir() and any(out.glob("*_scores.json")), 180, "the first output file", proc, log)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        kill_all(proc)
    assert proc.returncode == -signal.SIGKILL
    names = output_names([str(p) for p in many_inputs])
    finals = [out / names[str(p)] for p in many_inputs]
    done = [f for f in finals if f.exists()]
    assert 1 <= len(done) < len(finals), "the kill should land between the first and the last file"
    for path in many_inputs:  # whatever has its final name is complete: every entry scored
        final = out / names[str(path)]
        if final.exists():
            assert len(_scores(final)) == N_BIG
    leftovers = sorted(p.name for p in out.iterdir() if p not in finals and p.suffix != ".json")
    assert all(name.startswith(".") and ".part" in name for name in leftovers), leftovers

    rerun = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finals)} file(s)" in rerun.stdout and "0 failed" in rerun.stdout
    assert not [p.name for p in out.iterdir() if ".part" in p.name], "temporary files of the killed run are cleaned"

    reference = predict_files(toy_run["run"], many_inputs, tmp_path / "reference", step_size=1000)
    for path in many_inputs:
        np.testing.assert_array_equal(_scores(out / names[str(path)]), _scores(reference[str(path)]))


# --- hepnn generate --jobs N ------------------------------------------------------------------


def test_killed_generate_leaves_no_workers_and_no_partial_file(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    out = tmp_path / "gen" / "qcd.root"
    log = tmp_path / "generate.log"
    proc = start(hepnn_cmd("generate", "qcd", "--n-jets", 500000, "--jobs", 2, "--out", out, "--quiet"), log)
    workers: set[int] = set()
    try:
        def started():
            workers.update(p for p in descendants(proc.pid) if "multiprocessing" in _cmdline(p))
            return len(workers) >= 2 and any(out.parent.glob(".qcd.root.*.part*"))

        wait_for(started, 120, "two generator workers", proc, log)
        time.sleep(1.0)  # let them get busy generating
        assert all(alive(p) for p in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while time.monotonic() < deadline and any(alive(p) for p in workers):
            time.sleep(0.05)
        left = [p for p in workers if alive(p)]
    finally:
        kill_all(proc, [p for p in workers if alive(p)])
    assert not left, f"generator workers still running {ORPHAN_GRACE_S} s after their parent was killed: {left}"
    assert not out.exists(), "no file under the final name after a kill"

    rerun = subprocess.run(hepnn_cmd("generate", "qcd", "--n-jets", 30, "--jobs", 2, "--out", out, "--quiet"),
                           env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert uproot.open(out)["jets"].num_entries == 30
    assert sorted(p.name for p in out.parent.iterdir()) == ["qcd.root"], "the killed run's temporary file is cleaned"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_worker_watchdog_ends_an_orphaned_worker(tmp_path):
    """The watchdog alone (no prctl): a process whose parent is gone exits within a second."""
    script = tmp_path / "orphan.py"
    marker = tmp_path / "pid"
    script.write_text(
        "import os, time\n"
        "import hepnn.datasets.generator as g\n"
        "if os.fork():\n"
        "    time.sleep(2); os._exit(0)  # the parent exits while its child keeps running\n"
        "parent = os.getppid()\n"
        "g.sys = type('S', (), {'platform': 'other'})  # no prctl: only the watchdog can end this process\n"
        "g.die_with_parent(parent, interval=0.05)\n"
        f"open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], env=env(), timeout=60)
    assert proc.returncode == 0
    wait_for(marker.exists, 20, "the child to start")
    pid = int(marker.read_text())
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    assert not alive(pid), "the orphaned worker kept running"


def test_a_generator_worker_that_dies_is_an_error_not_a_wait_for_ever(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    out = tmp_path / "gen" / "qcd.root"
    # every worker ends like a SIGKILL (os._exit(137), no message) before its first chunk
    proc = subprocess.run(hepnn_cmd("generate", "qcd", "--n-jets", 40, "--jobs", 2, "--out", out, "--quiet"),
                          env={**env(), "HEPNN_FAULT_AT": "generate-worker:1"}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "generator worker 0 ended without finishing (exit code 137" in proc.stderr
    assert "if __name__ == \"__main__\"" in proc.stderr  # the usual cause in a script: spawn re-imports it
    assert not out.exists() and not list(out.parent.glob(".qcd.root.*.part*")), "nothing left behind"
