"""``hepnn report``: the validation report of one or several trained runs."""

from __future__ import annotations

from pathlib import Path

from ..cli import add_analysis_option, analysis_for_runs
from .report import make_report


def _cmd_report(args) -> int:
    dirs = [Path(p) for p in args.run_dirs]
    names = [p.resolve().name for p in dirs]
    if len(set(names)) != len(names):
        names = [str(p) for p in dirs]
    runs = dirs[0] if len(dirs) == 1 else dict(zip(names, dirs))
    analysis = analysis_for_runs(args.analysis, dirs)
    out = make_report(runs, out=args.out, progress=not args.no_progress, force=args.force, analysis=analysis)
    print(f"wrote {out / 'index.html'}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="plots, metrics and an HTML page for trained runs (several runs: one combined report)"
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (with model.keras, config.yaml)")
    p.add_argument("--out", default=None, help="report folder (default: RUN_DIR/report, or beside the runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder that holds files hepnn did not write")
    add_analysis_option(p)
    p.set_defaults(func=_cmd_report)
