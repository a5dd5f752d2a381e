"""Explanations of trained taggers: which inputs drive a network's output.

Importing this package registers every explainer but imports neither TensorFlow,
shap, scikit-learn nor matplotlib; they are imported when an explainer runs.

==========================  ===========================================================
name                        what it computes
==========================  ===========================================================
``shap``                    SHAP values (Deep / Gradient / Kernel / Permutation explainer)
``permutation``             permutation importance of features (repeats and spread)
``occlusion``               occlusion sensitivity of jet images (sliding patch)
``track_dropping``          change of the output when one sequence slot is dropped
``saliency``                gradient of the output with respect to the input
``integrated_gradients``    integrated gradients from a baseline
``gradcam``                 Grad-CAM of the last convolution layer
``activation_maximization`` inputs that maximise chosen neurons / filters
``surrogate``               shallow decision tree mimicking the network (fidelity, rules)
``feature_maps``            CNN: first-convolution filters, feature maps per jet and per class
==========================  ===========================================================

Examples
--------
>>> import hepnn.explain
>>> "shap" in hepnn.explain.EXPLAINERS
True
>>> expl = hepnn.explain.explain(model, {"jet": x}, method="saliency")  # doctest: +SKIP
>>> expl.mean_abs()["jet"].shape  # doctest: +SKIP
(4,)
"""

from __future__ import annotations

from .explanation import Explanation
from .registry import EXPLAINERS, explain, register_explainer

# registering: each module holds one explainer and imports nothing heavy at import time
from . import activation, dropping, feature_maps, gradcam, gradients, occlusion, permutation, shap_values, surrogate  # noqa: E402,F401,I001
from .run import explain_run  # noqa: E402

__all__ = ["EXPLAINERS", "Explanation", "explain", "explain_run", "register_explainer"]
