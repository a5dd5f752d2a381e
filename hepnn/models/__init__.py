"""Model builders: registered functions that return functional ``keras.Model`` objects."""

from .registry import MODELS, register_model

__all__ = ["MODELS", "register_model"]
