"""Scale-out: score many files on a Dask cluster, and batch-job templates for training.

Importing this package is light (no Dask, no TensorFlow).

- :func:`predict_files`: one friend file of scores per input, in process or on a
  ``dask.distributed`` cluster, atomic and resumable (``hepnn predict``).
- :meth:`hepnn.Tagger.predict_dask`: lazy scores as a ``dask_awkward.Array``.
- :func:`render`: fill in a SLURM / HTCondor job template (``hepnn jobs``).
"""

from __future__ import annotations

from .jobs import TEMPLATES, render
from .predict import PredictResult, output_names, predict_files

__all__ = ["PredictResult", "TEMPLATES", "output_names", "predict_files", "render"]
