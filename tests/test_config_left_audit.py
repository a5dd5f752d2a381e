"""Config and reader inputs: the bugs an earlier audit left open, one test (or two) each.

1. labels from data.label and from file groups at once; 2. NaN labels under on_nan: error;
3. cuts on derived variables; 4. hard links listed twice; 5. class names from glob patterns;
6. pt, eta, phi constituents without energy; 7. jet-axis branches guessed per file;
8. variants that switch model.name.
"""

from __future__ import annotations

import math
import os

import awkward as ak
import numpy as np
import pytest

import hepnn.io
from hepnn.config import load_config, variant
from hepnn.exceptions import ConfigError, InputDataError
from hepnn.io.chunks import iterate_chunks
from hepnn.io.labels import class_names
from hepnn.io.sources import resolve_files
from test_io_fixtures import per_event_data, per_jet_data, write_tree

FLAT = {"hl": {"kind": "flat", "variables": ["jet_mass"]}}


def _two_groups(tmp_path, n=30):
    write_tree(tmp_path / "top.root", "jets", per_jet_data(n, seed=1))
    write_tree(tmp_path / "qcd.root", "jets", per_jet_data(n, seed=2))
    return {"directory": str(tmp_path), "inputs": FLAT,
            "files": [{"path": "top.root", "tree": "jets", "label": 1}, {"path": "qcd.root", "tree": "jets", "label": 0}]}


# --- 1. labels from a branch and from file groups --------------------------------------


@pytest.mark.parametrize("key, value", [("label", 1), ("name", "top")])
def test_file_group_labels_and_a_label_branch_are_one_error(key, value):
    """data.label silently won over the file groups' labels (and names): now an error naming both keys."""
    group = {"path": "top.root", key: value}
    data = {"files": [group], "label": {"branch": "jet_flavour", "classes": {"light": 0, "b": 5}}}
    with pytest.raises(ConfigError, match=rf"data\.files\[0\]\.{key}: data\.files\[0\]\.{key} \({value!r}\) and "
                                          r"data\.label \(classes from branch 'jet_flavour'\) both give"):
        load_config({"data": data})
    del group[key]  # labels from the branch alone: fine
    assert load_config({"data": data}).data.label.branch == "jet_flavour"


# --- 2. NaN labels ------------------------------------------------------------------------


def _nan_label_config(tmp_path, on_nan):
    data = per_jet_data(30, seed=3)
    flavour = data["jet_flavour"].astype(np.float64)
    flavour[[2, 7, 11]] = np.nan
    data["fl"] = flavour
    write_tree(tmp_path / "nanl.root", "jets", data)
    config = {"data": {"directory": str(tmp_path), "files": [{"path": "nanl.root", "tree": "jets"}], "on_nan": on_nan,
                       "label": {"branch": "fl", "classes": {"light": 0, "c": 4, "b": 5}}, "inputs": FLAT}}
    return config, flavour


def test_nan_labels_are_an_error_under_on_nan_error(tmp_path):
    config, _ = _nan_label_config(tmp_path, "error")
    with pytest.raises(InputDataError, match=r"nanl\.root: label branch 'fl' \(data\.label\.branch\) has 3 NaN"):
        hepnn.io.load(config, standardize=False)


def test_nan_labels_are_dropped_and_counted_under_replace(tmp_path):
    config, flavour = _nan_label_config(tmp_path, "replace")
    loaded = hepnn.io.load(config, standardize=False)
    kept = flavour[~np.isnan(flavour)]
    np.testing.assert_array_equal(loaded["label"], np.searchsorted([0, 4, 5], kept))
    nan_keys = [k for k in loaded.summary["dropped_labels"] if isinstance(k, float) and math.isnan(k)]
    assert len(nan_keys) == 1 and loaded.summary["dropped_labels"][nan_keys[0]] == 3


def test_a_nan_label_cut_away_is_no_error(tmp_path):
    """Only the labels of jets that pass data.cuts count: a NaN label on a jet cut away is harmless."""
    config, flavour = _nan_label_config(tmp_path, "error")
    data = per_jet_data(30, seed=3)
    data["fl"] = flavour
    data["keep"] = np.where(np.isnan(flavour), 0.0, 1.0)
    write_tree(tmp_path / "nanl.root", "jets", data)
    config["data"]["cuts"] = [{"variable": "keep", "min": 0.5}]
    loaded = hepnn.io.load(config, standardize=False)
    np.testing.assert_array_equal(loaded["label"], np.searchsorted([0, 4, 5], flavour[~np.isnan(flavour)]))


# --- 3. cuts on derived variables ---------------------------------------------------------


def test_a_cut_on_a_derived_variable_is_a_clear_error(tmp_path):
    data = _two_groups(tmp_path)
    data.update(jet_axis={"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi"},
                constituents={"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
                cuts=[{"variable": "log_pt", "min": 1.0}])
    with pytest.raises(ConfigError, match=r"data\.cuts\[0\]: 'log_pt' is a derived variable, computed per constituent, "
                                          r"and data\.cuts\[0\] takes jet-level branches only"):
        hepnn.io.load({"data": data})
    data["cuts"] = [{"variable": "jet_mass", "min": 100.0}]  # a jet-level branch
    loaded = hepnn.io.load({"data": data}, standardize=False)
    masses = np.concatenate([per_jet_data(30, seed=1)["jet_mass"], per_jet_data(30, seed=2)["jet_mass"]])
    np.testing.assert_allclose(np.sort(loaded["hl"][:, 0]), np.sort(masses[masses >= 100.0]).astype(np.float32))


# --- 4. hard links ------------------------------------------------------------------------


def test_a_hard_link_listed_twice_is_caught(tmp_path):
    data = _two_groups(tmp_path)
    os.link(tmp_path / "top.root", tmp_path / "top_copy.root")
    data["files"] = [{"path": "top.root", "tree": "jets", "label": 1}, {"path": "top_copy.root", "tree": "jets", "label": 1},
                     {"path": "qcd.root", "tree": "jets", "label": 0}]
    with pytest.raises(ConfigError, match=r"top_copy\.root \(tree 'jets'\): matched by data\.files\[0\] \('top\.root', "
                                          r"label 1\) \(as .*top\.root, the same file: hard links"):
        resolve_files(load_config({"data": data}).data)
    data["files"] = [{"path": "top*.root", "tree": "jets", "label": 1}, {"path": "qcd.root", "tree": "jets", "label": 0}]
    with pytest.raises(ConfigError, match=r"data\.files\[0\] \('top\*\.root'\): .*top_copy\.root and .*top\.root are "
                                          r"the same file \(hard links: the same device and inode\).* read twice"):
        resolve_files(load_config({"data": data}).data)
    (tmp_path / "top_copy.root").unlink()  # one name: every jet once
    assert len(hepnn.io.load({"data": data}, standardize=False)["label"]) == 60


# --- 5. class names from file patterns ----------------------------------------------------


def test_class_names_keep_dots_and_lose_glob_characters():
    files = [{"path": "ttbar_v1.2.root", "label": 0}, {"path": "qcd_?.root", "label": 1},
             {"path": "w_[0-9]*.root", "label": 2}, {"path": "samples/zprime/**/*.root", "label": 3},
             {"path": "*.root", "label": 4}]
    names = class_names(load_config({"data": {"files": files}}).data)
    assert names == ["ttbar_v1.2", "qcd", "w", "zprime", "class4"]
    assert not any(c in "".join(names) for c in "*?[]")
    one = load_config({"data": {"files": [{"path": "top_*_v[12].ROOT", "label": 0}, {"path": "b.root", "label": 1}]}})
    assert class_names(one.data) == ["top_v", "b"]


# --- 6. pt, eta, phi constituents without energy ------------------------------------------


def _polar(tmp_path, inputs, energy=None):
    data = _two_groups(tmp_path)
    constituents = {"pt": "part_pt", "eta": "part_eta", "phi": "part_phi"}
    if energy:
        constituents["energy"] = energy
    data.update(jet_axis={"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi"}, constituents=constituents, inputs=inputs)
    return {"data": data}


def test_images_from_pt_eta_phi_need_no_energy(tmp_path):
    image = {"img": {"kind": "image", "pixels": 9, "extent": 0.8}}
    without = hepnn.io.load(_polar(tmp_path, image), standardize=False)["img"]
    with_energy = hepnn.io.load(_polar(tmp_path, image, energy="part_energy"), standardize=False)["img"]
    assert without.shape == (60, 9, 9, 1) and without.sum() > 0
    np.testing.assert_array_equal(without, with_energy)


def test_an_energy_variable_without_energy_names_the_input(tmp_path):
    seq = {"seq": {"kind": "sequence", "variables": ["rel_eta", "log_e_frac"], "max_length": 5}}
    with pytest.raises(ConfigError, match=r"data\.inputs\.seq\.variables\[1\]: 'log_e_frac' needs the constituent energy.*"
                                          r"set data\.constituents\.energy or data\.constituents\.mass"):
        hepnn.io.load(_polar(tmp_path, seq))
    seq["seq"]["variables"] = ["rel_eta", "log_pt_frac", "delta_r"]  # no energy needed
    assert hepnn.io.load(_polar(tmp_path, seq), standardize=False)["seq"].shape == (60, 5, 3)


# --- 7. jet-axis branches guessed per file --------------------------------------------------


def _per_event_files(tmp_path, energy_in_second: bool):
    for i in range(2):
        events = per_event_data(20, seed=i)
        jets = {f: events["Jet"][f] for f in events["Jet"].fields}
        if i == 0 or energy_in_second:
            jets["energy"] = jets["pt"] * 2
        events["Jet"] = ak.zip(jets)
        write_tree(tmp_path / f"ev_{i}.root", "Events", events)
    return {"data": {"directory": str(tmp_path), "layout": "per_event", "files": [{"path": "ev_*.root", "tree": "Events"}],
                     "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
                     "inputs": {"tr": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx",
                                       "variables": ["Track_pt", "rel_eta"], "max_length": 5}}}}


def test_the_guessed_jet_energy_branch_is_the_same_in_every_file(tmp_path):
    config = _per_event_files(tmp_path, energy_in_second=False)
    match = (r"ev_1\.root: data\.jet_axis\.energy \(Jet\) would be read from no branch, while the dataset's first file "
             r".*ev_0\.root gives Jet_energy.*set data\.jet_axis explicitly")
    with pytest.raises(InputDataError, match=match):
        hepnn.io.load(config)
    second = resolve_files(load_config(config).data)[1]  # one file at a time (the streaming pipeline)
    with pytest.raises(InputDataError, match=match):
        next(iterate_chunks(config, files=[second]))
    config["data"]["jet_axis"] = {"pt": "Jet_pt", "eta": "Jet_eta", "phi": "Jet_phi"}  # chosen: no guess
    n_jets = len(hepnn.io.load(config, standardize=False)["label"])
    assert n_jets > 0


def test_files_with_the_same_branches_read_as_before(tmp_path):
    config = _per_event_files(tmp_path, energy_in_second=True)
    loaded = hepnn.io.load(config, standardize=False)
    chunks = [c for f in resolve_files(load_config(config).data) for c in iterate_chunks(config, files=[f])]
    np.testing.assert_array_equal(loaded["tr"], np.concatenate([c["tr"] for c in chunks]))


# --- 8. variants that switch model.name -----------------------------------------------------


def test_a_variant_switching_model_does_not_inherit_the_base_options():
    seq = {"kind": "sequence", "variables": ["pt"]}
    config = load_config({"data": {"inputs": {"img": {"kind": "image"}, "seq": seq, **FLAT}},
                          "model": {"name": "dense", "units": [4], "dropout": 0.2, "inputs": ["hl", "seq"]},
                          "variants": {"cnn": {"model": {"name": "cnn", "inputs": ["img"]}},
                                       "deep": {"model": {"name": "deepsets"}},
                                       "wider": {"model": {"units": [16]}}}})
    assert variant(config, "cnn").model.params == {}
    assert variant(config, "deep").model.inputs == ("hl", "seq") and variant(config, "deep").model.params == {}
    assert variant(config, "wider").model.params == {"units": [16], "dropout": 0.2}  # same model: inherited
    with pytest.raises(ConfigError, match=r"variants\.cnn\.model\.unitz: unknown option 'unitz' of model 'cnn'"):
        load_config({"data": {"inputs": {"img": {"kind": "image"}}}, "model": {"name": "dense", "units": [4]},
                     "variants": {"cnn": {"model": {"name": "cnn", "unitz": [8]}}}})
