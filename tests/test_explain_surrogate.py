"""Surrogate tree: faithful on a one-feature network, readable rules."""

from __future__ import annotations

import numpy as np

from hepnn.explain import explain
from test_explain_permutation import one_feature_model


def test_tree_mimics_a_one_feature_network():
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    e = explain(one_feature_model(), {"jet": x}, method="surrogate", max_depth=3,
                feature_names={"jet": ["pt", "eta", "mass", "tau21"]})
    assert e.extra["fidelity_r2"] > 0.9 and e.extra["fidelity_agreement"] > 0.9
    assert "mass" in e.extra["rules"] and "pt <=" not in e.extra["rules"]
    np.testing.assert_allclose(e.values["jet"].sum(axis=1) + e.base_values, e.extra["tree_outputs"], atol=1e-9)
    assert np.argmax(e.mean_abs()["jet"]) == 2
