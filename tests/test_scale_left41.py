"""Job templates (`hepnn jobs`): what the rendered scripts pass to hepnn, wall times, the HTCondor executable.

Each script is written with :func:`hepnn.scale.jobs.write`, run with bash and a fake ``hepnn`` (or
``srun``) that records its arguments, and those arguments are parsed with hepnn's own parser.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hepnn.cli import build_parser, main
from hepnn.exceptions import ConfigError
from hepnn.scale import TEMPLATES
from hepnn.scale.jobs import render, write

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the job scripts are bash scripts")

RECORDER = '#!/bin/bash\nprintf "%s\\0" "$@" > "$HEPNN_LEFT41_RECORD"\n'


def _project(tmp_path, monkeypatch, tool: str = "hepnn"):
    """A project folder (with a space in its name) holding a fake ``tool`` in bin/, entered as the cwd."""
    project = tmp_path / "my project"
    (project / "bin").mkdir(parents=True)
    fake = project / "bin" / tool
    fake.write_text(RECORDER)
    fake.chmod(0o755)
    monkeypatch.chdir(project)
    return project


def _run(script, args, tmp_path) -> list[str]:
    """Run ``script`` from another folder; the arguments the fake tool received."""
    record = tmp_path / "record.bin"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    done = subprocess.run(["bash", str(script.resolve()), *args], cwd=elsewhere, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HEPNN_LEFT41_RECORD": str(record)})
    assert done.returncode == 0, done.stderr
    return record.read_text().split("\0")[:-1]


def _condor_arguments(sub_text: str) -> list[str]:
    """The words of a new-syntax HTCondor ``arguments = "'a' 'b'"`` line ('' and "" stand for ' and ")."""
    line = next(x for x in sub_text.splitlines() if x.startswith("arguments"))
    value = line.split("=", 1)[1].strip()[1:-1]
    return [w.replace("''", "'").replace('""', '"') for w in re.findall(r"'((?:[^']|'')*)'", value)]


# --- 1. slurm-predict: file names that look like options -------------------------------------------


def test_predict_script_passes_files_starting_with_a_dash_as_files(tmp_path, monkeypatch):
    project = _project(tmp_path, monkeypatch)
    (project / "-g1.root").write_bytes(b"")  # a glob in the job's folder expands to a name starting with -
    (project / "-g2.root").write_bytes(b"")
    files = ["-a.root", "my data/b c.root", "it's $HOME \"q\".root", "--out", "-g*.root"]
    (script,) = write("slurm-predict", "jobs", run_dir="-run", files=files, out="-scores", workers=3,
                      setup=['export PATH="$PWD/bin:$PATH"'])
    argv = _run(script, [], tmp_path)
    assert argv[0] == "predict"
    args = build_parser().parse_args(argv)  # exited 2 before: "-a.root" was read as an option
    assert args.run_dir == "./-run" and args.out == "./-scores" and args.workers == 3
    assert args.files == ["./-a.root", "my data/b c.root", "it's $HOME \"q\".root", "./--out", "./-g1.root",
                          "./-g2.root"]


def test_predict_script_keeps_a_file_named_double_dash(tmp_path, monkeypatch):
    """Python's argparse (3.11) drops every ``--`` of the command line, also after the first, so
    a file named ``--`` (given or matched by a glob) is written ``./--``."""
    project = _project(tmp_path, monkeypatch)
    (project / "--").write_bytes(b"")
    (project / "-x").write_bytes(b"")
    (script,) = write("slurm-predict", "jobs", run_dir="run", files=["--", "-*", "a.root"], out="scores",
                      setup=['export PATH="$PWD/bin:$PATH"'])
    args = build_parser().parse_args(_run(script, [], tmp_path))
    assert args.files == ["./--", "./--", "./-x", "a.root"]  # before: ["--", "-x", "a.root"]: one file dropped


def test_predict_command_has_its_options_before_the_files():
    text = render("slurm-predict", run_dir="runs/top", files=["data/a.root", "data/b*.root"], out="scores", workers=8)
    assert 'hepnn predict --out="$OUT" --workers=8 -- "$RUN_DIR" data/a.root data/b*.root &' in text


def test_predict_without_input_files_is_refused(tmp_path):
    for files in ([], "", "  "):
        with pytest.raises(ConfigError, match=r"files: no input file given; give paths or globs"):
            render("slurm-predict", files=files)
    with pytest.raises(ConfigError, match="files: no input file given"):
        write("slurm-predict", tmp_path / "jobs", files=[])
    assert not (tmp_path / "jobs").exists()


# --- training templates: a config or run directory starting with a dash ----------------------------


@pytest.mark.parametrize("name", ["slurm", "slurm-multinode", "htcondor"])
def test_training_scripts_pass_paths_starting_with_a_dash_as_paths(name, tmp_path, monkeypatch):
    tool = "srun" if name == "slurm-multinode" else "hepnn"
    _project(tmp_path, monkeypatch, tool)
    paths = write(name, "jobs", config="-top.yaml", out="-runs/top", setup=['export PATH="$PWD/bin:$PATH"'])
    script = next(p for p in paths if p.suffix == ".sh")
    args = _condor_arguments(paths[0].read_text()) if name == "htcondor" else []
    argv = _run(script, args, tmp_path)
    if name == "slurm-multinode":  # srun --kill-on-bad-exit=1 hepnn train ...
        assert argv[:2] == ["--kill-on-bad-exit=1", "hepnn"]
        argv = argv[2:]
    parsed = build_parser().parse_args(argv)  # exited 2 before: "-top.yaml" was read as an option
    assert parsed.command == "train" and parsed.config == "./-top.yaml" and parsed.out == "./-runs/top"


# --- 2. a wall time of zero seconds ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("wall", ["0", "00:00:00", "0:00", "0-0", "0-00:00:00", " 00 "])
def test_zero_wall_time_is_refused(name, wall, tmp_path):
    with pytest.raises(ConfigError, match=rf"time: a wall time of zero seconds, received {re.escape(repr(wall))}; "
                                          r".*e\.g\. --time 04:00:00"):
        render(name, time=wall)
    with pytest.raises(ConfigError, match="time: a wall time of zero seconds"):
        write(name, tmp_path / "jobs", time=wall)
    assert not (tmp_path / "jobs").exists()


def test_zero_wall_time_on_the_command_line(tmp_path, capsys):
    assert main(["jobs", "htcondor", "--time", "00:00:00", "--write", str(tmp_path / "jobs")]) == 2
    err = capsys.readouterr().err
    assert "time: a wall time of zero seconds, received '00:00:00'" in err and "--time 04:00:00" in err
    assert not (tmp_path / "jobs").exists()
    assert main(["jobs", "slurm", "--time=-01:00:00"]) == 2
    assert "time: expected a SLURM wall time" in capsys.readouterr().err


def test_short_wall_times_are_kept():
    assert "+MaxRuntime             = 1\n" in render("htcondor", time="00:00:01")
    assert "+MaxRuntime             = 60\n" in render("htcondor", time="1")
    text = render("slurm", time=" 00:02:00 ")
    assert "#SBATCH --time=00:02:00\n" in text and "#SBATCH --signal=B:USR1@30\n" in text


# --- 3. the HTCondor executable, wherever condor_submit runs ----------------------------------------


def _executable(sub_text: str) -> str:
    (line,) = [x for x in sub_text.splitlines() if x.startswith("executable")]
    return line.split("=", 1)[1].strip()


def test_htcondor_executable_is_the_written_wrapper_from_any_folder(tmp_path, monkeypatch):
    project = tmp_path / "my project"
    project.mkdir()
    monkeypatch.chdir(project)
    sub, wrapper = write("htcondor", "jobs", config="c.yaml", out="runs/a")  # a relative --write folder
    executable = _executable(sub.read_text())
    assert os.path.isabs(executable)
    (tmp_path / "elsewhere").mkdir()
    for folder in (project, project / "jobs", tmp_path / "elsewhere", tmp_path):
        # condor_submit reads a relative executable from the folder it runs in (before: only jobs/ worked)
        assert os.path.samefile(os.path.join(folder, executable), wrapper), folder
    assert os.access(executable, os.X_OK)


def test_htcondor_executable_with_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["jobs", "htcondor", "--config", "c.yaml", "--write", "jobs"]) == 0
    written = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    sub = next(p for p in written if p.endswith(".sub"))
    wrapper = next(p for p in written if p.endswith(".sh"))
    assert _executable((tmp_path / sub).read_text()) == str(tmp_path / wrapper)
    # printed (not written): the wrapper's name, to be put beside the .sub by hand
    assert _executable(render("htcondor")) == "htcondor_train.sh"


def test_htcondor_folder_with_a_line_break_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="a line break in"):
        write("htcondor", tmp_path / "jobs\nqueue 100")
    assert not list(tmp_path.iterdir())


def test_htcondor_bindings_read_the_absolute_executable(tmp_path):
    htcondor = pytest.importorskip("htcondor2")
    sub, wrapper = write("htcondor", tmp_path / "my jobs", config="c.yaml")  # a space in the folder's name
    assert dict(htcondor.Submit(sub.read_text()))["executable"] == str(wrapper)


# --- a memory request of zero -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("mem", ["0", "0G", "0.0 GB", "0M"])
def test_zero_memory_is_refused(name, mem):
    # was `#SBATCH --mem=0` (SLURM: all of the node's memory) and `request_memory = 1` (1 MB) for HTCondor
    with pytest.raises(ConfigError, match=rf"mem: a memory request of zero, received {re.escape(repr(mem))}; "
                                          r"give the memory per node, e\.g\. --mem 8G"):
        render(name, mem=mem)


def test_zero_memory_on_the_command_line(capsys):
    assert main(["jobs", "htcondor", "--mem", "0"]) == 2
    assert "mem: a memory request of zero, received '0'" in capsys.readouterr().err
    assert "request_memory          = 1\n" in render("htcondor", mem="1M")  # small but not zero: kept


# --- `~` in quoted paths, line breaks in the files string --------------------------------------------


def test_home_folder_in_paths_is_expanded_when_written(tmp_path, monkeypatch):
    home = tmp_path / "home dir"
    (home / "data").mkdir(parents=True)
    (home / "data" / "a.root").write_bytes(b"")
    monkeypatch.setenv("HOME", str(home))
    # `--files "~/data/*.root"` (quoted, as for any glob): the job's shell does not expand a quoted ~
    text = render("slurm-predict", run_dir="~/runs/top", out="~/scores", files=["~/data/*.root"])
    assert f"RUN_DIR={shlex.quote(str(home / 'runs/top'))}\n" in text and f"OUT={shlex.quote(str(home / 'scores'))}\n" in text
    line = next(x for x in text.splitlines() if x.startswith("hepnn predict"))
    shown = subprocess.run(["bash", "-c", f"RUN_DIR=r; set -- {line.split(' -- ', 1)[1].rsplit('&', 1)[0]}; printf '%s\\n' \"$@\""],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown == ["r", str(home / "data" / "a.root")]  # the glob matched (was: '~/data/'*.root, no match)
    assert f"CONFIG={shlex.quote(str(home / 'top.yaml'))}\n" in render("slurm", config="~/top.yaml")
    assert f"\"'{home}/top.yaml' 'runs/a'\"" in render("htcondor", config="~/top.yaml", out="runs/a")


def test_files_string_with_a_line_break_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"files: a line break in 'a.root\\nrm -rf x'.*give the paths as a list"):
        render("slurm-predict", files="a.root\nrm -rf x")
    # one line of shell words: written as it is
    assert '-- "$RUN_DIR" data/a.root data/b*.root &\n' in render("slurm-predict", files="data/a.root data/b*.root")


# --- end to end: the rendered slurm-predict script scores files whose names start with - -------------


@pytest.mark.slow
def test_predict_script_scores_files_named_like_options(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    uproot = pytest.importorskip("uproot")
    import hepnn.io  # lazy: keras and the trainer only for this slow test
    from hepnn import Tagger
    from hepnn.training.trainer import Trainer
    from test_faults_scale import toy_config
    from test_io_fixtures import per_jet_data, write_top_qcd, write_tree

    project = _project(tmp_path, monkeypatch, "hepnn")
    config = toy_config(*write_top_qcd(tmp_path, 200))
    Trainer(config, log=lambda _: None).fit(project / "-run", data=hepnn.io.load(config))
    (project / "bin" / "hepnn").write_text(f'#!/bin/bash\nexec {shlex.quote(sys.executable)} -m hepnn "$@"\n')
    names = ["-a.root", "b c.root", "-g.root"]
    for k, name in enumerate(names):
        write_tree(project / name, "jets", per_jet_data(40 + 10 * k, seed=k, n_max=3))
    (script,) = write("slurm-predict", "jobs", run_dir="-run", out="-scores", workers=1,
                      files=["-a.root", "b c.root", "-g*.root"], setup=['export PATH="$PWD/bin:$PATH"'])
    package_root = os.path.dirname(os.path.dirname(hepnn.__file__))  # the job runs the hepnn under test
    env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(["bash", str(script.resolve())], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    tagger = Tagger.load(project / "-run")
    for name in names:
        friend = project / "-scores" / f"{name[:-5]}_scores.root"
        scores = uproot.open(friend)["jets"]["hepnn_score"].array(library="np")
        expected = np.asarray(tagger.predict_file(str(project / name), "jets"), dtype=np.float32)
        assert len(scores) == 40 + 10 * names.index(name)
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


# --- `$` in the HTCondor submit file ----------------------------------------------------------------


def test_dollar_in_htcondor_paths_is_not_a_macro(tmp_path):
    htcondor = pytest.importorskip("htcondor2")
    sub, wrapper = write("htcondor", tmp_path / "a$b $(FOO) jobs", config="cfg/$(Process).yaml", out="runs/$x$(y)$")
    submit = htcondor.Submit(sub.read_text())
    # condor_submit expands $(...) in values: $(Process) became 0 and $(FOO) nothing before
    assert submit.expand("executable") == str(wrapper)
    assert submit.expand("arguments") == "\"'cfg/$(Process).yaml' 'runs/$x$(y)$'\""
    with pytest.raises(ConfigError, match=r"out: '\$\$' in 'runs/\$\$\(x\)', which an HTCondor submit file cannot hold"):
        render("htcondor", out="runs/$$(x)")
    assert "'runs/$$(x)'" in render("slurm", out="runs/$$(x)")  # a shell script holds it, quoted
    assert _condor_arguments(render("htcondor", config="it's $HOME.yaml")) == ["it's $(DOLLAR)HOME.yaml", "runs/my_run"]


def test_an_extra_queue_line_for_htcondor_is_refused():
    # the submit file ends with `queue`: `--extra "queue 10"` submitted 11 jobs
    from hepnn.exceptions import ConfigError
    from hepnn.scale.jobs import render

    for line in ("queue 10", "Queue", "  queue  from list.txt"):
        with pytest.raises(ConfigError, match=r"--extra .*already ends with `queue`"):
            render("htcondor", extra=[line])
    assert "+JobFlavour" in render("htcondor", extra=['+JobFlavour = "workday"', "queue_notes = x"])
    assert "#SBATCH queue" not in render("slurm", extra=["--qos=queue"])  # SLURM lines are not submit commands


def test_write_expands_a_home_folder_given_from_python(tmp_path, monkeypatch):
    from hepnn.scale.jobs import write

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    paths = write("slurm", "~/jobs", config="top.yaml", out="runs/top")
    assert paths[0].parent == tmp_path / "home" / "jobs" and not (tmp_path / "~").exists()


def test_check_compares_the_wall_time_with_the_partitions_limit():
    # before: --check said nothing, and sbatch refused the job (or it stayed pending for ever)
    from hepnn.scale.jobs import check

    node = {"name": "n1", "partition": "short", "cpus": 4, "memory_mb": 8000, "gpus": 0, "features": [],
            "state": "idle", "time_limit_s": 2 * 3600}
    problems = check("slurm", available=[node], time="04:00:00")
    assert problems == ["time=04:00:00: partition short allows at most 02:00:00; ask for --time 02:00:00 or less "
                        "(the job resumes from its checkpoint when requeued) or another partition"]
    assert check("slurm", available=[node], time="01:30:00") == []
    assert check("slurm", available=[dict(node, time_limit_s=None)], time="30-00:00:00") == []  # infinite
    assert check("slurm", available=[{k: v for k, v in node.items() if k != "time_limit_s"}], time="9-00:00:00") == []


def test_read_sinfo_reads_the_time_limit(tmp_path, monkeypatch):
    from hepnn.scale.jobs import read_sinfo

    fake = tmp_path / "sinfo"
    fake.write_text("#!/bin/sh\nprintf 'n1|short*|4|8000|(null)|(null)|idle|2:00:00\\nn2|long|8|16000|gpu:a100:2|a100|idle|infinite\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    short, = read_sinfo()
    assert short["time_limit_s"] == 7200 and short["partition"] == "short"
    long, = read_sinfo("long")
    assert long["time_limit_s"] is None and long["gpus"] == 2
