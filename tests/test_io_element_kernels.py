"""The compiled padding (and standardisation on the way) gives numpy's arrays, bit for bit."""

import numpy as np
import pytest

from hepnn.io import representations
from hepnn.io.representations import ElementRows
from hepnn.preprocessing import Preprocessor


def _rows(rng, n_jets, n_features, dtype, ndim=2):
    counts = rng.poisson(rng.uniform(0, 40), n_jets)
    counts[rng.random(n_jets) < 0.2] = 0
    values = rng.normal(3, 2, (int(counts.sum()), n_features)) * 10.0 ** rng.integers(-4, 5, (int(counts.sum()), n_features))
    values = values.astype(dtype)
    return counts, values[:, 0] if ndim == 1 else values


@pytest.mark.parametrize("pad_value", [0.0, -1.0, -0.0, 7.5])
@pytest.mark.parametrize("case", [(0, 3, np.float32, 2), (1, 4, np.float32, 2), (300, 7, np.float32, 2),
                                  (2000, 3, np.float64, 2), (500, 1, np.float32, 1)])
def test_compiled_padding_equals_numpy(monkeypatch, pad_value, case):
    n_jets, n_features, dtype, ndim = case
    rng = np.random.default_rng(n_jets + n_features)
    counts, features = _rows(rng, n_jets, n_features, dtype, ndim)
    for max_length in (1, 15, 60):
        rows = ElementRows(features, counts, max_length, pad_value)
        monkeypatch.setattr(representations, "_COMPILED_PAD_VALUES", 10**12)
        x, mask = rows.pad()
        monkeypatch.setattr(representations, "_COMPILED_PAD_VALUES", 0)
        cx, cmask = rows.pad()
        assert cx.dtype == np.float32 and cx.tobytes() == x.tobytes() and cmask.tobytes() == mask.tobytes()


@pytest.mark.parametrize("max_length", [5, 30])
def test_standardised_while_padded_equals_transform_then_pad(max_length):
    rng = np.random.default_rng(max_length)
    counts, features = _rows(rng, 3000, 7, np.float32)
    pre = Preprocessor({"c": {"kind": "sequence", "variables": list("abcdefg"), "standardize": True}})
    pre.fit({"c": features[:, None, :], "c_mask": np.ones((len(features), 1), bool)})
    rows = ElementRows(features, counts, max_length, -1.0)
    expected = rows.with_features(pre.transform_elements("c", features, rows.kept())).pad()
    mean, scale = pre.affine("c", 7)
    assert not (mean == 0).all() and not (scale == 1).all()
    got = rows.pad(mean, scale)
    assert got[0].tobytes() == expected[0].tobytes() and got[1].tobytes() == expected[1].tobytes()
    logged = Preprocessor({"c": {"kind": "sequence", "variables": ["a"], "transforms": {"a": {"log": True}}}})
    assert logged.affine("c", 1) is None
