"""The ``hepnn`` command line.

Each workflow stage contributes its sub-commands from a light ``<stage>/cli.py``
module with an ``add_commands(subparsers)`` function, so the top-level parser
stays small and ``hepnn --help`` does not import TensorFlow.

Exit codes: 0 success, 2 usage or configuration error (one line on stderr),
1 any other failure (one line on stderr; ``--debug`` shows the traceback).

Output: TensorFlow's start-up log noise is hidden (``--debug`` shows it, see
:mod:`hepnn._logs`). Every sub-command takes ``--quiet``: commands with their own
meaning of it (``generate``, ``predict``) keep it; for the others it hides progress
output (stdout and progress bars), leaving errors and the files written.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from ._logs import quiet_tensorflow
from ._redact import redact
from .config import dump_config, load_config
from .exceptions import ConfigError, HepnnError, OutputDirError, UnknownNameError
from .outdir import MARKER, runs_instead
from .plugins import find_analyses
from .run import analysis_for_runs, run_analysis

__all__ = ["main", "build_parser", "add_analysis_option", "analysis_for_runs"]

# modules that add sub-commands; missing ones are skipped (stages land one by one)
COMMAND_MODULES = (
    "hepnn.datasets.cli",
    "hepnn.io.cli",
    "hepnn.training.cli",
    "hepnn.explain.cli",
    "hepnn.plotting.cli",
    "hepnn.tune.cli",
    "hepnn.scale.cli",
)


class UsageError(HepnnError):
    """Bad command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 with usage; keep that, one line
        self.print_usage(sys.stderr)
        self.exit(2, f"hepnn: error: {message}\n")


def positive_int(text: str) -> int:
    """argparse type of a count that must be at least 1 (``--n-jets``, ``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        msg = f"expected a positive int, received {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--set key=value`` config override."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=3 (repeatable; values are YAML)",
    )


def add_analysis_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--analysis``: the plugin whose data hooks a run was trained with (see :func:`analysis_for_runs`)."""
    parser.add_argument(
        "--analysis", default=None, metavar="ANALYSIS",
        help="analysis folder or installed name whose select()/labels() hooks the run was trained with "
             "(default: the one its provenance.json records, when it has such hooks)",
    )


def _cmd_list(args) -> int:
    analyses = find_analyses([Path("analyses")])
    print("analyses:")
    for name, where in analyses.items():
        print(f"  {name:24s} {where}")
    if not analyses:
        print("  (none found: pass a folder with config.yaml to `hepnn run`)")
    for title, registry in _registries():
        print(f"{title}:")
        names = registry.names()
        print("  " + (", ".join(names) if names else "(none)"))
    return 0


def _registries():
    out = []
    for title, module, attr in (
        ("models", "hepnn.models", "MODELS"),
        ("representations", "hepnn.io.representations", "REPRESENTATIONS"),
        ("derived variables", "hepnn.io.derived", "DERIVED"),
        ("explainers", "hepnn.explain", "EXPLAINERS"),
        ("samples", "hepnn.datasets", "SAMPLES"),
    ):
        try:
            registry = getattr(importlib.import_module(module), attr)
        except (ModuleNotFoundError, AttributeError):
            continue
        out.append((title, registry))
    return out


def _cmd_config_check(args) -> int:
    config = load_config(args.file, args.overrides)
    n_inputs = len(config.data.inputs)
    print(f"{args.file}: ok (model {config.model.name!r}, {n_inputs} input(s), {len(config.data.files)} file group(s))")
    return 0


def _cmd_config_show(args) -> int:
    sys.stdout.write(dump_config(load_config(args.file, args.overrides)))
    return 0


def _cmd_run(args) -> int:
    out = run_analysis(args.analysis, out=args.out, overrides=args.overrides, steps=args.steps, quick=args.quick,
                       update_readme=args.update_readme, force=args.force, jobs=args.jobs)
    print(f"run finished: {out}")
    report = Path(out) / "report" / "index.html"
    if report.is_file():
        print(f"report: {report.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hepnn", description="Neural-network jet tagging for high-energy physics.")
    parser.add_argument("--version", action="version", version=f"hepnn {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks on errors and TensorFlow's own log messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="list analyses, models, explainers and samples")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("config", help="check or show a configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    c = csub.add_parser("check", help="validate a config file")
    c.add_argument("file")
    add_set_option(c)
    c.set_defaults(func=_cmd_config_check)
    c = csub.add_parser("show", help="print the resolved config with all defaults (no FILE: the defaults)")
    c.add_argument("file", nargs="?", default=None)
    add_set_option(c)
    c.set_defaults(func=_cmd_config_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    p = sub.add_parser("run", help="run an analysis end to end (generate, train, evaluate, explain, report)")
    p.add_argument("analysis", help="analysis folder, config file or installed analysis name")
    p.add_argument("--out", default=None, help="output folder (default: runs/<analysis name>)")
    p.add_argument("--steps", default=None, help="comma-separated subset of steps to run")
    p.add_argument("--quick", action="store_true", help="apply the analysis' `quick` overlay (small and fast)")
    p.add_argument("--update-readme", action="store_true",
                   help="after the run, put OUT/results.md into the results block of the analysis' README.md")
    p.add_argument("--force", action="store_true",
                   help="write into an existing output folder that holds files hepnn did not write")
    p.add_argument("--jobs", "-j", default="1", metavar="N",
                   help="train, evaluate and explain the variants in N worker processes ('auto': one per CPU "
                        "core), each with cores // N TensorFlow threads: the numbers of a one-process run with "
                        "that thread count, which can differ from --jobs 1 in the last digits (default: 1)")
    add_set_option(p)
    p.set_defaults(func=_cmd_run)

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue
            raise
        module.add_commands(sub)
    _add_quiet(sub)
    return parser


def _add_quiet(subparsers: argparse._SubParsersAction) -> None:
    """Give every (nested) sub-command a ``--quiet`` flag unless it defines its own, and ``--debug``."""
    for parser in dict.fromkeys(subparsers.choices.values()):
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in nested:
            _add_quiet(action)
        if "--quiet" not in parser._option_string_actions:
            parser.add_argument("--quiet", "-q", action="store_true",
                                help="no progress output (stdout and progress bars); errors still show")
            parser.set_defaults(_generic_quiet=True)
        if "--debug" not in parser._option_string_actions:  # also after the command, as the errors suggest
            parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                help="show full tracebacks on errors and TensorFlow's own log messages")


@contextlib.contextmanager
def _debug_env(debug: bool):
    """``HEPNN_DEBUG=1`` while a ``--debug`` command runs: its subprocesses (the generator's
    workers, which then show FastJet's banner) see it too."""
    saved = os.environ.get("HEPNN_DEBUG")
    if debug:
        os.environ["HEPNN_DEBUG"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HEPNN_DEBUG", None)
        else:
            os.environ["HEPNN_DEBUG"] = saved


@contextlib.contextmanager
def _plain_warnings(debug: bool):
    """hepnn's own warnings as one line, ``hepnn: warning: ...`` (Python shows the file, line and source
    line of the ``warnings.warn`` call, which says nothing to a user); others and ``--debug`` as Python does."""
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if debug or not getattr(category, "__module__", "").startswith("hepnn"):
            return shown(message, category, filename, lineno, file, line)
        print(f"hepnn: warning: {redact(str(message))}", file=sys.stderr if file is None else file)
        return None

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


@contextlib.contextmanager
def _silenced(quiet: bool):
    if not quiet:
        yield
        return
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            yield
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved


def _check_run_dirs(args) -> None:
    """A tune study or an analysis output folder passed as RUN_DIR: name the runs it holds."""
    given = getattr(args, "run_dirs", None) or ([args.run_dir] if getattr(args, "run_dir", None) else [])
    for path in given:
        if not os.path.isfile(os.path.join(path, MARKER)) or os.path.isfile(os.path.join(path, "config.yaml")):
            continue
        hint = runs_instead(path)
        if hint:
            msg = f"{path}: {hint}"
            raise ConfigError(msg)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hepnn`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("HEPNN_DEBUG")

    quiet_tensorflow(debug=bool(debug))
    quiet = bool(getattr(args, "_generic_quiet", False) and getattr(args, "quiet", False))
    try:
        with _silenced(quiet), _debug_env(bool(debug)), _plain_warnings(bool(debug)):
            _check_run_dirs(args)
            code = args.func(args)
    except KeyboardInterrupt:
        print("hepnn: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, UnknownNameError, UsageError, OutputDirError) as err:
        if debug:
            raise
        print(f"hepnn: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        kind = "" if isinstance(err, HepnnError) else f"{type(err).__name__}: "
        print(f"hepnn: error: {kind}{redact(str(err))} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
