"""hepnn.io.load pads in-order sequence inputs as their features are computed (DeferredElements)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.exceptions import InputDataError
from hepnn.io import representations
from hepnn.io.representations import DeferredElements, ElementRows, standardise_padded
from test_io_fixtures import PER_JET_YAML, per_jet_data, write_tree
from test_io_load import _old_load, assert_same_as_streamed


def _small_blocks(monkeypatch, threads: int = 2):
    """Many blocks of a few elements, the compiled loops even for tiny inputs, two threads."""
    monkeypatch.setattr(representations, "_FEATURE_BLOCK", 5)
    monkeypatch.setattr(representations, "_MIN_ELEMENTS_PER_THREAD", 1)
    monkeypatch.setattr(representations, "_COMPILED_PAD_VALUES", 0)
    monkeypatch.setenv("HEPNN_READER_THREADS", str(threads))


def _deferred(counts, features, max_length, pad_value):
    def compute(lo, hi, out):
        out[:] = features[lo:hi]

    return DeferredElements(counts, features.shape[1], max_length, pad_value, compute,
                            lambda: ElementRows(features, counts, max_length, pad_value))


def _jets(monkeypatch, compiled: bool, seed: int, max_count: int, n_features: int):
    """Element counts of 200 jets (some empty, the first three and the last) and float32 features."""
    if compiled:
        _small_blocks(monkeypatch)
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_count + 1, 200)
    counts[:3] = 0  # empty jets first: the first block still starts at jet 0
    counts[-1] = 0
    return counts, (rng.normal(size=(int(counts.sum()), n_features)) * 1e3).astype(np.float32), rng


@pytest.mark.parametrize("compiled", [False, True])
def test_fill_gives_the_padded_elements_bit_for_bit(monkeypatch, compiled):
    counts, features, _ = _jets(monkeypatch, compiled, 3, 8, 3)
    for max_length, pad_value in ((4, -1.0), (12, 0.0)):
        rows = _deferred(counts, features, max_length, pad_value)
        x = np.full((len(counts), max_length, 3), np.nan, np.float32)
        mask = np.zeros((len(counts), max_length), bool)
        rows.fill((x, mask))
        x_ref, mask_ref = ElementRows(features, counts, max_length, pad_value).pad()
        np.testing.assert_array_equal(x.view(np.uint32), x_ref.view(np.uint32))
        np.testing.assert_array_equal(mask, mask_ref)
        assert mask.sum() == np.minimum(counts, max_length).sum()


@pytest.mark.parametrize("compiled", [False, True])
def test_standardise_padded_matches_standardising_while_padding(monkeypatch, compiled):
    counts, features, rng = _jets(monkeypatch, compiled, 4, 6, 4)
    mean, scale = rng.normal(size=4) * 100, rng.uniform(0.1, 50, 4)
    x, mask = ElementRows(features, counts, 5, -2.0).pad()
    raw = x[mask]
    standardise_padded(x, mask, mean, scale)
    x_ref, _ = ElementRows(features, counts, 5, -2.0)._pad_compiled(features, mean, scale)
    np.testing.assert_array_equal(x.view(np.uint32), x_ref.view(np.uint32))
    assert (x[~mask] == -2.0).all()
    np.testing.assert_array_equal(x[mask], ((raw.astype(np.float64) - mean) / scale).astype(np.float32))


def _ordered_per_jet(tmp_path, n=120, nan_at=None):
    """The per-jet fixture with constituents stored by decreasing pT (as generators write them)."""
    for name, seed in (("top", 1), ("qcd", 2)):
        data = per_jet_data(n, seed=seed, n_max=14)
        order = ak.argsort(data["part_pt"], ascending=False, stable=True)
        for key in [k for k in data if k.startswith("part_")]:
            data[key] = data[key][order]
        if nan_at is not None and name == "qcd":
            # the energy: not in the sort key (log_pt), so the deferred features find it
            energy = ak.to_numpy(ak.flatten(data["part_energy"])).copy()
            energy[nan_at] = np.nan
            data["part_energy"] = ak.unflatten(energy, ak.num(data["part_pt"]))
        write_tree(tmp_path / f"{name}.root", "jets", data)
    config = tmp_path / "config.yaml"
    config.write_text("\n".join(line for line in PER_JET_YAML.splitlines() if "image:" not in line))
    return config


def _spy(monkeypatch):
    calls = []
    fill = DeferredElements.fill

    def counted(self, out):
        calls.append(len(self))
        return fill(self, out)

    monkeypatch.setattr(DeferredElements, "fill", counted)
    return calls


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("max_length", [6, 100])
def test_load_pads_in_order_elements_as_computed_bit_identically(tmp_path, monkeypatch, compiled, max_length):
    if compiled:
        _small_blocks(monkeypatch)
    calls = _spy(monkeypatch)
    config = hepnn.load_config(_ordered_per_jet(tmp_path), [
        "data.step_size=50", f"data.inputs.particles.max_length={max_length}", "data.inputs.particles.pad_value=-1.0",
    ])
    for standardize in (True, False):
        calls.clear()
        data = hepnn.io.load(config, standardize=standardize)
        # every chunk (50 entries of two 120-jet files) written straight into its rows
        assert sum(calls) == data.n_jets and len(calls) >= 5
        assert_same_as_streamed(data, config, standardize)
        x, mask, train = data["particles"], data["particles_mask"], data["split"] == 0
        assert data.preprocessing.n_samples_["particles"] == int(mask[train].sum())
        assert (x[~mask] == -1).all() and (mask.sum(axis=1) == max_length).any() == (max_length == 6)
        if standardize:  # mean 0 and variance 1 over the real slots of the training jets
            np.testing.assert_allclose(x[mask & train[:, None]].mean(axis=0), 0, atol=1e-5)
            np.testing.assert_allclose(x[mask & train[:, None]].std(axis=0), 1, rtol=1e-4)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_bad_value_in_deferred_elements_is_the_readers_error(tmp_path, monkeypatch, compiled):
    if compiled:
        _small_blocks(monkeypatch)
    path = _ordered_per_jet(tmp_path, nan_at=40)
    config = hepnn.load_config(path, [])
    with pytest.raises(InputDataError) as streamed:
        list(hepnn.io.iterate(config))
    calls = _spy(monkeypatch)
    with pytest.raises(InputDataError) as loaded:
        hepnn.io.load(config)
    assert calls  # found while load fills the padded rows
    assert str(loaded.value) == str(streamed.value)
    assert "qcd.root" in str(loaded.value) and "NaN" in str(loaded.value)
    # replaced: the same values as the padded chunks of iterate
    replace = hepnn.load_config(path, ["data.on_nan=replace", "data.nan_value=-7.0"])
    data = hepnn.io.load(replace, standardize=False)
    old, _ = _old_load(replace, False)
    np.testing.assert_array_equal(data["particles"].view(np.uint32), old["particles"].view(np.uint32))
    assert (data["particles"] == -7.0).any()


def test_files_that_may_be_skipped_are_built_while_read(tmp_path, monkeypatch):
    # data.skip_bad_files: a file's error must come while it is read, so its elements are not deferred
    calls = _spy(monkeypatch)
    path = _ordered_per_jet(tmp_path)
    data = hepnn.io.load(hepnn.load_config(path, ["data.skip_bad_files=true"]))
    assert calls == []
    reference = hepnn.io.load(hepnn.load_config(path))
    assert len(calls) == 2  # one chunk per file
    for key in reference:
        np.testing.assert_array_equal(np.ascontiguousarray(data[key]).view(np.uint8),
                                      np.ascontiguousarray(reference[key]).view(np.uint8), err_msg=key)
