from __future__ import annotations

import pytest

from hepnn import exceptions
from hepnn._optional import require


def test_hierarchy():
    assert issubclass(exceptions.ConfigError, exceptions.HepnnError)
    assert issubclass(exceptions.ConfigError, ValueError)
    assert issubclass(exceptions.UnknownNameError, KeyError)
    assert issubclass(exceptions.InputDataError, exceptions.HepnnError)


def test_suggest():
    assert exceptions.suggest("epoch", ["epochs", "seed"]) == "; did you mean 'epochs'?"
    assert exceptions.suggest("zzz", ["epochs"]) == ""


def test_require_names_the_pip_line():
    with pytest.raises(ModuleNotFoundError, match=r"pip install hepnn\[onnx\]"):
        require("onnx_package_that_does_not_exist", extra="onnx")
    with pytest.raises(ModuleNotFoundError, match=r"`pip install hepnn`"):
        require("no_such_core_module_xyz", extra=None)
    assert require("json").__name__ == "json"
