"""``hepnn predict`` (score many files, optionally on Dask) and ``hepnn jobs`` (batch templates)."""

from __future__ import annotations

import argparse
import sys

from .._redact import redact
from ..cli import UsageError, positive_int
from ..config.schema import step_size_problem
from .jobs import OPTIONS, TEMPLATES, check, render, unused_options, write
from .predict import predict_files


def _cmd_predict(args) -> int:
    def log(message: str) -> None:
        if not args.quiet:
            print(redact(message), file=sys.stderr)

    result = predict_files(args.run_dir, args.files, args.out, workers=args.workers, scheduler=args.scheduler,
                           tree=args.tree, step_size=args.step_size, retries=args.retries,
                           resume=not args.no_resume, raise_on_error=False, log=log, force=args.force)
    for path, error in result.failed.items():
        print(redact(f"hepnn: failed: {path}: {error}"), file=sys.stderr)
    print(result.summary())
    return 1 if result.failed else 0


def _retries(text: str) -> int:
    """argparse type of ``--retries``: an integer >= 0."""
    value = int(text) if text.strip().isdigit() else -1
    if value < 0:
        msg = f"expected an integer >= 0 (0: no reruns), received {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _step_size(text: str):
    value = int(text) if text.strip().isdigit() else text
    problem = step_size_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value



_JOB_VALUES = ("config", "out", "run_dir", "files", "nodes", "tasks_per_node", "gpus", "cpus", "mem", "time",
               "workers", "partition", "account", "constraint", "extra", "setup")


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _check_options(template: str, values: dict) -> None:
    """Refuse options that ``template`` would ignore (``--nodes`` for ``slurm``, ``--partition`` for ``htcondor``)."""
    unused = unused_options(template, values)
    if not unused:
        return
    elsewhere = {key: sorted(name for name, keys in OPTIONS.items() if key in keys) for key in unused}
    where = "; ".join(f"{_option(k)} is for {', '.join(names)}" for k, names in elsewhere.items())
    hint = " (HTCondor: write the submit command with --extra)" if template == "htcondor" else ""
    msg = (f"hepnn jobs {template}: {', '.join(_option(k) for k in unused)} not used by this template ({where}){hint}; "
           f"its options: {', '.join(_option(k) for k in OPTIONS[template])}")
    raise UsageError(msg)


def _cmd_jobs(args) -> int:
    values = {k: v for k, v in vars(args).items() if k in _JOB_VALUES and v is not None}
    _check_options(args.template, values)
    if args.check:
        if args.template == "htcondor":
            print("hepnn: --check reads SLURM's sinfo; for HTCondor compare with `condor_status -af Cpus Memory GPUs`",
                  file=sys.stderr)
            return 2
        problems = check(args.template, **values)
        for problem in problems:
            print(f"hepnn: does not fit: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"hepnn: {args.template}: the requested resources fit the nodes sinfo reports", file=sys.stderr)
    if args.write:
        for path in write(args.template, args.write, force=args.force, **values):
            print(f"wrote {path}")
    elif not args.check:
        sys.stdout.write(render(args.template, **values))
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="score ROOT files with a trained tagger: one friend tree per file (resumable; Dask optional)",
        description="Score every FILE with the tagger of RUN_DIR and write OUT/<stem>_scores.root (a friend tree, "
                    "same tree name, entries and order) plus a JSON sidecar. Rerun the same command to resume: files "
                    "already done are skipped. Exit code 0: all done; 1: some files failed; 2: usage.")
    p.add_argument("run_dir", help="trained run directory")
    p.add_argument("files", nargs="+", help="input ROOT files (a file named twice is scored once)")
    p.add_argument("--out", required=True, help="output folder for the friend files")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="start a local Dask cluster of N worker processes (needs hepnn[dask])")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="use a running Dask scheduler (tcp://host:8786 or a scheduler JSON file)")
    p.add_argument("--tree", default=None, help="input tree name (default: the config's, or the only tree)")
    p.add_argument("--step-size", type=_step_size, default="100 MB", help="entries or bytes per chunk (default 100 MB)")
    p.add_argument("--retries", type=_retries, default=2, help="reruns of a file whose task raised, 0 or more (default 2)")
    p.add_argument("--no-resume", action="store_true", help="redo files already done")
    p.add_argument("--force", action="store_true",
                   help="replace existing files with the output names that hepnn did not write, and the scores "
                        "of another run (by default both are an error, before anything is written)")
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary line")
    p.set_defaults(func=_cmd_predict)

    p = subparsers.add_parser(
        "jobs", help="write a SLURM / HTCondor job script that trains (resuming on requeue) or predicts")
    p.add_argument("template", choices=sorted(TEMPLATES), help="which template")
    p.add_argument("--config", default=None, help="training config (train templates)")
    p.add_argument("--out", default=None, help="run directory (train) or score folder (predict)")
    p.add_argument("--run-dir", default=None, help="trained run directory (slurm-predict)")
    p.add_argument("--files", nargs="+", default=None, help="input files or a glob (slurm-predict)")
    p.add_argument("--nodes", type=int, default=None, help="nodes (slurm-multinode, default 2)")
    p.add_argument("--tasks-per-node", type=int, default=None,
                   help="workers per node (slurm-multinode, default 1: one per node, all its GPUs)")
    p.add_argument("--cpus", type=int, default=None,
                   help="CPUs per task (default 1; slurm-predict: --workers)")
    p.add_argument("--mem", default=None, help="memory per node above zero, e.g. 8G (default: the site's; slurm-predict: 2G per worker)")
    p.add_argument("--gpus", type=int, default=None, help="GPUs per node (default 0: no GPU line)")
    p.add_argument("--workers", type=positive_int, default=None, help="Dask workers (slurm-predict, default 1)")
    p.add_argument("--time", default=None, help="wall time above zero, e.g. 04:00:00 or 1-00:00:00 (default 04:00:00)")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--constraint", default=None, help="SLURM node features, e.g. a100")
    p.add_argument("--extra", action="append", default=None, metavar="LINE",
                   help="an extra scheduler line, repeatable: an sbatch option or, for htcondor, "
                        "a submit command ('+JobFlavour = \"workday\"'); write an sbatch option as --extra=--qos=long")
    p.add_argument("--setup", action="append", default=None, metavar="LINE",
                   help="a shell line run before hepnn, repeatable: 'source /path/venv/bin/activate', "
                        "'module load tensorflow'")
    p.add_argument("--check", action="store_true",
                   help="compare the requested CPUs, memory, GPUs, nodes and constraint with the nodes sinfo "
                        "reports (exit 1 with what does not fit)")
    p.add_argument("--write", default=None, metavar="DIR",
                   help="write the script (and the HTCondor wrapper) into DIR instead of printing it; a file "
                        "there that was edited since (or not written by hepnn jobs) is kept unless --force")
    p.add_argument("--force", action="store_true",
                   help="with --write: replace job files that were edited or not written by hepnn jobs")
    p.set_defaults(func=_cmd_jobs)
