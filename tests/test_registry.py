from __future__ import annotations

import pytest

from hepnn.exceptions import UnknownNameError
from hepnn.registry import Registry


def test_register_and_get():
    things = Registry("thing")

    @things.register("one")
    def one():
        return 1

    assert things.get("one") is one
    assert "one" in things and len(things) == 1
    assert things.names() == ["one"]
    sentinel = object()
    assert things.get(sentinel) is sentinel  # objects pass through


def test_default_name_is_the_function_name():
    things = Registry("thing")

    @things.register()
    def build_foo():
        pass

    assert things.names() == ["build_foo"]


def test_duplicates_are_refused():
    things = Registry("thing")
    things.register("a", obj=len)
    with pytest.raises(ValueError, match="thing named 'a' is already registered"):
        things.register("a", obj=abs)
    things.register("a", obj=len)  # the same object again is harmless (module re-import)


def test_unknown_name_suggests_nearest_and_lists_valid():
    models = Registry("model")
    for name in ("dense", "cnn", "rnn"):
        models.register(name, obj=object())
    with pytest.raises(UnknownNameError) as info:
        models.get("dens")
    text = str(info.value)
    assert "unknown model 'dens'; did you mean 'dense'?" in text
    assert "valid names: cnn, dense, rnn" in text
    assert isinstance(info.value, KeyError)
    assert info.value.valid == ["cnn", "dense", "rnn"]
