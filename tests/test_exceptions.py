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


@pytest.mark.parametrize(("backend", "needs_tensorflow"), [("tensorflow", True), ("jax", False), ("torch", False)])
def test_require_keras_asks_for_tensorflow_only_on_its_backend(monkeypatch, backend, needs_tensorflow):
    import hepnn._optional as optional

    asked = []
    monkeypatch.setenv("KERAS_BACKEND", backend)
    monkeypatch.setattr(optional, "require", lambda module, extra="__auto__": asked.append(module) or module)
    assert optional.require_keras() == "keras"
    assert asked == (["tensorflow", "keras"] if needs_tensorflow else ["keras"])
