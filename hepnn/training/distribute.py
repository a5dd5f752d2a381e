"""``tf.distribute`` strategies and mixed precision.

``training.distribute``:

- ``auto``: MultiWorkerMirroredStrategy when ``TF_CONFIG`` names a cluster or SLURM
  started several tasks; MirroredStrategy when several GPUs are visible; else the
  default (single-device) strategy.
- ``none`` / ``mirrored`` / ``multi_worker``: that strategy.

Under SLURM the cluster is resolved by ``tf.distribute.cluster_resolver.SlurmClusterResolver``.
"""

from __future__ import annotations

import json
import os

from .._optional import require_keras

__all__ = ["select_strategy", "set_mixed_precision", "is_multi_worker", "is_chief", "worker_index"]


def is_multi_worker() -> bool:
    """True when TF_CONFIG has several workers or SLURM launched several tasks."""
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        try:
            cluster = json.loads(tf_config).get("cluster", {})
        except json.JSONDecodeError:
            msg = f"TF_CONFIG is not valid JSON: {tf_config[:80]!r}"
            raise ValueError(msg) from None
        return sum(len(v) for v in cluster.values()) > 1
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ


def is_chief() -> bool:
    """True on the worker that writes the run directory (task 0, or no cluster)."""
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        task = json.loads(tf_config).get("task", {})
        return task.get("type", "worker") in ("chief",) or (
            task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0
            and "chief" not in json.loads(tf_config).get("cluster", {})
        )
    return int(os.environ.get("SLURM_PROCID", "0")) == 0


def n_workers() -> int:
    """Number of worker tasks in the cluster (1 without one)."""
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        cluster = json.loads(tf_config).get("cluster", {})
        return max(1, len(cluster.get("worker", ())) + len(cluster.get("chief", ())))
    if "SLURM_JOB_ID" in os.environ:
        return int(os.environ.get("SLURM_NTASKS", "1"))
    return 1


def worker_index() -> int:
    """This worker's index (TF_CONFIG task index, else SLURM_PROCID, else 0)."""
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        return int(json.loads(tf_config).get("task", {}).get("index", 0))
    return int(os.environ.get("SLURM_PROCID", "0"))


def select_strategy(kind: str = "auto"):
    """Return the ``tf.distribute`` strategy for ``training.distribute``."""
    require_keras()
    import tensorflow as tf

    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "multi_worker" or (kind == "auto" and is_multi_worker()):
        resolver = None
        if not os.environ.get("TF_CONFIG") and "SLURM_JOB_ID" in os.environ:
            resolver = _slurm_resolver(tf)
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or (kind == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _slurm_resolver(tf):
    """``SlurmClusterResolver``, also on nodes without GPUs.

    TensorFlow's resolver counts the node's GPUs with ``nvidia-smi`` (an error where there
    is none) and divides them among the node's tasks (an error with more tasks than GPUs).
    Without ``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi`` it is given one notional device per
    task and told to leave ``CUDA_VISIBLE_DEVICES`` alone.
    """
    import shutil

    if os.environ.get("CUDA_VISIBLE_DEVICES") or shutil.which("nvidia-smi"):
        return tf.distribute.cluster_resolver.SlurmClusterResolver()
    per_node = os.environ.get("SLURM_STEP_TASKS_PER_NODE") or os.environ.get("SLURM_TASKS_PER_NODE") or "1"
    most = max(int(part.split("(")[0]) for part in per_node.split(","))   # "2(x3),1" -> 2
    return tf.distribute.cluster_resolver.SlurmClusterResolver(gpus_per_node=most, gpus_per_task=1,
                                                               auto_set_gpu=False)


def set_mixed_precision(enabled: bool = True) -> str:
    """Set Keras's global dtype policy for ``training.mixed_precision`` and return its name.

    ``mixed_float16`` when ``enabled`` and a GPU is visible; ``float32`` otherwise (on a
    CPU float16 maths is emulated and only slower). The policy is global to the process,
    so the trainer calls this for every run, with ``enabled=False`` too: a run without
    mixed precision after one with it is then float32 again.

    Examples
    --------
    >>> set_mixed_precision(False)  # doctest: +SKIP
    'float32'
    """
    keras = require_keras()
    import tensorflow as tf

    policy = "mixed_float16" if enabled and tf.config.list_logical_devices("GPU") else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy
