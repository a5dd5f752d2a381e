"""Training, evaluation and application of taggers.

The public names are imported on first use, so ``import hepnn.training`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Trainer", "Tagger", "evaluate_run", "predict_split", "export_onnx", "train_bdt"]

_LAZY = {
    "Trainer": ("hepnn.training.trainer", "Trainer"),
    "Tagger": ("hepnn.training.tagger", "Tagger"),
    "evaluate_run": ("hepnn.training.evaluate", "evaluate_run"),
    "predict_split": ("hepnn.training.evaluate", "predict_split"),
    "export_onnx": ("hepnn.training.export", "export_onnx"),
    "train_bdt": ("hepnn.training.baseline", "train_bdt"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    msg = f"module 'hepnn.training' has no attribute {name!r}"
    raise AttributeError(msg)
