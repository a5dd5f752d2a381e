"""What a run *is*: the run specification, computed once and saved with the run.

The layer sits between :mod:`hepnn.models` and :mod:`hepnn.training`: the trainer
writes ``RUN_DIR/spec.json``; the Tagger, evaluation, export, explain, the report,
prediction and tuning read it back with :func:`load_spec` instead of recomputing.
"""

from __future__ import annotations

from .spec import SPEC_FILE, InputSpec, RunSpec, infer_task, load_spec, model_inputs

__all__ = ["RunSpec", "InputSpec", "load_spec", "model_inputs", "infer_task", "SPEC_FILE"]
