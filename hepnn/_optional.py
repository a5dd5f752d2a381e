"""Import heavy or optional dependencies only where they are needed.

``import hepnn`` never imports TensorFlow, shap or matplotlib; the functions that
need them call :func:`require`, which names the ``pip install`` line that fixes a
missing package.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require", "require_keras"]

# module -> the extra that installs it (None: a core dependency of hepnn)
_EXTRAS = {
    "tensorflow": None,
    "keras": None,
    "shap": None,
    "matplotlib": None,
    "mplhep": None,
    "hist": None,
    "sklearn": None,
    "uproot": None,
    "awkward": None,
    "pythia8mc": "generate",
    "fastjet": "generate",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "tf2onnx": "onnx",
    "mlflow": "tracking",
    "dask": "dask",
    "distributed": "dask",
    "dask_awkward": "dask",
    "optuna": "tune",
    "hypothesis": "test",
}


def require(module: str, extra: str | None = "__auto__") -> ModuleType:
    """Import and return ``module``, or raise ``ModuleNotFoundError`` naming the fix.

    Examples
    --------
    >>> np = require("numpy")
    >>> np.__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if extra == "__auto__":
            extra = _EXTRAS.get(top)
        target = f"hepnn[{extra}]" if extra else "hepnn"
        msg = (
            f"hepnn needs the package {top!r} for this, but it is not installed: "
            f"run `pip install {target}`"
        )
        raise ModuleNotFoundError(msg, name=top) from err


def require_keras() -> ModuleType:
    """Import Keras quietly: TensorFlow's C++ info logs are hidden unless the user set
    ``TF_CPP_MIN_LOG_LEVEL`` themselves. The backend is TensorFlow unless ``KERAS_BACKEND``
    names another: the model builders use Keras operations only and also run on JAX or
    PyTorch (``bench/physics_keras.py``); hepnn's training, streaming and export need TensorFlow."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.setdefault("KERAS_BACKEND", "tensorflow") == "tensorflow":
        require("tensorflow")
    return require("keras")
