"""hepnn.preprocessing: transforms and standardisation fitted on the training split.

Examples
--------
>>> from hepnn.preprocessing import Preprocessor
>>> Preprocessor({})
Preprocessor(inputs=[], not fitted)
"""

from .preprocessor import Preprocessor

__all__ = ["Preprocessor"]
