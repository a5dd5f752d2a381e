"""The compiled standardisation fit gives numpy's numbers, bit for bit."""

import numpy as np
import pytest

from hepnn.preprocessing import Preprocessor, preprocessor
from hepnn.preprocessing._kernels import column_moments


@pytest.mark.parametrize("shape", [(1, 2), (3, 7), (8193, 2), (100_000, 7), (250_000, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_moments_equal_numpy(shape, dtype):
    rng = np.random.default_rng(shape[0])
    rows = (rng.exponential(1, shape) * 10.0 ** rng.integers(-6, 7, shape) - 3).astype(dtype)
    x = rows.astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    np.square(x, out=x)
    got_mean, got_m2 = column_moments(rows, np.ones(0, bool), False)
    assert got_mean.tobytes() == mean.tobytes() and got_m2.tobytes() == x.sum(axis=0).tobytes()
    select = rng.random(shape[0]) < 0.7
    select[0] = True
    x = rows[select].astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    np.square(x, out=x)
    got_mean, got_m2 = column_moments(rows, select, True)
    assert got_mean.tobytes() == mean.tobytes() and got_m2.tobytes() == x.sum(axis=0).tobytes()


def test_fit_with_and_without_the_compiled_loops_agree(monkeypatch):
    rng = np.random.default_rng(3)
    spec = {"c": {"kind": "sequence", "variables": ["a", "b", "d"], "standardize": True},
            "j": {"kind": "flat", "variables": ["x", "y"], "standardize": True}}
    chunks = [{"c": (rng.normal(5, 3, (n, 1, 3)) * 10.0 ** rng.integers(-3, 4, (n, 1, 3))).astype(np.float32),
               "c_mask": rng.random((n, 1)) < 0.8, "j": rng.normal(0, 1, (n, 2)).astype(np.float32)}
              for n in (40_000, 25_000, 1)]
    chunks[-1]["c_mask"][:] = False  # nothing selected

    def fit():
        pre = Preprocessor(spec).reset()
        for chunk in chunks:
            pre.partial_fit(chunk)
        return pre.to_dict()

    compiled = fit()
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", 10**12)
    assert fit() == compiled
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", 0)
    assert fit() == compiled


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_fit_parts_equals_the_fit_of_the_concatenation(monkeypatch, threshold):
    # load fits on its chunks: the same numbers to the last bit as one fit on them concatenated,
    # by the compiled loops (threshold 0) and by numpy (every part gathered, then concatenated)
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", threshold)
    rng = np.random.default_rng(5)
    spec = {"c": {"kind": "sequence", "variables": ["a", "b", "d"], "standardize": True},
            "j": {"kind": "flat", "variables": ["x", "y"], "standardize": True},
            "one": {"kind": "flat", "variables": ["z"], "standardize": True}}
    parts = [{"c": (rng.normal(5, 3, (n, 4, 3)) * 10.0 ** rng.integers(-3, 4, (n, 4, 3))).astype(np.float32),
              "c_mask": rng.random((n, 4)) < 0.8, "j": rng.normal(0, 1, (n, 2)).astype(np.float32),
              "one": rng.exponential(1, (n, 1)).astype(np.float32)}
             for n in (7000, 1, 0, 12000, 3)]
    parts[1]["c_mask"][:] = False  # nothing selected in one part
    parts[3]["c_mask"][:] = True  # every element real in another
    whole = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert Preprocessor(spec).fit_parts(parts).to_dict() == Preprocessor(spec).fit(whole).to_dict()
    # and a second fit_parts starts afresh
    pre = Preprocessor(spec).fit_parts(parts[:2])
    assert pre.fit_parts(parts).to_dict() == Preprocessor(spec).fit(whole).to_dict()


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_constant_and_non_finite_columns_by_both_paths(monkeypatch, threshold):
    # the compiled loops (threshold 0) and numpy: a constant column (whose mean has rounding) gets
    # scale 1, a NaN in a standardised column is an error naming it, padded NaN does not count
    from hepnn.exceptions import InputDataError

    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", threshold)
    rng = np.random.default_rng(7)
    spec = {"c": {"kind": "sequence", "variables": ["k", "v"], "standardize": True, "pad_value": 0.0}}
    x = np.stack([np.full((500, 3), 0.1), rng.normal(size=(500, 3))], axis=-1).astype(np.float32)
    mask = rng.random((500, 3)) < 0.7
    x[~mask] = np.nan
    pre = Preprocessor(spec).fit({"c": x, "c_mask": mask})
    assert pre.scale_["c"][0] == 1.0
    real = x[mask].astype(np.float64)
    np.testing.assert_allclose(pre.mean_["c"], real.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(pre.scale_["c"][1], real[:, 1].std(), rtol=1e-12)
    mask[~mask.all(axis=1).nonzero()[0][0]] = True  # one jet's padded (NaN) slots now count as real
    with pytest.raises(InputDataError, match=r"'c'.*'k', 'v'"):
        Preprocessor(spec).fit({"c": x, "c_mask": mask})
