"""``hepnn tune``: hyper-parameter search on Optuna."""

from __future__ import annotations

from ..cli import add_set_option
from ..exceptions import ConfigError
from .study import tune


def _cmd_tune(args) -> int:
    if args.trials is not None and args.trials < 1:
        msg = f"--trials: expected a positive number, received {args.trials}"
        raise ConfigError(msg)
    # every worker uses the study's seed: trial n draws from (seed, n) (hepnn.tune.study), so its values do not
    # depend on which worker runs it; seed + worker made a study with --workers 2 differ from run to run
    study = tune(
        args.config, args.space, args.out, n_trials=args.trials, objective=args.objective, sampler=args.sampler,
        seed=args.seed, storage=args.storage, workers=args.workers, overrides=args.overrides,
        study_name=args.study_name, prune=not args.no_prune, heartbeat_interval=args.heartbeat, join=args.join,
        force=args.force,
    )
    if not args.join:
        print(f"tuning finished: {args.out} ({len(study.trials)} trials)")
    return 0


def add_commands(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "tune", help="hyper-parameter search (Optuna): every trial a run directory, the best config written out",
    )
    p.add_argument("config", help="base config file")
    p.add_argument("--space", required=True, help="search space YAML: {dotted.config.key: {int|float: [lo, hi], log: true} or [choices]}")
    p.add_argument("--trials", type=int, default=None, help="number of trials over all workers (grid: default the whole grid)")
    p.add_argument("--out", required=True, help="study folder (trials/<n>/ run directories, best_config.yaml, trials.csv, plots/)")
    p.add_argument("--sampler", choices=["tpe", "random", "grid"], default="tpe")
    p.add_argument("--objective", default="val_loss", metavar="{val_loss,auc,rejection@0.5}",
                   help="val_loss (minimised), or auc / rejection@<eff> on the validation split (maximised)")
    p.add_argument("--storage", default=None, help="database URL shared by workers (default: $HEPNN_TUNE_STORAGE, else sqlite:///OUT/study.db); "
                   "a password in it is shown and saved as ***")
    p.add_argument("--workers", type=int, default=1, help="local worker processes sharing the storage")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--study-name", default=None, help="study name (default: the config's name)")
    p.add_argument("--no-prune", action="store_true", help="do not prune trials (by default a trial worse than the median of the completed ones "
                   "at the same epoch is stopped, from epoch 2 on, once 3 trials completed)")
    p.add_argument("--heartbeat", type=int, default=30,
                   help="seconds between heartbeats; a trial silent for twice this is failed and re-queued")
    p.add_argument("--join", action="store_true",
                   help="only run queued trials of an existing study (an extra worker, e.g. on another machine)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder that holds files hepnn did not write")
    p.add_argument("--worker-seed", type=int, default=0, help=argparse.SUPPRESS)  # the worker's index (not its seed)
    add_set_option(p)
    p.set_defaults(func=_cmd_tune)
