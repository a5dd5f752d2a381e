"""Plots of a study: optimisation history and parameter importances (matplotlib, on Optuna's data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import require

__all__ = ["plot_optimization_history", "plot_importances"]


def _axes(ax):
    if ax is not None:
        return ax

    plt = require("matplotlib.pyplot")
    _, ax = plt.subplots(figsize=(6, 4))
    return ax


def plot_optimization_history(study, ax=None, target_name: str | None = None) -> Any:
    """Objective value of every completed trial and the best value so far.

    Parameters
    ----------
    study : optuna.Study
    ax : matplotlib Axes, optional
    target_name : str, optional
        Y-axis label (default: ``study.user_attrs["objective"]`` or ``"objective"``).

    Returns
    -------
    matplotlib Axes
        With two lines: ``trials`` (markers) and ``best so far``.

    Examples
    --------
    >>> ax = plot_optimization_history(study)  # doctest: +SKIP
    >>> [line.get_label() for line in ax.get_lines()]  # doctest: +SKIP
    ['trials', 'best so far']
    """
    optuna = require("optuna")
    ax = _axes(ax)
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    numbers = np.array([t.number for t in trials], dtype=float)
    values = np.array([t.value for t in trials], dtype=float)
    better = np.fmax if study.direction == optuna.study.StudyDirection.MAXIMIZE else np.fmin
    best = better.accumulate(values) if len(values) else values
    ax.plot(numbers, values, "o", label="trials", alpha=0.7)
    ax.plot(numbers, best, "-", drawstyle="steps-post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(target_name or study.user_attrs.get("objective", "objective"))
    ax.legend()
    return ax


def plot_importances(study, ax=None, evaluator=None, seed: int | None = 0) -> Any:
    """Horizontal bars of ``optuna.importance.get_param_importances`` (most important on top).

    Raises ``RuntimeError`` or ``ValueError`` (from Optuna) when fewer than two trials completed.

    Returns
    -------
    matplotlib Axes
        One bar per searched parameter; ``ax.get_yticklabels()`` holds the names.

    Examples
    --------
    >>> ax = plot_importances(study)  # doctest: +SKIP
    """
    optuna = require("optuna")
    if evaluator is None:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    names = list(importances)[::-1]
    ax = _axes(ax)
    ax.barh(np.arange(len(names)), [importances[n] for n in names], tick_label=names)
    ax.set_xlabel("importance (fANOVA)")
    ax.set_ylabel("parameter")
    return ax
