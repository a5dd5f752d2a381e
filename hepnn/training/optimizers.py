"""Optimisers and learning-rate schedules from the ``training`` config section.

The lecture's menu: plain SGD, SGD with (Nesterov) momentum, Adagrad, RMSProp, Adam
and AdamW; step, exponential and cosine schedules (per epoch) and reduce-on-plateau
(handled by the trainer, which owns the validation loss).
"""

from __future__ import annotations

import math

from .._optional import require_keras
from ..config.schema import OptimizerConfig, ScheduleConfig

__all__ = ["build_optimizer", "learning_rate_at", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam")


def learning_rate_at(epoch: int, base: float, schedule: ScheduleConfig | None) -> float:
    """Learning rate of a per-epoch schedule at ``epoch`` (0-based).

    Plateau schedules are not a function of the epoch: this returns ``base`` for them.

    Examples
    --------
    >>> from hepnn.config.schema import ScheduleConfig
    >>> learning_rate_at(5, 0.1, ScheduleConfig(name="step", decay_rate=0.5, decay_epochs=5))
    0.05
    >>> round(learning_rate_at(10, 0.1, ScheduleConfig(name="cosine", decay_epochs=10, min_learning_rate=0.0)), 6)
    0.0
    """
    if schedule is None or schedule.name == "plateau":
        return base
    floor = schedule.min_learning_rate
    if schedule.name == "step":
        value = base * schedule.decay_rate ** (epoch // schedule.decay_epochs)
    elif schedule.name == "exponential":
        value = base * schedule.decay_rate ** (epoch / schedule.decay_epochs)
    elif schedule.name == "cosine":
        progress = min(epoch, schedule.decay_epochs) / schedule.decay_epochs
        value = floor + 0.5 * (base - floor) * (1 + math.cos(math.pi * progress))
    else:  # pragma: no cover - the config loader restricts the names
        msg = f"training.schedule.name: unknown schedule {schedule.name!r}"
        raise ValueError(msg)
    return max(value, floor)


def build_optimizer(config: OptimizerConfig):
    """A Keras optimiser for ``config`` (the trainer sets the learning rate each epoch).

    Examples
    --------
    >>> from hepnn.config.schema import OptimizerConfig
    >>> opt = build_optimizer(OptimizerConfig(name="sgd", learning_rate=0.01, momentum=0.9, nesterov=True))
    >>> type(opt).__name__, opt.nesterov
    ('SGD', True)
    """
    keras = require_keras()
    common = {"learning_rate": config.learning_rate}
    if config.clipnorm is not None:
        common["clipnorm"] = config.clipnorm
    if config.weight_decay is not None:  # decoupled, as Keras applies it in every optimiser
        common["weight_decay"] = config.weight_decay
    name = config.name
    if name == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, nesterov=config.nesterov, **common)
    if name == "adam":
        return keras.optimizers.Adam(**common)
    if name == "adamw":
        return keras.optimizers.AdamW(**{"weight_decay": 0.004, **common})
    if name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=config.momentum, **common)
    if name == "adagrad":
        return keras.optimizers.Adagrad(**common)
    if name == "nadam":
        return keras.optimizers.Nadam(**common)
    msg = f"training.optimizer.name: expected one of {', '.join(OPTIMIZERS)}, received {name!r}"
    raise ValueError(msg)
