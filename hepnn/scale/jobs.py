"""Batch-job templates: SLURM (one node, several nodes, prediction) and HTCondor.

Every training template reruns the same ``hepnn train CONFIG --out RUN_DIR`` when the
job is preempted or reaches its time limit (SLURM ``--requeue`` with a ``USR1`` trap;
HTCondor ``checkpoint_exit_code``), and ``hepnn train`` on an existing run directory
resumes from its checkpoint. The prediction template reruns ``hepnn predict``, which
skips files already scored.

The defaults schedule on a small node (1 CPU per task, no GPU, the site's default
memory); :func:`check` compares what a job asks for with the nodes ``sinfo`` reports.

Examples
--------
>>> from hepnn.scale import render
>>> text = render("slurm", config="top.yaml", out="runs/top")
>>> "CONFIG=top.yaml" in text and 'hepnn train "$CONFIG" --out "$RUN_DIR"' in text
True
>>> "--gpus" in text, "#SBATCH --cpus-per-task=1" in text
(False, True)
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from .._fileio import atomic_write_text
from ..exceptions import ConfigError, HepnnError, OutputDirError, UnknownNameError

__all__ = ["TEMPLATES", "OPTIONS", "render", "write", "check", "read_sinfo", "unused_options"]

#: template name -> (main file, extra files written beside it)
TEMPLATES = {
    "slurm": ("slurm_train.sh", ()),
    "slurm-multinode": ("slurm_multinode_train.sh", ()),
    "htcondor": ("htcondor_train.sub", ("htcondor_train.sh",)),
    "slurm-predict": ("slurm_predict.sh", ()),
}

_DEFAULTS = {
    "config": "config.yaml", "out": "runs/my_run", "run_dir": "runs/my_run", "files": "data/*.root",
    "nodes": 2, "tasks_per_node": 1, "gpus": 0, "cpus": None, "mem": None, "workers": 1, "time": "04:00:00",
    "partition": None, "account": None, "constraint": None, "extra": (), "setup": "", "workdir": None,
}
_SITE = ("cpus", "mem", "gpus", "time", "extra", "setup")
#: template name -> the values it uses (the others are ignored by :func:`render`, refused by ``hepnn jobs``)
OPTIONS = {
    "slurm": ("config", "out", *_SITE, "partition", "account", "constraint"),
    "slurm-multinode": ("config", "out", "nodes", "tasks_per_node", *_SITE, "partition", "account", "constraint"),
    "htcondor": ("config", "out", *_SITE),
    "slurm-predict": ("run_dir", "files", "out", "workers", *_SITE, "partition", "account", "constraint"),
}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_UNQUOTED = {"files", "sbatch_lines", "condor_lines", "setup", "script", "seconds", "signal_seconds", "nodes",
             "tasks_per_node", "cpus", "gpus", "workers", "time"}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_GLOB = re.compile(r"(\*|\?|\[[^\]/]*\])")


def _template_text(filename: str) -> str:
    return resources.files("hepnn.scale").joinpath("templates", filename).read_text()


def _seconds(wall: str) -> int:
    """SLURM wall time (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in seconds, at least 1."""
    match = _TIME.match(str(wall).strip())
    if not match:
        msg = f"time: expected a SLURM wall time such as 04:00:00 or 1-00:00:00, received {wall!r}"
        raise ConfigError(msg)
    days, a, b, c = match.groups()
    fields = [int(x) for x in (a, b, c) if x is not None]
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        fields += [0] * (3 - len(fields))
        seconds = int(days) * 86400 + fields[0] * 3600 + fields[1] * 60 + fields[2]
    elif len(fields) == 1:  # minutes
        seconds = fields[0] * 60
    elif len(fields) == 2:  # minutes:seconds
        seconds = fields[0] * 60 + fields[1]
    else:
        seconds = fields[0] * 3600 + fields[1] * 60 + fields[2]
    if seconds <= 0:
        # SLURM reads --time=0 as "no limit"; HTCondor's +MaxRuntime = 0 ends the job at once or never
        msg = (f"time: a wall time of zero seconds, received {wall!r}; give how long the job may run, "
               "e.g. --time 04:00:00 (4 hours) or --time 1-00:00:00 (1 day)")
        raise ConfigError(msg)
    return seconds


def memory_mb(value) -> int:
    """Memory in MB from ``4G``, ``4000M``, ``16 GB``, ``512`` (MB, as SLURM reads a bare number).

    Examples
    --------
    >>> memory_mb("4G"), memory_mb("1500"), memory_mb("2 GB")
    (4096, 1500, 2048)
    """
    match = _MEMORY.match(str(value))
    if not match:
        msg = f"mem: expected a size such as 4G, 4000M or 16GB, received {value!r}"
        raise ConfigError(msg)
    number, unit = float(match.group(1)), match.group(2).upper()
    if number == 0:  # SLURM reads --mem=0 as "all of the node's memory", HTCondor got request_memory = 1 (MB)
        msg = (f"mem: a memory request of zero, received {value!r}; give the memory per node, e.g. --mem 8G, "
               "or leave --mem out for the site's default")
        raise ConfigError(msg)
    factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[unit]
    return max(1, round(number * factor))


def _slurm_memory(value) -> str:
    """``--mem`` as SLURM spells it: ``16 GB`` -> ``16G``; fractions in MB (``1.5G`` -> ``1536M``)."""
    number, unit = _MEMORY.match(str(value)).groups()
    if float(number).is_integer():
        return f"{int(float(number))}{unit.upper()}"
    return f"{memory_mb(value)}M"


def _count(name: str, value, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum or str(number) != str(value).strip():
        msg = f"{name}: expected an integer >= {minimum}, received {value!r}"
        raise ConfigError(msg)
    return number


def _lines(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.splitlines()
    return [str(line).strip() for line in value if str(line).strip()]


def _shell_path(path) -> str:
    """``path`` as one shell word: quoted (spaces, ``$``, quotes), its glob characters left to the shell.

    Examples
    --------
    >>> _shell_path("my data/*.root")
    "'my data/'*.root"
    """
    return "".join(part if _GLOB.fullmatch(part) else shlex.quote(part)
                   for part in _GLOB.split(str(path)) if part) or "''"


def _one_line(key: str, value, why: str) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        msg = f"{key}: a line break in {text!r}; {why}: rename the path, or link it from a path without one"
        raise ConfigError(msg)
    return text


def _not_an_option(value) -> str:
    """A path as one argument that no parser reads as an option: ``-x.yaml`` -> ``./-x.yaml`` (the same file).

    ``~`` is expanded here: the script quotes the path, so the job's shell would not.

    Examples
    --------
    >>> _not_an_option("-top.yaml"), _not_an_option("runs/top")
    ('./-top.yaml', 'runs/top')
    """
    text = os.path.expanduser(str(value))
    return "./" + text if text.startswith("-") else text


def _condor_literal(key: str, value) -> str:
    """``value`` as HTCondor reads it back: each ``$`` written ``$(DOLLAR)`` (``$(Process)`` is a macro there).

    Examples
    --------
    >>> _condor_literal("out", "runs/$(Process)")
    'runs/$(DOLLAR)(Process)'
    """
    text = str(value)
    if "$$" in text:  # $(DOLLAR)$(DOLLAR) reads back as $$(DOLLAR), a macro of the machine the job matches
        msg = (f"{key}: '$$' in {text!r}, which an HTCondor submit file cannot hold ($$(...) is a macro there); "
               "rename the path, or link it from a path without '$$'")
        raise ConfigError(msg)
    return text.replace("$", "$(DOLLAR)")


def _condor_arguments(merged: dict) -> str:
    """``config`` and ``out`` in HTCondor's new argument syntax: each in single quotes, ' and " doubled inside."""
    words = []
    for key in ("config", "out"):
        text = _condor_literal(key, _one_line(key, merged[key], "an HTCondor submit file cannot hold it"))
        words.append("'" + text.replace("'", "''").replace('"', '""') + "'")
    return " ".join(words)


def _one_word(key: str, value) -> str:
    """A SLURM ``--partition`` / ``--account`` / ``--constraint`` value: one word on one ``#SBATCH`` line."""
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        example = {"partition": "gpu,gpu-long", "account": "cms-ml", "constraint": "a100&ib"}[key]
        msg = (f"{key}: expected one word without spaces or line breaks (it becomes `#SBATCH --{key}=...`), "
               f"received {value!r}; several are written without spaces, e.g. {example}")
        raise ConfigError(msg)
    return text


def _files(files, required: bool) -> str:
    """The input files as shell words: a list of paths or globs, each quoted but for its glob characters
    (``~`` expanded here, as the shell does not expand it in quotes; one starting with ``-`` written
    ``./-...``, so that a file named ``--``, which Python's argparse drops even after ``--``, stays a
    file), or one string written as it is.
    """
    if isinstance(files, str) and ("\n" in files or "\r" in files):
        msg = (f"files: a line break in {files!r}, which is written into the `hepnn predict` line as it is; "
               "give the paths as a list (each quoted for the shell), e.g. files=['data/a.root', 'data/b*.root']")
        raise ConfigError(msg)
    words = files if isinstance(files, str) else " ".join(_shell_path(_not_an_option(f)) for f in files)
    if required and not words.strip():
        msg = "files: no input file given; give paths or globs, e.g. --files 'data/*.root'"
        raise ConfigError(msg)
    return words


def _values(name: str, values: dict) -> dict:
    unknown = sorted(set(values) - set(_DEFAULTS))
    if unknown:
        msg = f"render({name!r}): unknown value(s) {unknown}; valid: {sorted(_DEFAULTS)}"
        raise TypeError(msg)
    predict = name == "slurm-predict"
    defaults = {**_DEFAULTS, "out": "scores"} if predict else _DEFAULTS
    merged = {**defaults, **{k: v for k, v in values.items() if v is not None}}
    for key in ("config", "out", "run_dir"):  # `hepnn train -top.yaml` would read an option
        merged[key] = _not_an_option(merged[key])
    merged["files"] = _files(merged["files"], required=predict)
    merged["workers"] = _count("workers", merged["workers"], 1)
    if merged["cpus"] is None:
        merged["cpus"] = merged["workers"] if predict else 1
    for key, minimum in (("nodes", 1), ("tasks_per_node", 1), ("gpus", 0), ("cpus", 1)):
        merged[key] = _count(key.replace("_", "-"), merged[key], minimum)
    if predict and merged["mem"] is None:
        # Dask divides the job's memory among its workers (it reads SLURM's limit) and restarts a
        # worker near its share: the site's default (often 1-2 GB per CPU) kills TensorFlow workers
        merged["mem"] = f"{2 * merged['workers']}G"
    if merged["mem"] is not None:
        memory_mb(merged["mem"])  # checked here, written as given (SLURM) or in MB (HTCondor)
    # the job runs in the folder it is submitted from (`cd jobs && sbatch ...`): relative paths are
    # those of the folder hepnn jobs ran in
    merged["workdir"] = os.path.abspath(merged["workdir"] if merged["workdir"] is not None else os.getcwd())
    merged["seconds"] = _seconds(merged["time"])
    merged["time"] = str(merged["time"]).strip()
    # USR1 comes this long before the time limit (a quarter of short jobs)
    merged["signal_seconds"] = max(1, min(120 if predict else 300, merged["seconds"] // 4))
    merged["script"] = TEMPLATES[name][0]
    # HTCondor reads a relative executable from the folder condor_submit runs in: write() makes it absolute
    merged["executable"] = "htcondor_train.sh"
    setup = _lines(merged["setup"])
    # without `set -u`: conda's and some module systems' scripts read variables that may be unset
    merged["setup"] = "\n".join(["# environment set-up (without set -u)", "set +u", *setup, "set -u"]) + "\n" \
        if setup else ""
    extra = _lines(merged["extra"])

    sbatch = []
    if merged["gpus"]:
        sbatch.append(f"#SBATCH --gpus-per-node={merged['gpus']}")
    if merged["mem"] is not None:
        sbatch.append(f"#SBATCH --mem={_slurm_memory(merged['mem'])}")
    for key in ("partition", "account", "constraint"):
        if merged[key]:
            sbatch.append(f"#SBATCH --{key}={_one_word(key, merged[key])}")
    sbatch += [line if line.startswith("#SBATCH") else f"#SBATCH {line}" for line in extra]
    merged["sbatch_lines"] = "\n".join(sbatch)

    merged["condor_arguments"] = _condor_arguments(merged) if name == "htcondor" else ""
    condor = []
    if merged["gpus"]:
        condor.append(f"request_gpus            = {merged['gpus']}")
    if merged["mem"] is not None:
        condor.append(f"request_memory          = {memory_mb(merged['mem'])}")
    if name == "htcondor":
        queued = [line for line in extra if (line.split() or [""])[0].lower() == "queue"]
        if queued:  # the submit file ends with its own `queue`: one more would submit more jobs
            msg = (f"--extra {queued[0]!r}: the submit file already ends with `queue` (one job); give one "
                   "`hepnn jobs htcondor` file per job instead of an extra queue line")
            raise ConfigError(msg)
    condor += extra
    merged["condor_lines"] = "\n".join(condor)
    return merged


def unused_options(name: str, values: dict) -> list[str]:
    """The keys of ``values`` (not None) that template ``name`` does not use (see :data:`OPTIONS`).

    Examples
    --------
    >>> unused_options("slurm", {"nodes": 4, "cpus": 8, "files": None})
    ['nodes']
    """
    if name not in TEMPLATES:
        raise UnknownNameError(name, "job template", TEMPLATES)
    return [key for key, value in values.items() if value is not None and key not in OPTIONS[name]]


def _fill(text: str, values: dict, shell: bool) -> str:
    def one(match: re.Match) -> str:
        key = match.group(1)
        text = str(values[key])
        if shell and key not in _UNQUOTED:
            return shlex.quote(text)
        return text

    lines = []
    for line in text.splitlines(keepends=True):
        filled = _PLACEHOLDER.sub(one, line)
        if filled.strip() or not _PLACEHOLDER.fullmatch(line.strip()):  # drop lines left empty
            lines.append(filled if filled.endswith("\n") or not line.endswith("\n") else filled + "\n")
    return "".join(lines)


def render(name: str, **values) -> str:
    """The text of job template ``name`` with paths and resources filled in.

    Parameters
    ----------
    name : str
        ``slurm``, ``slurm-multinode``, ``htcondor`` (the ``.sub`` file; its wrapper
        ``htcondor_train.sh`` is written by :func:`write`) or ``slurm-predict``.
    **values
        Paths: ``config``, ``out``, ``run_dir`` (one starting with ``-`` is written ``./-name``, so
        that hepnn does not read it as an option), ``files`` (a list of paths or globs, each quoted for the
        shell but for its glob characters; or one string on one line written as it is: space-separated,
        globs allowed; at least one; ``slurm-predict`` passes them after ``--``, so a name starting with
        ``-`` is a file). A leading ``~`` in these paths (list entries for ``files``) is expanded here.
        Resources: ``cpus`` (per task; default 1, ``workers`` for ``slurm-predict``),
        ``mem`` (per node, e.g. ``"8G"``, above zero; default: the site's), ``gpus`` (per node, default
        0: no GPU line), ``nodes`` and ``tasks_per_node`` (``slurm-multinode``, default 2
        and 1), ``workers`` (Dask workers, ``slurm-predict``), ``time`` (``HH:MM:SS`` or
        ``D-HH:MM:SS``, above zero seconds: SLURM reads 0 as no limit). Site: ``partition``,
        ``account``, ``constraint`` (SLURM),
        ``extra`` (lines added as they are: ``#SBATCH`` options, or submit commands for
        HTCondor), ``setup`` (shell lines run before hepnn: ``source venv/bin/activate``,
        ``module load ...``; run with ``set +u``, as conda's and some module systems' scripts
        read unset variables). ``workdir`` (default: the current folder, made absolute): the
        script enters it first, so relative paths and set-up lines mean what they meant where the
        job was written, wherever it is submitted from (HTCondor: only when the node sees it, so a
        job with file transfer stays in its scratch folder).

    Values a template does not use (:data:`OPTIONS`) are ignored here; ``hepnn jobs`` refuses
    them. ``partition``, ``account`` and ``constraint`` must be one word (no spaces or line
    breaks: each is one ``#SBATCH`` line), and the HTCondor ``config`` and ``out`` one line.

    Raises
    ------
    ConfigError
        A value that cannot be written as asked, naming it and what to give instead.

    Examples
    --------
    >>> text = render("slurm-multinode", config="c.yaml", out="runs/c", nodes=4, gpus=4, mem="64G",
    ...               setup="module load tensorflow", extra=["--qos=long"])
    >>> "#SBATCH --nodes=4" in text and "#SBATCH --gpus-per-node=4" in text and "#SBATCH --mem=64G" in text
    True
    >>> "#SBATCH --qos=long" in text and "module load tensorflow" in text
    True
    """
    if name not in TEMPLATES:
        raise UnknownNameError(name, "job template", TEMPLATES)
    main, _ = TEMPLATES[name]
    return _fill(_template_text(main), _values(name, values), shell=main.endswith(".sh"))


_STAMP = "# written by `hepnn jobs`, sha256 {digest}: a rerun replaces this file only while it is unedited\n"
_STAMPED = re.compile(r"\A(.*)# written by `hepnn jobs`, sha256 ([0-9a-f]{64}):[^\n]*\n\Z", re.DOTALL)


def _stamped(text: str) -> str:
    """``text`` with a last line holding its checksum (so a rerun knows it was not edited since)."""
    return text + _STAMP.format(digest=hashlib.sha256(text.encode()).hexdigest())


def _unedited(path: Path) -> bool:
    """True when ``path`` is a file :func:`write` wrote and nobody edited since (its checksum line matches)."""
    try:
        match = _STAMPED.match(path.read_text())
    except (OSError, UnicodeDecodeError):
        return False
    return bool(match) and hashlib.sha256(match.group(1).encode()).hexdigest() == match.group(2)


def _claim(path: Path, force: bool) -> None:
    if path.is_dir():
        msg = f"{path}: is a directory, expected the job file {path.name}; choose another --write folder"
        raise OutputDirError(msg)
    if path.exists() and not force and not _unedited(path):
        msg = (f"{path}: exists and was edited since `hepnn jobs` wrote it (or hepnn did not write it); hepnn would "
               "replace it. Choose another --write folder, move the file away, or pass --force to replace it")
        raise OutputDirError(msg)


def write(name: str, directory: str | os.PathLike, *, force: bool = False, **values) -> list[Path]:
    """Write template ``name`` (and its wrapper, for ``htcondor``) into ``directory``; shell scripts executable.

    The HTCondor submit file names its wrapper by its absolute path (``executable``), so
    ``condor_submit`` finds it from any folder (:func:`render` alone writes ``htcondor_train.sh``).
    Each file ends with a comment holding its checksum: a rerun replaces a file it wrote that
    nobody edited since, and refuses (:class:`~hepnn.exceptions.OutputDirError`, before
    anything is written) to replace one that was edited or that hepnn did not write, unless
    ``force``.
    """
    if name not in TEMPLATES:
        raise UnknownNameError(name, "job template", TEMPLATES)
    directory = Path(directory).expanduser()  # "~/jobs" from Python as from the shell
    if directory.exists() and not directory.is_dir():
        msg = f"--write {directory}: exists and is not a directory; choose another folder"
        raise OutputDirError(msg)
    merged = _values(name, values)
    main, extra = TEMPLATES[name]
    if name == "htcondor":  # condor_submit from any folder finds the wrapper written beside the .sub
        wrapper = _one_line("--write", os.path.join(os.path.abspath(directory), extra[0]),
                            "an HTCondor submit file cannot hold it")
        merged["executable"] = _condor_literal("--write", wrapper)
    texts = {filename: _stamped(_fill(_template_text(filename), merged, filename.endswith(".sh")))
             for filename in (main, *extra)}
    for filename in texts:
        _claim(directory / filename, force)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for filename, text in texts.items():
        path = atomic_write_text(directory / filename, text)
        if filename.endswith(".sh"):
            path.chmod(0o755)
        out.append(path)
    return out


# --- checking a job against the nodes -------------------------------------------------------

def read_sinfo(partition: str | None = None) -> list[dict]:
    """The nodes ``sinfo`` reports (of ``partition``, else of the default partition).

    Each node is ``{"name", "partition", "cpus", "memory_mb", "gpus", "features", "state",
    "time_limit_s"}`` (the partition's time limit in seconds, None when unlimited).
    Raises :class:`~hepnn.exceptions.HepnnError` when ``sinfo`` is missing or fails.
    """
    if not shutil.which("sinfo"):
        msg = "sinfo not found: --check reads the nodes from SLURM; run it on a login node of the cluster"
        raise HepnnError(msg)
    command = ["sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G|%f|%t|%l"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        msg = "sinfo did not answer within 30 s: is slurmctld running?"
        raise HepnnError(msg) from None
    if result.returncode != 0:
        msg = f"sinfo failed (exit {result.returncode}): {result.stderr.strip()[:300]}"
        raise HepnnError(msg)
    nodes = []
    for line in result.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 8:
            continue
        name, part, cpus, mem, gres, features, state, limit = fields
        gpus = sum(int(m.group(1)) for m in re.finditer(r"gpu(?::[^:(,]+)?:(\d+)", gres))
        nodes.append({"name": name, "partition": part, "default": part.endswith("*"), "cpus": int(cpus),
                      "memory_mb": int(re.sub(r"\D.*", "", mem) or 0), "gpus": gpus,
                      "features": [] if features in ("(null)", "") else features.split(","), "state": state,
                      "time_limit_s": _time_limit(limit)})
    for node in nodes:
        node["partition"] = node["partition"].rstrip("*")
    if partition:
        return [n for n in nodes if n["partition"] == partition]
    default = [n for n in nodes if n["default"]]
    return default or nodes


def _time_limit(text: str) -> int | None:
    """A partition's time limit from ``sinfo %l`` in seconds (None: ``infinite`` or unreadable)."""
    try:
        return _seconds(text)
    except ConfigError:
        return None


def check(name: str, available: list[dict] | None = None, **values) -> list[str]:
    """What job ``name`` with ``values`` asks for that the nodes cannot give (empty: it fits).

    ``available`` is :func:`read_sinfo`'s list (read when not given). Checked: the partition
    exists, CPUs per node (``cpus`` x tasks per node), memory per node, GPUs per node,
    the number of nodes, the constraint (a node feature) and the wall time (the partition's time
    limit, where ``sinfo`` gives one).

    Examples
    --------
    >>> node = {"name": "n1", "partition": "debug", "cpus": 2, "memory_mb": 4000, "gpus": 0,
    ...         "features": [], "state": "idle"}
    >>> check("slurm", available=[node])
    []
    >>> check("slurm", available=[node], cpus=8, gpus=1)[0]
    'cpus-per-task=8: no node of partition debug has more than 2 CPUs (n1); ask for --cpus 2 or fewer'
    """
    if name not in TEMPLATES:
        raise UnknownNameError(name, "job template", TEMPLATES)
    merged = _values(name, values)
    nodes = read_sinfo(merged["partition"]) if available is None else available
    if not nodes:
        where = f"partition {merged['partition']!r}" if merged["partition"] else "the default partition"
        return [f"sinfo lists no node in {where}; check the name with `sinfo -s`"]
    partition = nodes[0]["partition"]
    names = ",".join(sorted({n["name"] for n in nodes}))
    tasks = merged["tasks_per_node"] if name == "slurm-multinode" else 1
    n_nodes = merged["nodes"] if name == "slurm-multinode" else 1
    problems = []
    cpus = merged["cpus"] * tasks
    fit = [n for n in nodes if n["cpus"] >= cpus]
    if not fit:
        most = max(n["cpus"] for n in nodes)
        what = f"cpus-per-task={merged['cpus']}" + (f" x {tasks} tasks per node" if tasks > 1 else "")
        problems.append(f"{what}: no node of partition {partition} has more than {most} CPUs ({names}); "
                        f"ask for --cpus {max(1, most // tasks)} or fewer")
    if merged["mem"] is not None:
        mem = memory_mb(merged["mem"])
        most = max(n["memory_mb"] for n in nodes)
        if mem > most:
            problems.append(f"mem={merged['mem']} ({mem} MB): no node of partition {partition} has more than "
                            f"{most} MB ({names}); ask for --mem {most}M or less")
    if merged["gpus"]:
        most = max(n["gpus"] for n in nodes)
        if merged["gpus"] > most:
            have = f"at most {most} GPUs" if most else "no GPUs (no gpu GRES)"
            problems.append(f"gpus-per-node={merged['gpus']}: the nodes of partition {partition} have {have} "
                            f"({names}); use --gpus {most}" + (" or another partition" if most else
                                                              " or a GPU partition (--partition)"))
    if merged["constraint"]:
        features = sorted({f for n in nodes for f in n["features"]})
        wanted = [re.sub(r"\*\d+$", "", f) for f in re.split(r"[&|,\[\]()]+", merged["constraint"])]  # "a&(b|c*2)"
        missing = [f for f in wanted if f and f not in features]
        if missing:
            problems.append(f"constraint={merged['constraint']}: no node of partition {partition} has feature(s) "
                            f"{missing}; features there: {features or '(none)'}")
    if n_nodes > len(nodes):
        problems.append(f"nodes={n_nodes}: partition {partition} has {len(nodes)} node(s) ({names})")
    limits = [n.get("time_limit_s") for n in nodes]
    if limits and None not in limits and merged["seconds"] > max(limits):
        hours, rest = divmod(max(limits), 3600)
        most = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        problems.append(f"time={merged['time']}: partition {partition} allows at most {most}; ask for --time {most} "
                        "or less (the job resumes from its checkpoint when requeued) or another partition")
    return problems
