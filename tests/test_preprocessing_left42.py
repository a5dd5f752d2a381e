"""Adversarial audit of the Preprocessor: edge cases a physicist's ntuples produce.

Each test failed before its fix (the wrong number or the deep traceback is named in it).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hepnn.exceptions import InputDataError
from hepnn.preprocessing import Preprocessor, preprocessor

FLAT = {"j": {"kind": "flat", "variables": ["pt", "eta"], "standardize": True}}
SEQ = {"s": {"kind": "sequence", "variables": ["e", "d"], "standardize": True, "pad_value": -1.0}}
IMG = {"i": {"kind": "image", "variables": [], "standardize": True}}


def _two_pass(x):
    """numpy's float64 two-pass mean and std (ddof=0) per column."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    return mean, np.sqrt(((x - mean) ** 2).mean(axis=0))


@pytest.mark.parametrize("threshold", [0, 10**12])  # compiled loops, numpy
@pytest.mark.parametrize("chunks", [1, 7])
def test_a_tiny_spread_on_a_large_mean_keeps_its_scale(monkeypatch, threshold, chunks):
    # before: 1e6 GeV +- 1e-6 had scale 1 (taken for a constant column: std below n * eps * |mean|),
    # so the standardised feature stayed ~1e-6 wide instead of 1
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", threshold)
    rng = np.random.default_rng(0)
    x = np.c_[1e6 + 1e-6 * rng.normal(size=20_000), 1e6 + 1e-3 * rng.normal(size=20_000), np.full(20_000, 0.1)]
    spec = {"j": {"kind": "flat", "variables": ["a", "b", "c"], "standardize": True}}
    pre = Preprocessor(spec).reset()
    for part in np.array_split(x, chunks):
        pre.partial_fit({"j": part})
    mean, std = _two_pass(x)  # numpy's float64 two-pass numbers
    exact = [math.fsum(col) / len(col) for col in x.T]  # and exactly rounded means
    exact_std = [math.sqrt(math.fsum((col - m) ** 2) / len(col)) for col, m in zip(x.T, exact)]
    np.testing.assert_allclose(pre.mean_["j"], mean, rtol=1e-12)
    # the means' rounding (~1e-8 here: n * eps * 1e6) shifts the spread by (rounding / std)**2 ~ 1e-4
    np.testing.assert_allclose(pre.scale_["j"][:2], std[:2], rtol=1e-4)
    np.testing.assert_allclose(pre.scale_["j"][:2], exact_std[:2], rtol=1e-4)
    assert pre.scale_["j"][2] == 1.0  # the constant column still gets scale 1
    out = pre.transform({"j": x})["j"]
    np.testing.assert_allclose(out[:, :2].std(axis=0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-6)


def test_what_is_constant_survives_save_and_load(tmp_path):
    # a fit resumed after load decides "constant" as the uninterrupted fit does
    rng = np.random.default_rng(1)
    a = {"j": np.c_[1e6 + 1e-6 * rng.normal(size=5000), np.zeros(5000)]}
    b = {"j": np.c_[1e6 + 1e-6 * rng.normal(size=5000), np.zeros(5000)]}
    direct = Preprocessor(FLAT).partial_fit(a).partial_fit(b)
    resumed = Preprocessor.load(Preprocessor(FLAT).fit(a).save(tmp_path / "p.json")).partial_fit(b)
    assert resumed.scale_ == direct.scale_ and resumed.mean_ == direct.mean_
    assert 5e-7 < resumed.scale_["j"][0] < 2e-6 and resumed.scale_["j"][1] == 1.0


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_two_chunks_constant_at_neighbouring_values_vary(monkeypatch, threshold):
    # 1e6 in one chunk, the next float64 after it in the other: not constant (before: scale 1)
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", threshold)
    step = np.nextafter(1e6, 2e6)
    a, b = np.full((300, 2), 1e6), np.full((100, 2), 1e6)
    b[:, 0] = step
    pre = Preprocessor(FLAT).partial_fit({"j": a}).partial_fit({"j": b})
    whole = np.r_[a, b]
    assert pre.scale_["j"][1] == 1.0
    exact = (step - 1e6) * math.sqrt(0.25 * 0.75)  # a quarter of the values one step up
    np.testing.assert_allclose(pre.scale_["j"][0], exact, rtol=1e-6)
    assert Preprocessor(FLAT).fit_parts([{"j": a}, {"j": b}]).scale_ == Preprocessor(FLAT).fit({"j": whole}).scale_
    out = pre.transform({"j": whole})["j"][:, 0]
    np.testing.assert_allclose(out.std(), 1.0, rtol=1e-3)


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_empty_image_chunks_fit_and_transform(monkeypatch, threshold):
    # before: ValueError "cannot reshape array of size 0 into shape (0,newaxis)"
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", threshold)
    rng = np.random.default_rng(2)
    images = rng.exponential(1.0, (30, 3, 3, 2))
    parts = [{"i": images[:10]}, {"i": images[:0]}, {"i": images[10:11]}, {"i": images[11:]}]
    whole = Preprocessor(IMG).fit({"i": images})
    assert Preprocessor(IMG).fit_parts(parts).to_dict() == whole.to_dict()
    streamed = Preprocessor(IMG).partial_fit({"i": images[:0]})
    for part in parts:
        streamed.partial_fit(part)
    np.testing.assert_allclose(streamed.scale_["i"], _two_pass(images.reshape(30, -1))[1], rtol=1e-12)
    assert whole.transform({"i": images[:0]})["i"].shape == (0, 3, 3, 2)


def test_partial_fit_with_chunks_of_one_and_empty_chunks_equals_fit():
    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, (40, 4, 2))
    mask = rng.random((40, 4)) < 0.6
    data = {"s": x, "s_mask": mask}
    full = Preprocessor(SEQ).fit(data)
    streamed = Preprocessor(SEQ)
    for a, b in [(0, 0), (0, 1), (1, 1), (1, 2), (2, 17), (17, 17), (17, 40)]:
        streamed.partial_fit({k: v[a:b] for k, v in data.items()})
    real = x[mask]
    mean, std = _two_pass(real)
    assert streamed.n_samples_["s"] == full.n_samples_["s"] == len(real)
    np.testing.assert_allclose(streamed.mean_["s"], mean, rtol=1e-13)
    np.testing.assert_allclose(streamed.scale_["s"], std, rtol=1e-13)
    np.testing.assert_allclose(full.scale_["s"], std, rtol=1e-13)


def test_a_sequence_input_that_is_all_padding_is_an_error_at_transform():
    # before: mean 0 and scale 1 silently, the raw values went to the model as if standardised
    x = np.ones((4, 3, 2))
    pre = Preprocessor(SEQ).fit({"s": x, "s_mask": np.zeros((4, 3), bool)})
    assert pre.n_samples_["s"] == 0
    with pytest.raises(InputDataError, match=r"input 's' is standardised but had no values .*every sequence slot"):
        pre.transform({"s": x * 5, "s_mask": np.ones((4, 3), bool)})
    with pytest.raises(InputDataError, match=r"input 's' is standardised but had no values"):
        pre.transform_elements("s", x[0])
    # nothing real to standardise now either: padding at pad_value, as a jet without tracks
    out = pre.transform({"s": x, "s_mask": np.zeros((4, 3), bool)})["s"]
    assert (out == -1.0).all()
    assert pre.transform_elements("s", x[0], np.zeros(3, bool)).shape == (3, 2)
    # the padding-free path of hepnn.io.load asks with the number of values it will standardise
    with pytest.raises(InputDataError, match=r"input 's' is standardised but had no values"):
        pre.affine("s", 2, n_values=3)
    assert [v.tolist() for v in pre.affine("s", 2, n_values=0)] == [[0.0, 0.0], [1.0, 1.0]]
    # a later chunk with real elements completes the fit
    pre.partial_fit({"s": x * 3, "s_mask": np.ones((4, 3), bool)})
    assert pre.mean_["s"] == [3.0, 3.0] and pre.scale_["s"] == [1.0, 1.0]


def test_a_standardised_input_missing_from_the_fit_is_an_error():
    # before: fitted without input 'j', transform passed 'j' through unstandardised
    spec = {**FLAT, **SEQ}
    pre = Preprocessor(spec).fit({"s": np.ones((2, 3, 2)), "s_mask": np.ones((2, 3), bool)})
    with pytest.raises(InputDataError, match=r"input 'j' is standardised but was not in the data given to fit"):
        pre.transform({"j": np.ones((2, 2))})


def test_a_mask_of_the_wrong_shape_is_an_error_naming_it():
    # before: an all-True mask of the wrong shape was ignored (statistics over every slot), a partial one
    # gave numpy's "boolean index did not match"
    for mask in (np.ones((4, 2), bool), np.eye(4, 2, dtype=bool)):
        with pytest.raises(InputDataError, match=r"input 's': its mask 's_mask' has shape \(4, 2\).*\(4, 3\)"):
            Preprocessor(SEQ).fit({"s": np.ones((4, 3, 2)), "s_mask": mask})


def test_arrays_without_the_axes_of_their_kind_are_an_error_naming_the_input():
    # before: "operands could not be broadcast together with shapes (2,) (5,)"
    with pytest.raises(InputDataError, match=r"input 'j' \(flat\).*\(n_jets, n_variables\).*\(5,\)"):
        Preprocessor(FLAT).fit({"j": np.ones(5)})
    pre = Preprocessor(FLAT).fit({"j": np.random.default_rng(4).normal(size=(5, 2))})
    with pytest.raises(InputDataError, match=r"input 'j' \(flat\)"):
        pre.transform({"j": np.ones(2)})


def test_parts_and_chunks_of_different_widths_or_inputs_are_errors():
    # before: KeyError 'j', numpy broadcasting errors, and a fit on 3 columns for 2 variables accepted
    a, b = {"j": np.ones((3, 2))}, {"j": np.ones((3, 3))}
    with pytest.raises(InputDataError, match=r"fit_parts: part 1 has no input 'j'"):
        Preprocessor(FLAT).fit_parts([a, {"x": np.ones(3)}])
    with pytest.raises(InputDataError, match=r"input 'j': part 1 has 3 values per jet"):
        Preprocessor(FLAT).fit_parts([a, b])
    for fitted in (Preprocessor(FLAT), Preprocessor(FLAT).partial_fit(a)):
        with pytest.raises(InputDataError, match=r"input 'j': 3 values per element .* variables are \['pt', 'eta'\]"):
            fitted.partial_fit(b)
    small, large = {"i": np.ones((2, 2, 2, 1))}, {"i": np.ones((2, 3, 3, 1))}
    with pytest.raises(InputDataError, match=r"input 'i': this chunk has 9 values per jet, the fit so far 4"):
        Preprocessor(IMG).partial_fit(small).partial_fit(large)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_at_transform_are_an_error_naming_input_and_variable(bad):
    # before: NaN / inf came out of transform silently
    rng = np.random.default_rng(5)
    pre = Preprocessor(FLAT).fit({"j": rng.normal(size=(20, 2))})
    x = rng.normal(size=(6, 2))
    x[3, 1] = bad
    with pytest.raises(InputDataError, match=r"input 'j': 1 NaN or infinite values after preprocessing in 'eta'.*"
                                             r"the input holds NaN or infinite values"):
        pre.transform({"j": x})


def test_float32_overflow_of_the_standardisation_is_an_error():
    # before: (x - mean) / scale beyond 3.4e38 became inf in the float32 output, silently
    pre = Preprocessor(FLAT).fit({"j": np.array([[0.0, 0.0], [1e-30, 1.0]])})
    assert pre.scale_["j"][0] == 5e-31
    with pytest.raises(InputDataError, match=r"'pt' \(e.g. 1e\+10 -> inf\).*beyond float32's range"):
        pre.transform({"j": np.array([[1e10, 0.5]])})
    np.testing.assert_allclose(pre.transform({"j": np.array([[1e-30, 0.5]])})["j"], [[1.0, 0.0]])


@pytest.mark.parametrize("blocks", [False, True])
def test_non_finite_padding_and_untouched_columns_pass(monkeypatch, blocks):
    # NaN in padded slots (any pad value) or in a variable the preprocessing does not change is not an error
    if blocks:
        monkeypatch.setattr(preprocessor, "_JETS_PER_BLOCK", 3)
    spec = {"s": {"kind": "sequence", "variables": ["e", "raw"], "standardize": False, "pad_value": float("nan"),
                  "transforms": {"e": {"standardize": True}}}}
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 3, 2))
    mask = np.ones((8, 3), bool)
    mask[::2, 2] = False
    x[~mask] = np.inf
    x[1, 1, 1] = np.nan
    pre = Preprocessor(spec).fit({"s": x, "s_mask": mask})
    out = pre.transform({"s": x, "s_mask": mask})["s"]
    assert np.isnan(out[~mask]).all() and np.isnan(out[1, 1, 1])
    mean, std = _two_pass(x[mask][:, 0])
    np.testing.assert_allclose(out[mask][:, 0], (x[mask][:, 0] - mean) / std, rtol=1e-5)
    x[1, 0, 0] = np.nan  # a real element of the standardised variable
    with pytest.raises(InputDataError, match=r"input 's': 1 NaN or infinite values after preprocessing in 'e'"):
        pre.transform({"s": x, "s_mask": mask})
    with pytest.raises(InputDataError, match=r"input 's': 1 NaN"):
        pre.transform_elements("s", x[mask])


def test_save_load_gives_bit_identical_transforms(tmp_path):
    rng = np.random.default_rng(7)
    spec = {"j": {"kind": "flat", "variables": ["pt", "eta"], "standardize": True,
                  "transforms": {"pt": {"log": True, "clip": [0.0, 7.0]}}}, **SEQ, **IMG}
    mask = rng.random((30, 3)) < 0.7
    data = {"j": np.c_[rng.exponential(50, 30) + 1, rng.normal(size=30)], "s": rng.normal(3, 1e-3, (30, 3, 2)) * 1e5,
            "s_mask": mask, "i": rng.random((30, 2, 2, 1)).astype(np.float32)}
    pre = Preprocessor(spec).fit(data)
    again = Preprocessor.load(pre.save(tmp_path / "p.json"))
    assert again.to_dict() == pre.to_dict()
    new, old = again.transform(data), pre.transform(data)
    for name in ("j", "s", "i"):
        assert new[name].tobytes() == old[name].tobytes()


def _edited(tmp_path, edit):
    rng = np.random.default_rng(8)
    record = Preprocessor(FLAT).fit({"j": rng.normal(size=(10, 2))}).to_dict()
    edit(record)
    path = tmp_path / "pre.json"
    path.write_text(json.dumps(record))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["scale_"].update(j=[0.0, 1.0]), r"scale_.j: expected finite means .* scales > 0"),
    (lambda d: d["scale_"].update(j=[-2.0, 1.0]), r"scale_.j: expected finite means .* scales > 0"),
    (lambda d: d["mean_"].update(j=[float("nan"), 1.0]), r"mean_.j / scale_.j"),
    (lambda d: d["scale_"].update(j=["abc", 1.0]), r"key scale_.j: expected a list of numbers"),
    (lambda d: d["scale_"].update(j=[1.0]), r"key scale_.j: 1 values, but mean_.j has 2"),
    (lambda d: d["scale_"].pop("j"), r"key scale_.j: missing"),
    (lambda d: d["mean_"].update(k=["x"]), r"key mean_.k: expected a list of numbers"),
    (lambda d: d["n_samples_"].update(j=-3), r"key n_samples_.j: expected a whole number >= 0, received -3"),
    (lambda d: d["m2_"].update(j=[1.0]), r"key m2_.j: 1 values"),
    (lambda d: d["constant_"].update(j=[None]), r"key constant_.j: 1 values"),
    (lambda d: d["constant_"].update(j="x"), r"key constant_.j: expected a list of numbers"),
    (lambda d: d.update(mean_=[1.0]), r"key mean_: expected a mapping"),
    (lambda d: d.update(inputs=["j"]), r"key 'inputs': expected a mapping"),
    (lambda d: d["inputs"]["j"].update(transforms={"pt": {"clip": [5.0, 1.0]}}),
     r"key inputs.j.transforms.pt.clip: expected \[low, high\] with low < high, received \[5.0, 1.0\]"),
    (lambda d: d["inputs"]["j"].update(transforms={"pt": {"log": True, "log1p": True}}),
     r"key inputs.j.transforms.pt: log and log1p both set"),
    (lambda d: d["inputs"]["j"].update(transforms=["pt"]), r"key inputs.j: expected 'variables' a list"),
    (lambda d: d.update(format="hepnn.preprocessing.Preprocessor/2"), r"expected format .*/1.*received .*/2"),
])
def test_a_hand_edited_file_is_an_error_naming_the_file_and_key(tmp_path, edit, message):
    # before: scale 0 gave inf, a negative scale flipped the sign, NaN gave NaN, a missing scale left
    # the input unscaled, a string gave numpy's "ufunc 'square' not supported", clip [5, 1] set every
    # value to 1, transforms as a list gave AttributeError
    path = _edited(tmp_path, edit)
    with pytest.raises(InputDataError, match=message) as info:
        Preprocessor.load(path)
    assert str(path) in str(info.value)


def test_a_truncated_file_is_an_error_naming_it(tmp_path):
    path = _edited(tmp_path, lambda d: None)
    path.write_text(path.read_text()[:-40])
    with pytest.raises(InputDataError, match=r"pre.json: damaged or not a hepnn preprocessing file"):
        Preprocessor.load(path)


def test_a_file_without_constant_still_loads_and_resumes(tmp_path):
    # files written before constant_: constant columns found by the old rule, NaN means of unused columns allowed
    spec = {"j": {"kind": "flat", "variables": ["pt", "raw"], "standardize": False,
                  "transforms": {"pt": {"standardize": True}}}}
    x = np.c_[np.r_[np.zeros(10), 1.0], np.r_[np.full(10, np.nan), 1.0]]
    record = Preprocessor(spec).fit({"j": x}).to_dict()
    assert record["mean_"]["j"][1] != record["mean_"]["j"][1]  # NaN in the variable that is not standardised
    assert record["constant_"]["j"] == [None, None]
    record.pop("constant_")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(record))
    pre = Preprocessor.load(path).partial_fit({"j": np.c_[np.ones(11), np.ones(11)]})
    mean, std = _two_pass(np.r_[np.zeros(10), 1.0, np.ones(11)])
    np.testing.assert_allclose(pre.mean_["j"][0], mean, rtol=1e-14)
    np.testing.assert_allclose(pre.scale_["j"][0], std, rtol=1e-14)


def test_a_log_of_nan_is_named_as_nan():
    # before: "log of 1 non-positive values (e.g. nan)"
    spec = {"j": {"kind": "flat", "variables": ["pt"], "transforms": {"pt": {"log": True}}}}
    with pytest.raises(InputDataError, match=r"log of 1 non-positive or NaN values \(e.g. nan\).*data.on_nan"):
        Preprocessor(spec).fit({"j": np.array([[1.0], [np.nan]])})
    with pytest.raises(InputDataError, match=r"log of 1 non-positive values \(e.g. 0\)"):
        Preprocessor(spec).fit({"j": np.array([[1.0], [0.0]])})


def test_a_bad_chunk_leaves_the_fit_as_it_was():
    # before: the inputs before the bad one were already updated with the rejected chunk
    spec = {**FLAT, "k": {"kind": "flat", "variables": ["m"], "standardize": True}}
    rng = np.random.default_rng(9)
    good = {"j": rng.normal(size=(10, 2)), "k": rng.normal(size=(10, 1))}
    pre = Preprocessor(spec).fit(good)
    before = pre.to_dict()
    bad = {"j": rng.normal(size=(5, 2)), "k": np.full((5, 1), np.nan)}
    with pytest.raises(InputDataError, match=r"input 'k': NaN or infinite values in 'm'"):
        pre.partial_fit(bad)
    assert pre.to_dict() == before


def test_a_float64_value_beyond_float32_is_an_error_even_where_nothing_is_standardised():
    # before: 1e39 in a variable the preprocessing leaves alone became inf in the float32 output
    spec = {"j": {"kind": "flat", "variables": ["pt", "raw"], "standardize": False,
                  "transforms": {"pt": {"standardize": True}}},
            "s": {"kind": "sequence", "variables": ["raw"], "standardize": False, "pad_value": 0.0}}
    x = np.c_[np.arange(4.0), np.ones(4)]
    seq, mask = np.ones((4, 2, 1)), np.ones((4, 2), bool)
    pre = Preprocessor(spec).fit({"j": x, "s": seq, "s_mask": mask})
    x[2, 1] = 1e39
    with pytest.raises(InputDataError, match=r"input 'j': 1 NaN or infinite values after preprocessing in 'raw' "
                                             r"\(e.g. 1e\+39 -> inf\).*beyond float32's range"):
        pre.transform({"j": x})
    seq[1, 1, 0] = -1e39
    with pytest.raises(InputDataError, match=r"input 's': 1 NaN or infinite .* in 'raw'"):
        pre.transform({"s": seq, "s_mask": mask})
    with pytest.raises(InputDataError, match=r"input 's': 1 NaN or infinite .* in 'raw'"):
        pre.transform_elements("s", seq[mask])
    mask[1, 1] = False  # padded: overwritten by the pad value, not an error
    assert (pre.transform({"s": seq, "s_mask": mask})["s"][mask] == 1.0).all()
    x[2, 1] = np.inf  # infinite in the input of a variable left alone: passed through, as documented
    assert pre.transform({"j": x})["j"][2, 1] == np.inf


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_many_constant_columns_images_and_masked_sequences(monkeypatch, threshold):
    # more than 8 constant columns (one pass over all columns) and a few (column by column), masked
    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", threshold)
    rng = np.random.default_rng(10)
    images = np.zeros((50, 4, 4, 1))
    images[:, :2, :3, 0] = rng.exponential(1.0, (50, 2, 3))  # 6 pixels vary, 10 stay 0
    images[:25, 3, 3, 0], images[25:, 3, 3, 0] = 1e6, np.nextafter(1e6, 2e6)  # varies by one step
    pre = Preprocessor(IMG).fit_parts([{"i": images[:25]}, {"i": images[25:]}])
    std = _two_pass(images.reshape(50, -1))[1]
    varies = np.zeros(16, bool)
    varies[[0, 1, 2, 4, 5, 6, 15]] = True
    # numpy's two-pass numbers (for pixel 15: one ulp of 1e6 in its mean, so ~8e-11, not the exact 5.8e-11)
    np.testing.assert_allclose(np.array(pre.scale_["i"])[varies], std[varies], rtol=1e-12)
    assert 5e-11 < pre.scale_["i"][15] < 1e-10
    assert all(s == 1.0 for s in np.array(pre.scale_["i"])[~varies])
    for n_constant in (3, 10):
        spec = {"s": {"kind": "sequence", "variables": [f"v{k}" for k in range(n_constant + 1)], "standardize": True}}
        x = np.full((60, 3, n_constant + 1), 5.0)
        mask = rng.random((60, 3)) < 0.5
        x[..., -1] = rng.normal(size=(60, 3))
        x[~mask] = 99.0  # padding: not constant with the real values, never counted
        fitted = Preprocessor(spec).fit({"s": x, "s_mask": mask})
        assert fitted.scale_["s"][:-1] == [1.0] * n_constant
        np.testing.assert_allclose(fitted.scale_["s"][-1], x[mask][:, -1].std(), rtol=1e-12)


def test_load_refuses_elements_of_an_input_whose_fit_saw_none():
    """``hepnn.io.load`` standardises sequences while padding them (``Preprocessor.affine``): a fit
    without any element of the input (training jets without tracks) gave mean 0 and scale 1 to the
    elements of the other splits, silently."""
    from hepnn.exceptions import InputDataError
    from hepnn.io.load import _assembled
    from hepnn.io.representations import ElementRows
    from hepnn.preprocessing import Preprocessor

    pre = Preprocessor({"trk": {"kind": "sequence", "variables": ["a", "b"], "standardize": True}})
    pre.fit_parts([{"trk": np.zeros((3, 4, 2), np.float32), "trk_mask": np.zeros((3, 4), bool)}])

    def chunks(counts):
        n = int(np.sum(counts))
        features = np.arange(2 * n, dtype=np.float32).reshape(n, 2) + 100
        return [{"trk": ElementRows(features, np.asarray(counts, dtype=np.int64), 4, 0.0), "label": np.zeros(len(counts))}]

    with pytest.raises(InputDataError, match="'trk' is standardised but had no values"):
        _assembled(chunks([2, 3]), pre, True)
    out = _assembled(chunks([0, 0]), pre, True)  # nothing to standardise: passes
    assert not out["trk_mask"].any() and (out["trk"] == 0).all()


def test_transforms_entries_with_every_setting_off_need_no_fit():
    """A config writes every key of a transforms entry; all off, the input has nothing to fit
    (it was fitted: a float64 copy of every value, for mean 0 and scale 1)."""
    off = {"abs": False, "log": False, "log1p": False, "clip": None, "standardize": False}
    spec = {"s": {"kind": "sequence", "variables": ["e", "d"], "standardize": False, "transforms": {"e": off, "d": off}}}
    pre = Preprocessor(spec)
    assert not pre.fits("s")
    for key, value in (("log", True), ("abs", True), ("log1p", True), ("clip", [0.0, 1.0]), ("standardize", True)):
        on = dict(spec["s"], transforms={"e": off, "d": dict(off, **{key: value})})
        assert Preprocessor({"s": on}).fits("s"), key
    x = np.arange(24, dtype=np.float32).reshape(2, 6, 2)
    pre.fit({"s": x, "s_mask": np.ones((2, 6), bool)})
    assert pre.is_identity()
    np.testing.assert_array_equal(pre.transform({"s": x, "s_mask": np.ones((2, 6), bool)})["s"], x)
