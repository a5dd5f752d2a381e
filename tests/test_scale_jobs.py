"""Batch-job templates (hepnn.scale.render / `hepnn jobs`): filled in, valid shell, resources, resume on requeue.

The templates running on a real Slurm: tests/test_scale_slurm.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hepnn.cli import main
from hepnn.exceptions import ConfigError, HepnnError, UnknownNameError
from hepnn.scale import TEMPLATES, render
from hepnn.scale import jobs
from hepnn.scale.jobs import check, memory_mb, write

BASH = shutil.which("bash")
NODE = {"name": "n1", "partition": "debug", "default": True, "cpus": 2, "memory_mb": 4000, "gpus": 0,
        "features": ["avx2"], "state": "idle"}


def sbatch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#SBATCH")]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_valid_scripts(name, tmp_path):
    paths = write(name, tmp_path, config="cfg dir/top.yaml", out="runs/top", run_dir="runs/top",
                  files="data/*.root", nodes=3, partition="gpu", setup=["module load tensorflow"])
    assert [p.name for p in paths] == [TEMPLATES[name][0], *TEMPLATES[name][1]]
    for path in paths:
        text = path.read_text()
        assert "{{" not in text and "}}" not in text, path
        assert "\n\n\n" not in text
        if path.suffix == ".sh":
            assert os.access(path, os.X_OK)
            assert "module load tensorflow\n" in text
            if BASH:
                subprocess.run([BASH, "-n", str(path)], check=True)


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode", "slurm-predict"])
def test_defaults_schedule_on_a_small_node(name):
    lines = sbatch_lines(render(name))
    assert "#SBATCH --cpus-per-task=1" in lines
    assert not [line for line in lines if "gpu" in line], lines
    # memory: the site's default, except for the Dask workers of slurm-predict (2 GB each)
    assert [line for line in lines if "--mem" in line] == (["#SBATCH --mem=2G"] if name == "slurm-predict" else [])
    assert check(name if name != "slurm-multinode" else "slurm", available=[NODE]) == []


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode", "slurm-predict"])
def test_every_site_option_becomes_an_sbatch_line(name):
    text = render(name, cpus=6, mem="32G", gpus=2, partition="gpu", account="cms", constraint="a100",
                  extra=["--qos=long", "#SBATCH --mail-type=END"], time="1-00:00:00")
    lines = sbatch_lines(text)
    for line in ("--cpus-per-task=6", "--mem=32G", "--gpus-per-node=2", "--partition=gpu", "--account=cms",
                 "--constraint=a100", "--qos=long", "--mail-type=END", "--time=1-00:00:00"):
        assert f"#SBATCH {line}" in lines, line
    # sbatch reads #SBATCH lines only before the first command
    first_command = text.splitlines().index("set -uo pipefail")
    assert all(text.splitlines().index(line) < first_command for line in lines)


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode"])
def test_slurm_training_requeues_on_usr1_and_reruns_the_same_command(name):
    text = render(name, config="cfg dir/top.yaml", out="runs/top", nodes=4, gpus=2, time="1-00:00:00",
                  setup="source /opt/venv/bin/activate")
    assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:USR1@300" in text
    assert 'scontrol requeue "${SLURM_JOB_ID}"' in text and "trap requeue USR1" in text and "trap stop TERM" in text
    assert "CONFIG='cfg dir/top.yaml'" in text and "RUN_DIR=runs/top" in text   # shell-quoted paths
    assert 'hepnn train "$CONFIG" --out "$RUN_DIR"' in text                       # the resuming command
    assert text.index("source /opt/venv/bin/activate") < text.index("hepnn train \"$CONFIG\"")
    assert "#SBATCH --gpus-per-node=2" in text and "#SBATCH --time=1-00:00:00" in text
    if name == "slurm-multinode":
        assert "#SBATCH --nodes=4" in text and "#SBATCH --ntasks-per-node=1" in text and "srun " in text
        assert "#SBATCH --ntasks-per-node=2" in render(name, nodes=1, tasks_per_node=2)


def test_usr1_lead_time_fits_short_jobs():
    assert "#SBATCH --signal=B:USR1@150" in render("slurm", time="00:10:00")
    assert "#SBATCH --signal=B:USR1@120" in render("slurm-predict", time="02:00:00")


def test_htcondor_uses_the_checkpoint_exit_code(tmp_path):
    sub, wrapper = write("htcondor", tmp_path, config="top.yaml", out="runs/top", time="02:00:00",
                         setup="source venv/bin/activate")
    text = sub.read_text()
    assert "checkpoint_exit_code    = 85" in text and f"executable              = {wrapper}\n" in text
    assert "arguments               = \"'top.yaml' 'runs/top'\"" in text and "+MaxRuntime             = 7200" in text
    assert "request_cpus            = 1" in text and "request_gpus" not in text and "request_memory" not in text
    script = wrapper.read_text()
    assert 'hepnn train "$CONFIG" --out "$RUN_DIR"' in script and "CHECKPOINT_EXIT_CODE=85" in script
    assert script.index("source venv/bin/activate") < script.index("hepnn train \"$CONFIG\"")


def test_htcondor_submit_file_parses_with_the_bindings(tmp_path):
    htcondor = pytest.importorskip("htcondor2")
    sub, _ = write("htcondor", tmp_path, config="it's a \"cfg\".yaml", out="runs/top dir", cpus=4, mem="16G",
                   gpus=1, time="1-00:00:00", extra=['+JobFlavour = "workday"', "requirements = (OpSysMajorVer == 9)"])
    submit = htcondor.Submit(sub.read_text())
    values = dict(submit)
    assert values["request_cpus"] == "4" and values["request_memory"] == "16384" and values["request_gpus"] == "1"
    assert values["MY.MaxRuntime"] == "86400" and values["MY.JobFlavour"] == '"workday"'
    assert values["requirements"] == "(OpSysMajorVer == 9)" and values["checkpoint_exit_code"] == "85"
    assert values["executable"] == str(tmp_path / "htcondor_train.sh") and values["should_transfer_files"] == "NO"
    # new-style arguments: quotes doubled inside single-quoted words
    assert values["arguments"] == """"'it''s a ""cfg"".yaml' 'runs/top dir'\""""
    # the defaults: no GPU or memory request, one CPU
    small = dict(htcondor.Submit(render("htcondor")))
    assert small["request_cpus"] == "1" and "request_gpus" not in small and "request_memory" not in small
    with pytest.raises(ValueError):  # the parser does reject what is not a submit file
        htcondor.Submit("universe = vanilla\nthis is not a submit command\nqueue")


def test_predict_template_resumes_with_hepnn_predict():
    text = render("slurm-predict", run_dir="runs/top", files="data/a.root data/b*.root", out="scores", workers=8)
    assert 'hepnn predict --out="$OUT" --workers=8 -- "$RUN_DIR" data/a.root data/b*.root &' in text
    assert "#SBATCH --cpus-per-task=8" in text and "#SBATCH --requeue" in text
    assert "#SBATCH --cpus-per-task=2" in render("slurm-predict", workers=8, cpus=2)
    assert "#SBATCH --mem=16G" in text and "#SBATCH --mem=3G" in render("slurm-predict", workers=8, mem="3G")
    assert "OUT=scores" in render("slurm-predict")


def test_bad_values_say_what_to_give():
    with pytest.raises(UnknownNameError, match="did you mean 'slurm'"):
        render("slurmm")
    with pytest.raises(TypeError, match="unknown value"):
        render("slurm", confg="x.yaml")
    with pytest.raises(ConfigError, match=r"mem: expected a size such as 4G.*received 'lots'"):
        render("slurm", mem="lots")
    with pytest.raises(ConfigError, match=r"cpus: expected an integer >= 1, received 0"):
        render("slurm", cpus=0)
    with pytest.raises(ConfigError, match=r"time: expected a SLURM wall time.*received '4h'"):
        render("slurm", time="4h")
    assert memory_mb("4G") == 4096 and memory_mb("1500") == 1500 and memory_mb("2 GB") == 2048
    for given, written in (("16 GB", "16G"), ("1500", "1500"), ("1.5G", "1536M"), ("64g", "64G")):
        assert f"#SBATCH --mem={written}\n" in render("slurm", mem=given), given
    assert jobs._seconds("30") == 1800 and jobs._seconds("1-02") == 93600 and jobs._seconds("01:00:05") == 3605


def test_check_names_what_does_not_fit():
    assert check("slurm", available=[NODE], cpus=2, mem="3G", constraint="avx2") == []
    problems = check("slurm", available=[NODE], cpus=8, mem="8G", gpus=1, constraint="a100")
    assert problems == [
        "cpus-per-task=8: no node of partition debug has more than 2 CPUs (n1); ask for --cpus 2 or fewer",
        "mem=8G (8192 MB): no node of partition debug has more than 4000 MB (n1); ask for --mem 4000M or less",
        "gpus-per-node=1: the nodes of partition debug have no GPUs (no gpu GRES) (n1); use --gpus 0 or a GPU "
        "partition (--partition)",
        "constraint=a100: no node of partition debug has feature(s) ['a100']; features there: ['avx2']",
    ]
    multi = check("slurm-multinode", available=[NODE], nodes=2, tasks_per_node=2, cpus=2)
    assert multi[0].startswith("cpus-per-task=2 x 2 tasks per node:") and multi[0].endswith("--cpus 1 or fewer")
    assert multi[1] == "nodes=2: partition debug has 1 node(s) (n1)"
    assert check("slurm", available=[], partition="gpu") == [
        "sinfo lists no node in partition 'gpu'; check the name with `sinfo -s`"]


def test_read_sinfo_parses_nodes_and_gpus(monkeypatch):
    output = ("g1|gpu|64|512000|gpu:a100:4(S:0-1)|a100,ib|idle|1-00:00:00\n"
              "c1|cpu*|2|4000|(null)|(null)|mix|infinite\n")
    monkeypatch.setattr(jobs.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(jobs.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=output, stderr=""))
    (cpu,) = jobs.read_sinfo()
    assert cpu == {"name": "c1", "partition": "cpu", "default": True, "cpus": 2, "memory_mb": 4000, "gpus": 0,
                   "features": [], "state": "mix", "time_limit_s": None}
    (gpu,) = jobs.read_sinfo("gpu")
    assert gpu["gpus"] == 4 and gpu["features"] == ["a100", "ib"] and gpu["cpus"] == 64 and gpu["time_limit_s"] == 86400
    assert check("slurm", partition="gpu", gpus=4, cpus=16, mem="100G", constraint="a100") == []


def test_check_without_slurm_says_so(monkeypatch):
    monkeypatch.setattr(jobs.shutil, "which", lambda tool: None)
    with pytest.raises(HepnnError, match="sinfo not found"):
        jobs.read_sinfo()


def test_cli_jobs(tmp_path, capsys):
    assert main(["jobs", "slurm", "--config", "top.yaml", "--out", "runs/top", "--cpus", "4", "--mem", "8G",
                 "--gpus", "1", "--constraint", "a100", "--extra=--qos=long", "--setup", "module load cuda",
                 "--setup", "source venv/bin/activate"]) == 0
    text = capsys.readouterr().out
    for line in ("--cpus-per-task=4", "--mem=8G", "--gpus-per-node=1", "--constraint=a100", "--qos=long"):
        assert f"#SBATCH {line}" in text
    assert "module load cuda\nsource venv/bin/activate\n" in text
    assert main(["jobs", "htcondor", "--config", "top.yaml", "--out", "runs/top", "--write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["htcondor_train.sh", "htcondor_train.sub"]
    assert main(["jobs", "slurm", "--mem", "lots"]) == 2
    assert "mem: expected a size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["jobs", "pbs"])
    assert info.value.code == 2


def test_cli_check(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(jobs, "read_sinfo", lambda partition=None: [NODE])
    assert main(["jobs", "slurm", "--check", "--cpus", "8"]) == 1
    assert "hepnn: does not fit: cpus-per-task=8: no node of partition debug has more than 2 CPUs" in \
        capsys.readouterr().err
    assert main(["jobs", "slurm", "--check", "--cpus", "2", "--write", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "fit the nodes sinfo reports" in captured.err and "wrote" in captured.out
    assert main(["jobs", "htcondor", "--check"]) == 2
