"""Audit of hepnn.scale against brute-force references: every jet scored once, resume, templates, bad input.

A tiny per-jet run (dense on four jet variables) scores files of very different sizes (empty ones
included); the reference is always a single-process ``Tagger.predict_file``, row for row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

import hepnn  # noqa: E402
import hepnn.io  # noqa: E402
from hepnn import _faults  # noqa: E402
from hepnn.cli import main  # noqa: E402
from hepnn.exceptions import HepnnError, OutputDirError  # noqa: E402
from hepnn.scale import output_names, predict_files  # noqa: E402
from hepnn.scale import predict as scale_predict  # noqa: E402
from test_faults_scale import toy_config  # noqa: E402  (the same toy run: dense on four jet variables)
from test_io_fixtures import per_jet_data, write_top_qcd, write_tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: entries per input: empty files, one entry, a few, and files 100x bigger than others
SIZES = (0, 1, 7, 600, 0, 133)
STEP = 50


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A trained per-jet run and input files of the sizes in SIZES."""
    from hepnn.training.trainer import Trainer

    root = tmp_path_factory.mktemp("scale_audit")
    config = toy_config(*write_top_qcd(root, 200))
    Trainer(config, log=lambda _: None).fit(root / "run", data=hepnn.io.load(config))
    folder = root / "inputs"
    folder.mkdir()
    inputs = []
    for k, n in enumerate(SIZES):
        data = per_jet_data(max(n, 1), seed=40 + k, n_max=3)
        if n == 0:
            data = {name: column[:0] for name, column in data.items()}
        inputs.append(str(write_tree(folder / f"in{k}.root", "jets", data)))
    return {"run": str(root / "run"), "inputs": inputs, "root": root}


@pytest.fixture(scope="module")
def tagger(toy):
    return hepnn.Tagger.load(toy["run"])


def friend_scores(path, tree="jets"):
    return uproot.open(path)[tree]["hepnn_score"].array(library="np")


def reference(tagger, path, tree=None):
    return np.asarray(tagger.predict_file(path, tree, step_size=STEP), dtype=np.float32)


def checksums(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- every jet once, whatever the sizes -------------------------------------------------------


def test_friend_files_equal_predict_file_row_for_row(toy, tagger, tmp_path):
    result = predict_files(toy["run"], toy["inputs"], tmp_path / "out", step_size=STEP)
    assert sorted(result.written) == sorted(toy["inputs"]) and not result.failed
    for path, n in zip(toy["inputs"], SIZES):
        got = friend_scores(result[path])
        assert len(got) == n
        np.testing.assert_array_equal(got, reference(tagger, path))
        assert json.loads(result[path].with_suffix(".json").read_text())["n_entries"] == n


def test_predict_dask_equals_the_concatenated_files(toy, tagger):
    pytest.importorskip("dask_awkward")
    files = [*toy["inputs"], toy["inputs"][2]]  # a file listed twice is scored twice
    got = np.asarray(tagger.predict_dask(files, step_size=STEP).compute())
    expected = np.concatenate([reference(tagger, f) for f in files])
    assert len(got) == sum(SIZES) + SIZES[2]
    np.testing.assert_array_equal(got, expected)


def test_one_path_is_one_input_file(toy, tagger, tmp_path):
    big = toy["inputs"][3]
    result = predict_files(toy["run"], big, tmp_path)  # was read as the letters of the path
    assert list(result.written) == [big]
    np.testing.assert_array_equal(friend_scores(result[big]), reference(tagger, big))
    assert predict_files(toy["run"], Path(big), tmp_path).summary() == \
        "1 file(s): 0 written, 1 skipped (already done), 0 failed"


def test_a_file_spelled_twice_is_scored_once(toy, tagger, tmp_path, monkeypatch):
    folder = Path(toy["inputs"][2]).parent
    monkeypatch.chdir(folder)
    spellings = ["in2.root", "./in2.root", str(folder / "in2.root"), "in5.root"]
    result = predict_files(toy["run"], spellings, tmp_path)  # was: "also the output of input ..."
    assert sorted(result.written) == ["in2.root", "in5.root"]
    assert sorted(p.name for p in tmp_path.glob("*.root")) == ["in2_scores.root", "in5_scores.root"]
    np.testing.assert_array_equal(friend_scores(tmp_path / "in2_scores.root"), reference(tagger, toy["inputs"][2]))


# --- resume -------------------------------------------------------------------------------------


def test_rerun_with_another_tree_rescores(toy, tagger, tmp_path):
    path = tmp_path / "two.root"
    a, b = per_jet_data(30, seed=1, n_max=3), per_jet_data(45, seed=2, n_max=3)
    with uproot.recreate(path) as f:
        for name, data in (("jets", a), ("other", b)):
            f.mktree(name, {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()},
                     field_name=lambda outer, inner: f"{outer}_{inner}")
            f[name].extend(data)
    out = tmp_path / "out"
    predict_files(toy["run"], [path], out, tree="other", step_size=STEP)
    np.testing.assert_array_equal(friend_scores(out / "two_scores.root", "other"), reference(tagger, path, "other"))
    again = predict_files(toy["run"], [path], out, step_size=STEP)   # the default tree: jets
    assert list(again.written) == [str(path)], again.summary()      # was skipped, keeping the other tree
    assert [k.split(";")[0] for k in uproot.open(out / "two_scores.root").keys()] == ["jets"]
    np.testing.assert_array_equal(friend_scores(out / "two_scores.root"), reference(tagger, path))
    assert list(predict_files(toy["run"], [path], out).skipped) == [str(path)]
    assert list(predict_files(toy["run"], [path], out, tree="jets").written) == [str(path)]
    assert list(predict_files(toy["run"], [path], out, tree="jets").skipped) == [str(path)]


def test_output_without_its_sidecar_is_redone_alone(toy, tagger, tmp_path, monkeypatch):
    inputs = [toy["inputs"][k] for k in (1, 3, 5)]
    crashed = []

    def crash(point, info):
        if point == "predict-output" and info["input"].endswith("in3.root") and not crashed:
            crashed.append(info["output"])
            raise RuntimeError("crash between the friend file and its sidecar")

    monkeypatch.setattr(_faults, "HOOK", crash)
    first = predict_files(toy["run"], inputs, tmp_path, step_size=STEP, raise_on_error=False)
    assert list(first.failed) == [inputs[1]] and Path(crashed[0]).is_file()
    assert not Path(crashed[0]).with_suffix(".json").exists()
    monkeypatch.setattr(_faults, "HOOK", None)
    second = predict_files(toy["run"], inputs, tmp_path, step_size=STEP)
    assert list(second.written) == [inputs[1]] and sorted(second.skipped) == sorted([inputs[0], inputs[2]])
    for path in inputs:
        np.testing.assert_array_equal(friend_scores(second[path]), reference(tagger, path))


@pytest.mark.slow  # a subprocess with TensorFlow; test_output_without_its_sidecar_is_redone_alone covers resume quickly
def test_killed_mid_file_leaves_no_final_output_and_rerun_completes(toy, tagger, tmp_path):
    inputs = [toy["inputs"][k] for k in (5, 3, 2)]  # 133, 600, 7 entries: chunks of 50
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TF_CPP_MIN_LOG_LEVEL": "2", "HEPNN_FAULT_AT": "predict-chunk:6"}  # 3 chunks of in5, then 3 of in3
    args = [sys.executable, "-m", "hepnn", "predict", toy["run"], *inputs, "--out", str(out),
            "--step-size", str(STEP), "--quiet"]
    killed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr
    names = output_names(inputs)
    assert (out / names[inputs[0]]).is_file() and (out / names[inputs[0]]).with_suffix(".json").is_file()
    assert not (out / names[inputs[1]]).exists() and not (out / names[inputs[2]]).exists()
    assert [p.name for p in out.iterdir() if ".part" in p.name], "the half-written file has a temporary name"
    done = (out / names[inputs[0]]).stat().st_mtime_ns
    rerun = predict_files(toy["run"], inputs, out, step_size=STEP)
    assert sorted(rerun.written) == sorted(inputs[1:]) and list(rerun.skipped) == [inputs[0]]
    assert (out / names[inputs[0]]).stat().st_mtime_ns == done
    assert not [p.name for p in out.iterdir() if ".part" in p.name]
    for path in inputs:
        np.testing.assert_array_equal(friend_scores(rerun[path]), reference(tagger, path))


# --- bad input -------------------------------------------------------------------------------------


def test_scores_of_another_run_are_not_replaced(toy, tmp_path):
    other = tmp_path / "other_run"
    shutil.copytree(toy["run"], other)
    with open(other / "config.yaml", "a") as handle:
        handle.write("# another run: another checksum\n")
    inputs = [toy["inputs"][1], toy["inputs"][2]]
    out = tmp_path / "out"
    predict_files(toy["run"], inputs, out)
    before = checksums(out)
    with pytest.raises(OutputDirError, match=r"in1_scores\.root: holds the scores of another run, .*--force") as info:
        predict_files(other, inputs, out)
    assert toy["run"] in str(info.value)
    assert checksums(out) == before
    code = main(["predict", str(other), *inputs, "--out", str(out), "--quiet"])
    assert code == 2 and checksums(out) == before
    assert len(predict_files(other, inputs, out, force=True).written) == 2
    # the same run retrained (same folder, new checksum) is redone, and a copy of a run is that run
    retrained = tmp_path / "retrained"
    shutil.copytree(toy["run"], retrained)
    predict_files(retrained, inputs, tmp_path / "own")
    with open(retrained / "config.yaml", "a") as handle:
        handle.write("# retrained\n")
    assert len(predict_files(retrained, inputs, tmp_path / "own").written) == 2
    link = tmp_path / "link_to_retrained"  # the same run through a link, retrained again
    link.symlink_to(retrained)
    with open(retrained / "config.yaml", "a") as handle:
        handle.write("# retrained again\n")
    assert len(predict_files(link, inputs, tmp_path / "own").written) == 2
    assert len(predict_files(other, inputs, tmp_path / "own2").written) == 2
    copy = tmp_path / "copy_of_other"
    shutil.copytree(other, copy)
    assert len(predict_files(copy, inputs, tmp_path / "own2").skipped) == 2


def test_unloadable_run_is_one_error_before_any_input(toy, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(toy["run"], broken)
    (broken / "config.yaml").unlink()
    inputs = [toy["inputs"][k] for k in (1, 2, 5)]
    with pytest.raises(HepnnError, match=r"broken: not a trained run directory \(config.yaml missing"):
        predict_files(broken, inputs, tmp_path / "out", raise_on_error=False)
    code = main(["predict", str(broken), *inputs, "--out", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("config.yaml missing") == 1, err  # was once per input, as a failed file
    assert not list(tmp_path.glob("out*/*.root"))


def test_unloadable_run_is_one_error_with_dask_workers_too(toy, tmp_path, monkeypatch):
    # with --workers / --scheduler every file's task failed with the same load error, once per input
    distributed = pytest.importorskip("distributed")
    broken = tmp_path / "broken"
    shutil.copytree(toy["run"], broken)
    (broken / "config.yaml").unlink()
    scored = []
    client = distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None)
    try:
        monkeypatch.setattr(scale_predict, "_connect", lambda *a, **k: (client, lambda: None))
        monkeypatch.setattr(scale_predict, "score_file", lambda *a, **k: scored.append(a))
        with pytest.raises(HepnnError, match=r"broken: not a trained run directory \(config.yaml missing"):
            predict_files(broken, [toy["inputs"][k] for k in (1, 2, 5)], tmp_path / "out", workers=1,
                          raise_on_error=False)
    finally:
        client.close()
    assert scored == [] and not list(tmp_path.glob("out/*.root"))


def test_local_cluster_threads_follow_the_cpus_of_the_job(toy, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    def fake_score_file(run_dir, path, out_path, fingerprint, **options):
        Path(out_path + ".threads").write_text(str(options["tf_threads"]))  # the task may run on a copy
        return {"status": "written", "input": path, "output": out_path, "pid": os.getpid(), "seconds": 0.0}

    client = distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None)
    try:
        monkeypatch.setattr(scale_predict, "_connect", lambda *a, **k: (client, lambda: None))
        monkeypatch.setattr(scale_predict, "score_file", fake_score_file)
        monkeypatch.setattr(scale_predict, "tagger_loads", lambda *a, **k: True)
        monkeypatch.setattr(os, "cpu_count", lambda: 64)               # the node
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)  # the job
        predict_files(toy["run"], toy["inputs"][:2], tmp_path, workers=2)
    finally:
        client.close()
    seen = [int(p.read_text()) for p in sorted(tmp_path.glob("*.threads"))]
    assert seen == [2, 2]  # 4 CPUs of the job / 2 workers; was 64 / 2 = 32 threads each


# --- job templates and the command line -----------------------------------------------------------


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode", "slurm-predict", "htcondor"])
def test_setup_lines_run_without_set_u(name, tmp_path):
    from hepnn.scale.jobs import write

    setup = ['[ -z "$HEPNN_AUDIT_UNSET" ] && echo "setup ran"', "echo 'still here'"]  # as conda and Lmod do
    script = next(p for p in write(name, tmp_path, setup=setup) if p.suffix == ".sh")
    text = script.read_text()
    end = next(marker for marker in ("CHECKPOINT_EXIT_CODE=", "CONFIG=", "RUN_DIR=") if marker in text)
    head = text[: text.index(end)]
    env = {k: v for k, v in os.environ.items() if k != "HEPNN_AUDIT_UNSET"}
    done = subprocess.run(["bash", "-c", head + 'echo "after: ${HEPNN_AUDIT_UNSET_TOO:-unset}"; echo "$UNSET_X"',
                           "job", "c.yaml", "runs/a"], env=env, capture_output=True, text=True)
    assert done.stdout.splitlines() == ["setup ran", "still here", "after: unset"], done.stderr
    assert "UNSET_X: unbound variable" in done.stderr  # set -u is back on for the script itself
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize(("args", "unused", "hint"), [
    (["slurm", "--nodes", "4"], "--nodes", "--nodes is for slurm-multinode"),
    (["htcondor", "--partition", "gpu", "--account", "cms"], "--partition, --account", "--extra"),
    (["slurm-predict", "--config", "c.yaml"], "--config", "--config is for htcondor, slurm, slurm-multinode"),
    (["slurm", "--files", "a.root"], "--files", "--files is for slurm-predict"),
    (["slurm-multinode", "--workers", "4"], "--workers", "--workers is for slurm-predict"),
])
def test_jobs_refuses_options_the_template_would_ignore(args, unused, hint, capsys):
    assert main(["jobs", *args]) == 2
    err = capsys.readouterr().err
    assert f"hepnn jobs {args[0]}: {unused} not used by this template" in err and hint in err, err
    assert not capsys.readouterr().out


def test_jobs_accepts_every_option_of_each_template(tmp_path, capsys):
    from hepnn.scale.jobs import OPTIONS

    given = {"config": "c.yaml", "out": "o", "run_dir": "r", "files": "a.root", "nodes": "2", "tasks_per_node": "1",
             "workers": "2", "cpus": "2", "mem": "4G", "gpus": "1", "time": "01:00:00", "extra": "--qos=x",
             "setup": "true", "partition": "p", "account": "a", "constraint": "c"}
    for name, keys in OPTIONS.items():
        argv = [f"--{k.replace('_', '-')}={given[k]}" for k in keys]
        assert main(["jobs", name, *argv]) == 0, capsys.readouterr().err
        text = capsys.readouterr().out
        assert "{{" not in text and ("true\n" in text) == (name != "htcondor")  # htcondor: in the wrapper


def test_every_command_line_option_is_documented():
    import argparse
    import re

    from hepnn.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    doc = (ROOT / "docs" / "scale-out.md").read_text()
    documented = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", doc))
    for command in ("predict", "jobs"):
        options = {o for a in sub.choices[command]._actions for o in a.option_strings
                   if o.startswith("--") and o not in ("--help", "--debug")}
        assert sorted(options - documented) == [], command


def test_retries_must_not_be_negative(toy, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", toy["run"], toy["inputs"][1], "--out", str(tmp_path), "--retries", "-1"])
    assert info.value.code == 2 and "--retries: expected an integer >= 0" in capsys.readouterr().err
    assert not tmp_path.joinpath("in1_scores.root").exists()


def test_local_workers_share_the_gpus(monkeypatch):
    distributed = pytest.importorskip("distributed")
    made = {}

    class FakeCluster:
        def __init__(self, **kwargs):
            made.update(kwargs)

        def close(self):
            made["closed"] = True

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", lambda cluster: type("C", (), {"close": lambda self: None})())
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    _, close = scale_predict._connect(2, None, None)
    close()
    assert made["env"] == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"} and made["n_workers"] == 2 and made["closed"]
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")  # the user's setting wins
    scale_predict._connect(1, None, None)
    assert made["env"] == {"TF_FORCE_GPU_ALLOW_GROWTH": "false"}


def test_missing_inputs_name_the_path_and_the_likely_cause(toy, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    code = main(["predict", toy["run"], str(folder / "*.root"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and f"input file(s) not found: {folder}/*.root" in err
    assert "a pattern that matched no file reaches hepnn as written" in err
    code = main(["predict", toy["run"], str(folder), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and f"{folder} is a folder: give the files in it, e.g. {folder}/*.root" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "values", "message"), [
    ("slurm", {"partition": "gpu\nrm -rf $HOME"}, "partition: expected one word without spaces or line breaks"),
    ("slurm-predict", {"account": "cms ml"}, "account: expected one word"),
    ("slurm-multinode", {"constraint": "a100\n#SBATCH --exclusive"}, "constraint: expected one word"),
    ("htcondor", {"out": "runs/a\nqueue 100"}, "out: a line break in"),
])
def test_values_that_would_add_script_lines_are_refused(name, values, message, tmp_path):
    from hepnn.exceptions import ConfigError
    from hepnn.scale.jobs import render, write

    with pytest.raises(ConfigError, match=message):
        render(name, **values)
    with pytest.raises(ConfigError, match=message):
        write(name, tmp_path, **values)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["slurm", "htcondor"])
def test_write_keeps_job_files_edited_by_hand(name, tmp_path, capsys):
    from hepnn.scale import TEMPLATES

    folder = tmp_path / "jobs"
    base = ["jobs", name, "--config", "c.yaml", "--out", "runs/a", "--write", str(folder)]
    assert main(base) == 0
    main_file = folder / TEMPLATES[name][0]
    assert main([*base, "--mem", "8G"]) == 0  # an unedited file of hepnn's is replaced
    assert "8G" in main_file.read_text() or "8192" in main_file.read_text()
    edited = main_file.read_text().replace("#", "# my site's note\n#", 1)
    main_file.write_text(edited)
    capsys.readouterr()
    assert main([*base, "--mem", "16G"]) == 2
    err = capsys.readouterr().err
    assert f"{main_file}: exists and was edited since `hepnn jobs` wrote it" in err and "--force" in err
    assert main_file.read_text() == edited
    assert main([*base, "--mem", "16G", "--force"]) == 0 and "16" in main_file.read_text()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / TEMPLATES[name][0]).write_text("#!/bin/bash\necho my own job\n")
    assert main(["jobs", name, "--config", "c.yaml", "--write", str(mine)]) == 2
    assert (mine / TEMPLATES[name][0]).read_text() == "#!/bin/bash\necho my own job\n"
    assert sorted(p.name for p in mine.iterdir()) == [TEMPLATES[name][0]]  # nothing written beside it


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode", "slurm-predict", "htcondor"])
def test_relative_paths_are_those_of_the_folder_hepnn_jobs_ran_in(name, tmp_path, monkeypatch):
    from hepnn.scale.jobs import write

    project = tmp_path / "my project"
    (project / "bin").mkdir(parents=True)
    fake = project / "bin" / ("srun" if name == "slurm-multinode" else "hepnn")
    fake.write_text('#!/bin/bash\n{ pwd; printf "%s\\n" "$@"; } > "$HEPNN_AUDIT_RECORD"\n')
    fake.chmod(0o755)
    monkeypatch.chdir(project)
    # as in the docs: relative paths, written into jobs/, submitted from there (`cd jobs && sbatch ...`)
    paths = write(name, "jobs", config="cfg/top.yaml", out="runs/top", run_dir="runs/top", files=["data/a.root"],
                  setup=["export PATH=bin:$PATH"])
    script = next(p for p in paths if p.suffix == ".sh")
    record = tmp_path / "record.txt"
    args = ["cfg/top.yaml", "runs/top"] if name == "htcondor" else []  # HTCondor passes them as arguments
    done = subprocess.run(["bash", script.name, *args], cwd=project / "jobs", capture_output=True, text=True,
                          env={**os.environ, "HEPNN_AUDIT_RECORD": str(record)}, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = record.read_text().splitlines()
    assert lines[0] == str(project)  # was the jobs folder: cfg/top.yaml not found there
    assert "cfg/top.yaml" in lines or "data/a.root" in lines
