"""``hepnn explain RUN_DIR --method NAME [--n-jets N] [--set explain.options.<method>.<key>=VALUE]``."""

from __future__ import annotations

from ..cli import add_analysis_option, add_set_option, analysis_for_runs, positive_int
from ..config import load_config
from ..exceptions import ConfigError
from ..training.kfold import is_kfold_run
from ..training.rundir import RunDirectory
from . import run
from .registry import EXPLAINERS


def _cmd_explain(args) -> int:
    EXPLAINERS.get(args.method)  # unknown names fail before anything heavy is loaded
    options = None
    if args.overrides:
        foreign = [o for o in args.overrides if not o.strip().startswith("explain.")]
        if foreign:
            msg = (f"--set {foreign[0]}: `hepnn explain` takes explain.* settings only (explain.n_jets, "
                   "explain.background_size, explain.options.<method>.<key>); the run's model and data are fixed")
            raise ConfigError(msg)
        config = load_config(RunDirectory(args.run_dir).config, args.overrides)
        options = dict(config.explain.options.get(args.method, {}))
        if args.method == "shap":
            options.setdefault("background_size", config.explain.background_size)
        if args.n_jets is None:
            args.n_jets = config.explain.n_jets
    analysis = analysis_for_runs(args.analysis, [args.run_dir])
    what = "units" if args.method == "activation_maximization" else "jets"  # one input per unit, not per jet
    if is_kfold_run(args.run_dir):  # each fold model on its own fold's jets
        explanations = run.explain_folds(args.run_dir, args.method, n_jets=args.n_jets, split=args.split,
                                         options=options, analysis=analysis)
        for k, expl in enumerate(explanations):
            print(f"fold {k}: explained {expl.n_jets} {what} with {args.method} in "
                  f"{expl.extra.get('seconds', 0.0):.1f} s -> {args.run_dir}/folds/{k}/explain/{args.method}/values.npz")
        return 0
    expl = run.explain_run(args.run_dir, args.method, n_jets=args.n_jets, split=args.split, options=options,
                           analysis=analysis)
    seconds = expl.extra.get("seconds", 0.0)
    print(f"explained {expl.n_jets} {what} with {args.method} in {seconds:.1f} s -> "
          f"{args.run_dir}/explain/{args.method}/values.npz")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("explain", help="explain a trained tagger (SHAP, permutation, gradients, ...)")
    p.add_argument("run_dir")
    p.add_argument("--method", required=True, help=f"explainer: {', '.join(EXPLAINERS.names())}")
    p.add_argument("--n-jets", type=positive_int, default=None, help="jets explained (default: explain.n_jets)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    add_analysis_option(p)
    add_set_option(p)
    p.set_defaults(func=_cmd_explain)
