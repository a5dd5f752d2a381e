"""Bad inputs for predict / Dask / tune / report / model loading: exit code, a message naming the
culprit, and no file outside the output folder changed (checksums before and after).

Categories (at least two cases each): an output that is an input; relative paths sent to a
Dask worker in another directory; a missing or unreachable scheduler; secrets in a storage
URL; a corrupt model file; symlinks out of a run directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
uproot = pytest.importorskip("uproot")

from hepnn.cli import main  # noqa: E402
from hepnn.exceptions import InputDataError  # noqa: E402
from test_faults_scale import env, hepnn_cmd, toy_run  # noqa: E402,F401


def checksums(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """sha256 of every file (and symlink target name) under ``root``, except under ``skip``."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.is_symlink():
            out[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def data(toy_run, tmp_path):
    """A copy of the run's two inputs in tmp_path/data."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(toy_run["top"], folder / "top.root")
    shutil.copy(toy_run["qcd"], folder / "qcd.root")
    return folder


# --- an output that is an input -----------------------------------------------------------------


def test_output_equal_to_another_input_is_refused(toy_run, data, tmp_path, capsys):
    """`hepnn predict RUN data/*.root --out data` after a first run: data/top_scores.root is an input too."""
    shutil.copy(data / "top.root", data / "top_scores.root")
    before = checksums(tmp_path)
    code, _, err = run_cli(capsys, "predict", toy_run["run"], data / "top.root", data / "top_scores.root",
                           "--out", data, "--quiet")
    assert code == 1
    assert "top_scores.root" in err and str(data / "top.root") in err and "overwrite" in err
    assert checksums(tmp_path) == before, "nothing written"


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_output_that_is_a_link_to_an_input_is_refused(toy_run, data, tmp_path, capsys, link):
    out = tmp_path / "scores"
    out.mkdir()
    (os.symlink if link == "symlink" else os.link)(data / "top.root", out / "top_scores.root")
    before = checksums(tmp_path)
    code, _, err = run_cli(capsys, "predict", toy_run["run"], data / "top.root", "--out", out, "--quiet")
    assert code == 1
    assert str(out / "top_scores.root") in err and str(data / "top.root") in err
    assert checksums(tmp_path) == before


def test_check_outputs_refuses_two_inputs_with_one_output(tmp_path):
    from hepnn.scale.predict import check_outputs

    with pytest.raises(InputDataError, match="also the output of input a.root"):
        check_outputs([str(tmp_path / "a.root"), str(tmp_path / "b.root")],
                      {"a.root": [str(tmp_path / "o.root")], "b.root": [str(tmp_path / "o.root")]})


# --- relative paths and a worker in another directory ----------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """hepnn's own local cluster (1 worker process), the worker's working directory moved elsewhere."""
    distributed = pytest.importorskip("distributed")
    from hepnn.scale.predict import _connect

    client, close = _connect(1, None, None)
    client.wait_for_workers(1, timeout=240)
    elsewhere = tmp_path_factory.mktemp("worker_cwd")
    client.run(os.chdir, str(elsewhere))
    assert set(client.run(os.getcwd).values()) == {str(elsewhere)}
    yield {"client": client, "elsewhere": elsewhere, "distributed": distributed}
    close()


def _decoy(elsewhere: Path, toy_run) -> dict:
    """In the worker's directory, other files under the same relative names as the client's."""
    (elsewhere / "data").mkdir(exist_ok=True)
    shutil.copy(toy_run["qcd"], elsewhere / "data" / "top.root")
    return checksums(elsewhere)


def _expected(toy_run, path):
    import hepnn

    return np.asarray(hepnn.Tagger.load(toy_run["run"]).predict_file(str(path)), dtype=np.float32).reshape(-1)


def test_relative_paths_are_resolved_on_the_client(cluster, toy_run, data, tmp_path, monkeypatch):
    from hepnn.scale import predict_files

    decoy = _decoy(cluster["elsewhere"], toy_run)
    monkeypatch.chdir(tmp_path)
    before = checksums(tmp_path, skip=(tmp_path / "rel_out",))
    result = predict_files(toy_run["run"], ["data/top.root"], "rel_out", client=cluster["client"])
    assert result.summary().startswith("1 file(s): 1 written")
    friend = uproot.open(tmp_path / "rel_out" / "top_scores.root")["jets"]["hepnn_score"].array(library="np")
    np.testing.assert_allclose(friend, _expected(toy_run, data / "top.root"), rtol=0, atol=1e-6)
    assert checksums(cluster["elsewhere"]) == decoy, "the worker wrote nothing in its own directory"
    assert checksums(tmp_path, skip=(tmp_path / "rel_out",)) == before


def test_cli_scheduler_with_relative_paths_writes_where_the_client_meant(cluster, toy_run, data, tmp_path,
                                                                        monkeypatch, capsys):
    decoy = _decoy(cluster["elsewhere"], toy_run)
    monkeypatch.chdir(tmp_path)
    before = checksums(tmp_path, skip=(tmp_path / "out",))
    address = cluster["client"].scheduler.address
    code, out, err = run_cli(capsys, "predict", toy_run["run"], "data/qcd.root", "data/top.root", "--out", "out",
                             "--scheduler", address, "--quiet", "--no-resume")
    assert code == 0, err
    assert "2 written" in out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.root")) == ["qcd_scores.root", "top_scores.root"]
    friend = uproot.open(tmp_path / "out" / "top_scores.root")["jets"]["hepnn_score"].array(library="np")
    np.testing.assert_allclose(friend, _expected(toy_run, data / "top.root"), rtol=0, atol=1e-6)
    assert checksums(cluster["elsewhere"]) == decoy
    assert checksums(tmp_path, skip=(tmp_path / "out",)) == before


def test_predict_dask_with_relative_paths_reads_the_clients_files(cluster, toy_run, data, tmp_path, monkeypatch):
    pytest.importorskip("dask_awkward")
    import hepnn

    decoy = _decoy(cluster["elsewhere"], toy_run)
    monkeypatch.chdir(tmp_path)
    tagger = hepnn.Tagger.load(toy_run["run"])
    lazy = tagger.predict_dask(["data/top.root"], tree="jets")
    scores = np.asarray(lazy.compute(scheduler=cluster["client"].get), dtype=np.float32)
    np.testing.assert_allclose(scores, _expected(toy_run, data / "top.root"), rtol=0, atol=1e-6)
    assert checksums(cluster["elsewhere"]) == decoy


def test_local_dashboard_listens_on_localhost_only(cluster):
    scheduler = cluster["client"].cluster.scheduler
    server = scheduler.http_server
    hosts = {sock.getsockname()[0] for sock in server._sockets.values()}
    assert hosts == {"127.0.0.1"}, hosts
    assert "127.0.0.1" in cluster["client"].dashboard_link


# --- a missing or unreachable scheduler -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["missing file", "not json", "unreachable", "unreachable file"])
def test_bad_scheduler_fails_fast_naming_it(toy_run, data, tmp_path, capsys, monkeypatch, kind):
    pytest.importorskip("distributed")
    import hepnn.scale.predict as predict

    monkeypatch.setattr(predict, "CONNECT_TIMEOUT", 2.0)
    port = _free_port()
    if kind == "missing file":
        scheduler, culprit, what = tmp_path / "nowhere" / "scheduler.json", "scheduler.json", "not found"
    elif kind == "not json":
        scheduler, culprit, what = tmp_path / "scheduler.json", "scheduler.json", "not a Dask scheduler file"
        scheduler.write_text("{not json")
    elif kind == "unreachable":
        scheduler, culprit, what = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port}", "cannot connect"
    else:  # a scheduler file left behind by a scheduler that has gone
        scheduler, culprit, what = tmp_path / "old.json", f"tcp://127.0.0.1:{port}", "cannot connect"
        scheduler.write_text(f'{{"address": "tcp://127.0.0.1:{port}", "type": "Scheduler"}}')
    before = checksums(tmp_path)
    start = time.monotonic()
    code, _, err = run_cli(capsys, "predict", toy_run["run"], data / "top.root", "--out", tmp_path / "out",
                           "--scheduler", scheduler, "--quiet")
    assert time.monotonic() - start < 30
    assert code == 1
    assert culprit in err and what in err, err
    assert checksums(tmp_path, skip=(tmp_path / "out",)) == before


# --- secrets in URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret"), [
    ("postgresql://user:hunter2@db.example.org:5432/optuna", "hunter2"),
    ("mysql+pymysql://root:p@ss:w0rd@127.0.0.1/db", "ss:w0rd"),
    ("sqlite:////tmp/study.db?token=abc123&timeout=5", "abc123"),
    ("https://ghp_T0KEN@github.com/org/repo.git", "ghp_T0KEN"),
    ("hepnn tune c.yaml --storage redis://:pa55@h:6379/0 --api-key=K3Y", "pa55"),
    ("hepnn tune c.yaml --storage redis://:pa55@h:6379/0 --api-key=K3Y", "K3Y"),
])
def test_redact_removes_the_secret_and_keeps_the_rest(text, secret):
    from hepnn._redact import MASK, redact

    red = redact(text)
    assert secret not in red and MASK in red
    assert red.split(MASK)[0] == text[: len(red.split(MASK)[0])], "what comes before the secret is kept"


def test_tune_workers_get_the_storage_url_in_the_environment_not_argv(monkeypatch):
    import hepnn.tune.study as study

    seen = []

    class FakePopen:
        def __init__(self, cmd, env=None):
            seen.append((cmd, env))

        def wait(self):
            return 0

    monkeypatch.setattr(study.subprocess, "Popen", FakePopen)
    url = "postgresql://tuner:hunter2@db:5432/optuna"
    assert study.spawn_workers(2, ["tune", "c.yaml", "--join"], log=lambda _: None, storage=url) == [0, 0]
    for cmd, child_env in seen:
        assert not any("hunter2" in str(part) for part in cmd)
        assert child_env["HEPNN_TUNE_STORAGE"] == url


def test_unreachable_storage_error_has_no_password(tmp_path, capsys):
    pytest.importorskip("optuna")
    from test_tune_cli import CONFIG, SPACE

    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "space.yaml").write_text(SPACE)
    before = checksums(tmp_path)
    code, out, err = run_cli(capsys, "tune", tmp_path / "config.yaml", "--space", tmp_path / "space.yaml",
                             "--out", tmp_path / "tune", "--trials", "1",
                             "--storage", f"postgresql://tuner:hunter2@127.0.0.1:{_free_port()}/optuna")
    assert code == 1
    assert "hunter2" not in out + err
    assert "postgresql://tuner:***@127.0.0.1" in err
    assert checksums(tmp_path, skip=(tmp_path / "tune",)) == before


@pytest.mark.slow  # 15-25 s (a real tune); the URL's way to the workers and the error messages are checked above
def test_storage_secret_is_in_no_written_file_nor_output(tmp_path):
    """A real `hepnn tune` (subprocess: its sys.argv holds the URL) with a token in the storage URL."""
    pytest.importorskip("optuna")
    from test_io_fixtures import per_jet_data, write_tree
    from test_tune_cli import CONFIG, SPACE

    top, qcd = per_jet_data(150, seed=1), per_jet_data(150, seed=2)
    write_tree(tmp_path / "top.root", "jets", top)
    write_tree(tmp_path / "qcd.root", "jets", qcd)
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "space.yaml").write_text(SPACE)
    out = tmp_path / "tune"
    secret = "S3cr3tT0ken"
    before = checksums(tmp_path)
    proc = subprocess.run(
        hepnn_cmd("tune", tmp_path / "config.yaml", "--space", tmp_path / "space.yaml", "--out", out, "--trials", 1,
                  "--set", "training.epochs=1",
                  "--storage", f"sqlite:///{out / 'study.db'}?token={secret}"),
        cwd=tmp_path, env=env(), capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert (out / "trials" / "0" / "provenance.json").is_file()
    assert b"token=***" in (out / "trials" / "0" / "provenance.json").read_bytes()
    leaks = [p for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaks
    assert secret.encode() not in proc.stdout + proc.stderr
    assert checksums(tmp_path, skip=(out,)) == before


# --- a corrupt model file ---------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bit flip"])
def test_corrupt_model_is_reported_as_corrupt(toy_run, data, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(toy_run["run"], run)
    model = run / "model.keras"
    raw = model.read_bytes()
    if damage == "truncated":
        model.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        model.write_bytes(b"\x00not a zip archive\x00" * 20)
    else:
        flipped = bytearray(raw)
        flipped[len(raw) // 3] ^= 0xFF
        model.write_bytes(bytes(flipped))
    before = checksums(tmp_path)
    code, out, err = run_cli(capsys, "predict", run, data / "top.root", "--out", tmp_path / "out", "--quiet")
    assert code == 1
    assert f"cannot read model file {model}: not a valid Keras archive" in err and "re-train or restore" in err
    assert "not found" not in err
    assert checksums(tmp_path, skip=(tmp_path / "out",)) == before
    assert not list((tmp_path / "out").glob("*.root"))


def test_missing_model_stays_not_found(tmp_path):
    from hepnn.models import load_model

    with pytest.raises(InputDataError, match=r"model file not found: .*nothing\.keras"):
        load_model(tmp_path / "nothing.keras")


# --- symlinks out of a run directory (report) ----------------------------------------------------------


def _png(path: Path, colour: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.set_facecolor(colour)
    fig.savefig(path)
    plt.close(fig)
    return path


@pytest.mark.parametrize("file", ["model.keras", "history.csv", "config.yaml"])
def test_report_refuses_run_files_linked_out_of_the_run(toy_run, tmp_path, capsys, file):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    shutil.copytree(toy_run["run"], run)
    outside = tmp_path / "private" / file
    outside.parent.mkdir()
    shutil.copy(run / file, outside)
    (run / file).unlink()
    (run / file).symlink_to(outside)
    before = checksums(tmp_path, skip=(tmp_path / "report",))
    code, _, err = run_cli(capsys, "report", run, "--out", tmp_path / "report", "--no-progress")
    assert code == 1
    assert str(run / file) in err and str(outside) in err and "outside the run directory" in err
    assert checksums(tmp_path, skip=(tmp_path / "report",)) == before
    assert not (tmp_path / "report" / "index.html").exists()


def test_report_ignores_explanation_files_linked_out_of_the_run(toy_run, tmp_path):
    pytest.importorskip("matplotlib")
    from hepnn.plotting.report import make_report

    run = tmp_path / "run"
    shutil.copytree(toy_run["run"], run)
    private = tmp_path / "private"
    private.mkdir()
    secret_png = _png(private / "secret.png", "red")
    (private / "method").mkdir()
    _png(private / "method" / "other.png", "blue")
    method = run / "explain" / "permutation"
    method.mkdir(parents=True)
    _png(method / "ranking.png", "green")
    (method / "leak.png").symlink_to(secret_png)
    (run / "explain" / "linked").symlink_to(private / "method", target_is_directory=True)
    before = checksums(tmp_path, skip=(tmp_path / "report", run))  # (the report may add metrics.json to the run)
    out = make_report(run, out=tmp_path / "report", progress=False)
    copied = [p for p in out.rglob("*.png")]
    assert any(p.name == "ranking.png" for p in copied), "the file inside the run is shown"
    assert not any(p.name in ("leak.png", "other.png") for p in copied)
    secret = secret_png.read_bytes()
    assert not any(p.read_bytes() == secret for p in out.rglob("*") if p.is_file())
    notes = (out / "manifest.json").read_text()
    assert "leak.png" in notes and "outside the run directory" in notes
    assert checksums(tmp_path, skip=(tmp_path / "report", run)) == before

