"""Batch-job templates (hepnn.scale.render / `hepnn jobs`): filled in, valid shell, resume on requeue."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hepnn.cli import main
from hepnn.exceptions import UnknownNameError
from hepnn.scale import TEMPLATES, render
from hepnn.scale.jobs import write

BASH = shutil.which("bash")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_valid_scripts(name, tmp_path):
    paths = write(name, tmp_path, config="cfg dir/top.yaml", out="runs/top", run_dir="runs/top",
                  files="data/*.root", nodes=3, partition="gpu")
    assert [p.name for p in paths] == [TEMPLATES[name][0], *TEMPLATES[name][1]]
    for path in paths:
        text = path.read_text()
        assert "{{" not in text and "}}" not in text, path
        if path.suffix == ".sh":
            assert os.access(path, os.X_OK)
            if BASH:
                subprocess.run([BASH, "-n", str(path)], check=True)


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode"])
def test_slurm_training_requeues_and_reruns_the_same_command(name):
    text = render(name, config="cfg dir/top.yaml", out="runs/top", nodes=4, gpus=2, time="1-00:00:00")
    assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:USR1@" in text
    assert 'scontrol requeue "${SLURM_JOB_ID}"' in text and "trap requeue USR1 TERM" in text
    assert "CONFIG='cfg dir/top.yaml'" in text and "RUN_DIR=runs/top" in text   # shell-quoted paths
    assert 'hepnn train "$CONFIG" --out "$RUN_DIR"' in text                       # the resuming command
    assert "#SBATCH --gpus-per-node=2" in text and "#SBATCH --time=1-00:00:00" in text
    if name == "slurm-multinode":
        assert "#SBATCH --nodes=4" in text and "#SBATCH --ntasks-per-node=1" in text and "srun " in text


def test_htcondor_uses_the_checkpoint_exit_code(tmp_path):
    sub, wrapper = write("htcondor", tmp_path, config="top.yaml", out="runs/top", time="02:00:00")
    text = sub.read_text()
    assert "checkpoint_exit_code    = 85" in text and "executable              = htcondor_train.sh" in text
    assert "arguments               = \"'top.yaml' 'runs/top'\"" in text and "+MaxRuntime             = 7200" in text
    script = wrapper.read_text()
    assert 'hepnn train "$CONFIG" --out "$RUN_DIR"' in script and "CHECKPOINT_EXIT_CODE=85" in script


def test_predict_template_resumes_with_hepnn_predict():
    text = render("slurm-predict", run_dir="runs/top", files="data/a.root data/b*.root", out="scores", workers=8)
    assert 'hepnn predict "$RUN_DIR" data/a.root data/b*.root --out "$OUT" --workers 8' in text
    assert "#SBATCH --cpus-per-task=8" in text and "#SBATCH --requeue" in text


def test_unknown_template_and_values():
    with pytest.raises(UnknownNameError, match="did you mean 'slurm'"):
        render("slurmm")
    with pytest.raises(TypeError, match="unknown value"):
        render("slurm", confg="x.yaml")


def test_cli_jobs(tmp_path, capsys):
    assert main(["jobs", "slurm", "--config", "top.yaml", "--out", "runs/top"]) == 0
    assert "#SBATCH --requeue" in capsys.readouterr().out
    assert main(["jobs", "htcondor", "--config", "top.yaml", "--out", "runs/top", "--write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["htcondor_train.sh", "htcondor_train.sub"]
    with pytest.raises(SystemExit) as info:
        main(["jobs", "pbs"])
    assert info.value.code == 2
