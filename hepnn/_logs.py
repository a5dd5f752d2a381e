"""Quiet TensorFlow for the command line: its start-up noise hidden, its real errors kept.

TensorFlow 2.16+ writes C++ log lines (oneDNN notices, CUDA probing on machines without a
GPU, "All log messages before absl::InitializeLog() ...") straight to file descriptor 2 while
it is imported and when its devices are set up, before ``TF_CPP_MIN_LOG_LEVEL`` is read by
every component. :func:`quiet_tensorflow` installs an import hook: the first
``import tensorflow`` (from hepnn or Keras, whichever comes first) runs with file
descriptor 2 captured, initialises the devices, then writes back every captured line that
is not known start-up noise. TensorFlow's and absl's Python loggers are set to errors only.
``hepnn --debug`` does none of this.

Examples
--------
>>> bool(NOISE.search("I0000 00:00:1 cudart_stub.cc:31] Could not find cuda drivers on your machine"))
True
>>> bool(NOISE.search("Traceback (most recent call last):"))
False
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["NOISE", "quiet_tensorflow", "captured_stderr"]

#: start-up lines of TensorFlow/XLA/absl that say nothing the user can act on
NOISE = re.compile(
    r"All log messages before absl::InitializeLog"
    r"|oneDNN custom operations are on"
    r"|cuda drivers|cuInit|cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|Attempting to register factory"
    r"|computation placer already registered"
    r"|TensorFlow binary is optimized|rebuild TensorFlow with the appropriate compiler flags"
    r"|TF-TRT Warning|successful NUMA node read|GPU will not be used"
)


@contextmanager
def captured_stderr() -> Iterator[list]:
    """Capture what is written to file descriptor 2 (C++ included); yields a list filled on exit."""
    lines: list = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters): capture nothing
        yield lines
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            try:
                sys.stderr.flush()
            except ValueError:
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


def _replay(lines: list) -> None:
    kept = [line for line in lines if line.strip() and not NOISE.search(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)


def _python_loggers_to_errors(tf: Any) -> None:
    try:
        tf.get_logger().setLevel(logging.ERROR)
    except Exception:  # noqa: BLE001 - a TensorFlow without get_logger: nothing to quieten
        pass
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's package ``__init__`` (and its device set-up) with stderr captured."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with captured_stderr() as lines:
            try:
                self.loader.exec_module(module)
                module.config.list_physical_devices()  # CUDA probing happens here: capture it too
            finally:
                module.__loader__ = self.loader
        _replay(lines)
        _python_loggers_to_errors(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow(debug: bool = False) -> None:
    """Hide TensorFlow's start-up noise in this process (see the module docstring).

    ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 (errors of the C++ runtime still surface through
    Python exceptions); a value the user set is kept. With ``debug`` nothing is changed.
    """
    if debug:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Keras' ONNX export probes numpy with `hasattr(np, "object")`, which numpy 2 answers with a
    # FutureWarning the user can do nothing about (`hepnn export --format onnx`)
    warnings.filterwarnings("ignore", message=r"In the future `np\.object` will be defined", category=FutureWarning)
    if "tensorflow" in sys.modules:
        _python_loggers_to_errors(sys.modules["tensorflow"])
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
