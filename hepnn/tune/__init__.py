"""Hyper-parameter search on Optuna: ``hepnn tune CONFIG --space SPACE.yaml``.

Every trial is a normal run directory (``OUT/trials/<number>``); trials of one study may
run in several processes or on several machines through Optuna's RDB storage. Importing
this package imports neither Optuna nor TensorFlow.

Modules
-------
space
    Parse and validate a search space (``SPACE.yaml``).
objective
    Train one trial and return its objective (``val_loss``, ``auc``, ``rejection@0.5``).
study
    Create or join a study, run workers, write ``best_config.yaml`` and ``trials.csv``.
plots
    Optimisation history and parameter importances.
"""

from __future__ import annotations

from .space import Dimension, SearchSpace, load_space
from .study import tune as _tune

__all__ = ["Dimension", "SearchSpace", "load_space", "tune"]


def tune(*args, **kwargs):
    """Run a hyper-parameter search (see :func:`hepnn.tune.study.tune`)."""
    return _tune(*args, **kwargs)
