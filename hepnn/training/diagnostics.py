"""Input-pipeline diagnostics: is training waiting for data or computing?

Per epoch the trainer records the share of wall time spent waiting for the next
batch versus running training steps, the training samples per second and the
peak memory, and warns when training is input-bound (the "GPU starvation"
problem of TensorFlow input pipelines). With ``training.streaming`` the batches
are fetched inside the compiled step, so the trainer also records
``reader_wait_s``: the seconds the input pipeline waited for the file reader,
and counts them as waiting in ``input_wait_share``.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

__all__ = ["EpochTimer", "peak_memory_mb", "INPUT_BOUND_SHARE"]

#: warn when more than this share of an epoch is spent waiting for input
INPUT_BOUND_SHARE = 0.3


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (and of the GPU where TensorFlow reports it)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 1024 if sys.platform != "darwin" else peak / 1024**2
    return float(peak_mb)


def gpu_peak_memory_mb() -> float | None:
    try:
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if not gpus:
            return None
        return tf.config.experimental.get_memory_info(gpus[0].name)["peak"] / 1024**2
    except Exception:  # noqa: BLE001 - diagnostics must never fail training
        return None


@dataclass
class EpochTimer:
    """Accumulates time waiting for batches and time computing steps.

    Examples
    --------
    >>> timer = EpochTimer()
    >>> timer.add_wait(0.1); timer.add_compute(0.3, n_samples=64)
    >>> round(timer.input_wait_share, 2)
    0.25
    """

    wait: float = 0.0
    compute: float = 0.0
    n_samples: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add_wait(self, seconds: float) -> None:
        self.wait += seconds

    def add_compute(self, seconds: float, n_samples: int = 0) -> None:
        self.compute += seconds
        self.n_samples += n_samples

    @property
    def input_wait_share(self) -> float:
        total = self.wait + self.compute
        return self.wait / total if total > 0 else 0.0

    @property
    def samples_per_second(self) -> float:
        total = self.wait + self.compute
        return self.n_samples / total if total > 0 else 0.0

    def summary(self) -> dict[str, float]:
        out = {
            "input_wait_share": round(self.input_wait_share, 4),
            "samples_per_s": round(self.samples_per_second, 1),
            "epoch_time_s": round(time.perf_counter() - self.start, 3),
            "peak_memory_mb": round(peak_memory_mb(), 1),
        }
        gpu = gpu_peak_memory_mb()
        if gpu is not None:
            out["gpu_peak_memory_mb"] = round(gpu, 1)
        return out
