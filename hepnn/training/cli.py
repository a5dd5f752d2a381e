"""``hepnn train``, ``hepnn evaluate`` and ``hepnn export``."""

from __future__ import annotations

import json

from ..cli import add_analysis_option, add_set_option, analysis_for_runs
from ..config import load_config


def _cmd_train(args) -> int:
    # lazy: keeps the CLI parser light (no keras, numpy)
    from .trainer import Trainer

    config = load_config(args.config, args.overrides)
    analysis = analysis_for_runs(args.analysis, [])  # --analysis, else none (no run to read it from yet)
    Trainer(config, analysis=analysis).fit(args.out, force=args.force)
    return 0


def _cmd_evaluate(args) -> int:
    # lazy: keeps the CLI parser light (no numpy)
    from .evaluate import evaluate_run

    analysis = analysis_for_runs(args.analysis, [args.run_dir])
    metrics = evaluate_run(args.run_dir, data_config=args.data, analysis=analysis)
    print(json.dumps({k: v for k, v in metrics.items() if k in ("auc", "accuracy", "n_test", "rejection")}))
    return 0


def _cmd_export(args) -> int:
    # lazy: keeps the CLI parser light (no numpy)
    from .export import export_onnx

    path = export_onnx(args.run_dir, out=args.out, with_preprocessing=args.with_preprocessing, opset=args.opset,
                       force=args.force)
    print(f"wrote {path}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the model a config describes into a run directory")
    p.add_argument("config", help="config file")
    p.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing directory that holds files hepnn did not write")
    p.add_argument("--analysis", default=None, metavar="ANALYSIS",
                   help="analysis folder or installed name whose hooks (select, labels, build_model) the run uses")
    add_set_option(p)
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("evaluate", help="compute test-split metrics into RUN_DIR/metrics.json")
    p.add_argument("run_dir")
    p.add_argument("--data", default=None, help="evaluate on the data of another config (same classes and model inputs as the run's; written to RUN_DIR/metrics_<its file stem>.json: OTHER.yaml gives metrics_OTHER.json)")
    add_analysis_option(p)
    p.set_defaults(func=_cmd_evaluate)

    p = subparsers.add_parser("export", help="export a trained tagger (ONNX) with its preprocessing")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/export)")
    p.add_argument("--with-preprocessing", action="store_true",
                   help="put the transforms and standardisation in the graph: the model takes raw tensors")
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset (default: the converter's)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder that holds files hepnn did not write")
    p.set_defaults(func=_cmd_export)
