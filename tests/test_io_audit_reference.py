"""The reader against slow, obviously correct references: loops over events and jets on plain lists.

Each test holds a case where ``hepnn.io.load`` or ``iterate`` gave wrong numbers or an unclear
error before (noted in the test), checked against a Python loop over what uproot reads.
"""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.exceptions import InputDataError
from test_io_fixtures import per_event_data, per_jet_data, write_tree


def _wrap(dphi: float) -> float:
    return (dphi + math.pi) % (2 * math.pi) - math.pi


def _reference_image(eta, phi, pt, pixels, extent):
    """One jet's pT image about the jet axis, no preprocessing: a loop over its elements."""
    img = np.zeros((pixels, pixels))
    width = 2 * extent / pixels
    for x, y, w in zip(eta, phi, pt):
        i, j = math.floor((x + extent) / width), math.floor((y + extent) / width)
        if 0 <= i < pixels and 0 <= j < pixels:
            img[i, j] += w
    return img


@pytest.mark.parametrize("pixels, step, cut", [(3, 10, slice(0, 10)), (3, 7, slice(0, 10)), (2, 10, slice(30, 40))])
def test_images_of_chunks_without_jets_and_with_jets_load_into_one_array(tmp_path, pixels, step, cut):
    """Small images: a chunk whose jets are all cut left its images unbuilt (deferred) and the next
    chunk built them; load then failed with numpy's "setting an array element with a sequence"
    (or "all the input arrays must have same number of dimensions" the other way round)."""
    data = per_jet_data(40, seed=0)
    data["jet_pt"][cut] = 1.0  # the first (or last) chunk of 10 entries: every jet cut
    write_tree(tmp_path / "a.root", "jets", data)
    config = {"data": {
        "layout": "per_jet", "directory": str(tmp_path), "files": [{"path": "a.root", "tree": "jets", "label": 0}],
        "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi"},
        "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
        "cuts": [{"variable": "jet_pt", "min": 2.0}],
        "inputs": {"img": {"kind": "image", "pixels": pixels, "extent": 0.8, "preprocess": []}},
    }}
    loaded = hepnn.io.load(config, standardize=False, step_size=step)
    assert loaded["img"].shape == (30, pixels, pixels, 1)
    lists = {k: data[k].tolist() for k in ("part_px", "part_py", "part_pz")}
    for row, i in enumerate(i for i in range(40) if not cut.start <= i < cut.stop):
        pt = [math.hypot(x, y) for x, y in zip(lists["part_px"][i], lists["part_py"][i])]
        eta = [math.asinh(z / p) - data["jet_eta"][i] for z, p in zip(lists["part_pz"][i], pt)]
        phi = [_wrap(math.atan2(y, x) - data["jet_phi"][i]) for x, y in zip(lists["part_px"][i], lists["part_py"][i])]
        np.testing.assert_allclose(loaded["img"][row, ..., 0], _reference_image(eta, phi, pt, pixels, 0.8),
                                   rtol=1e-6, atol=1e-6)
    # the chunking changes nothing
    np.testing.assert_array_equal(loaded["img"], hepnn.io.load(config, standardize=False, step_size=1000)["img"])
    streamed = np.concatenate([c["img"] for c in hepnn.io.iterate(config, step_size=step)])
    np.testing.assert_array_equal(loaded["img"], streamed)


@pytest.mark.parametrize("where, used_by", [
    ({"cuts": [{"variable": "Track_pt", "min": 1.0}]}, r"'Track_pt' is used by data\.cuts\[0\]"),
    ({"label": {"branch": "Track_d0", "classes": {"a": 0}}}, r"'Track_d0' is used by data\.label\.branch"),
    ({"inputs": {"jet": {"kind": "flat", "variables": ["Jet_pt", "Track_pt"]}}},
     r"'Track_pt' is used by data\.inputs\.jet\.variables\[1\]"),
])
def test_a_jet_level_setting_on_a_branch_of_another_collection_names_the_setting(tmp_path, where, used_by):
    """A cut, label or flat input on a per-event track branch: the error said only that 'Track_pt'
    and 'Jet_pt' (the jet collection) differ in length, not which setting read 'Track_pt' or why."""
    write_tree(tmp_path / "a.root", "Events", per_event_data(20, seed=3))
    data = {"layout": "per_event", "directory": str(tmp_path), "files": [{"path": "a.root", "tree": "Events", "label": 0}],
            "jets": "Jet", "inputs": {"jet": {"kind": "flat", "variables": ["Jet_pt"]}}}
    data.update(where)
    if "label" in where:  # a file-group label and data.label at once is a config error of its own
        data["files"][0].pop("label")
    with pytest.raises(InputDataError, match=r"a\.root: jagged branches .* \(the jet collection\) have different "
                                             r"lengths in 19 entries .*" + used_by + r".*belong in a sequence or image"):
        hepnn.io.load({"data": data})


def test_a_file_skipped_part_way_through_gives_none_of_its_jets(tmp_path):
    """data.skip_bad_files with a file whose last basket is corrupt: load reported it skipped
    (summary, warning) but kept the 150 jets of the chunks read before the bad basket."""
    import uproot

    from hepnn.io.sources import BadFileWarning

    rng = np.random.default_rng(0)
    values = {}
    for name in ("a", "b", "c"):
        with uproot.recreate(tmp_path / f"{name}.root", compression=uproot.ZLIB(1)) as f:
            f.mktree("jets", {"jet_pt": np.float64})
            for _ in range(4):  # four baskets of 50 jets; rounded values: zlib compresses them
                f["jets"].extend({"jet_pt": np.round(rng.uniform(0, 100, 50))})
        values[name] = uproot.open(tmp_path / f"{name}.root")["jets"]["jet_pt"].array(library="np")
    seek = int(uproot.open(tmp_path / "b.root")["jets"]["jet_pt"].member("fBasketSeek")[3])
    raw = bytearray((tmp_path / "b.root").read_bytes())
    key_length = (raw[seek + 14] << 8) | raw[seek + 15]
    raw[seek + key_length:seek + key_length + 20] = bytes(20)  # the last basket cannot be decompressed
    (tmp_path / "b.root").write_bytes(bytes(raw))
    config = {"data": {"layout": "per_jet", "directory": str(tmp_path), "skip_bad_files": True,
                       "files": [{"path": "a.root", "tree": "jets", "label": 0},
                                 {"path": "[bc].root", "tree": "jets", "label": 1}],
                       "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}}
    with pytest.warns(BadFileWarning, match=r"b\.root"):
        data = hepnn.io.load(config, standardize=False, step_size=50)
    assert data.summary["skipped"] == [str(tmp_path / "b.root")] and data.summary["n_jets"] == 400
    np.testing.assert_array_equal(data["label"], np.repeat([0, 1], 200))
    np.testing.assert_array_equal(data["jet"][:, 0], np.concatenate([values["a"], values["c"]]).astype(np.float32))


def test_a_charged_image_channel_without_the_charge_branch_is_a_config_error(tmp_path):
    """Before: a bare ValueError from the pixelisation, per chunk, telling to set the literal
    'data.inputs.<image>.charge'."""
    from hepnn.exceptions import ConfigError

    write_tree(tmp_path / "j.root", "jets", per_jet_data(20))
    data = {"layout": "per_jet", "directory": str(tmp_path), "files": [{"path": "j.root", "tree": "jets", "label": 0}],
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi"},
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {"img": {"kind": "image", "pixels": 5, "channels": ["pt", "neutral_pt"]}}}
    with pytest.raises(ConfigError, match=r"data\.inputs\.img\.channels: channel 'neutral_pt' needs the constituent "
                                          r"charge; set data\.inputs\.img\.charge"):
        hepnn.io.load({"data": data})
    data["inputs"]["img"].update(charge="part_charge", channels=["pt", "neutral_pt", "charged_pt"], preprocess=[],
                                 extent=5.0)  # a window that holds every constituent
    images = hepnn.io.load({"data": data}, standardize=False)["img"]
    jets = per_jet_data(20)
    pt = [[math.hypot(x, y) for x, y in zip(px, py)] for px, py in zip(jets["part_px"].tolist(), jets["part_py"].tolist())]
    neutral = [sum(p for p, q in zip(pts, qs) if q == 0) for pts, qs in zip(pt, jets["part_charge"].tolist())]
    np.testing.assert_allclose(images[..., 1].sum(axis=(1, 2)), neutral, rtol=1e-5)
    np.testing.assert_allclose(images[..., 0].sum(axis=(1, 2)), [sum(p) for p in pt], rtol=1e-5)
    np.testing.assert_allclose(images[..., 1] + images[..., 2], images[..., 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change, message", [
    ({"jets": "Jets"}, r"has no branch of collection 'Jets' \(used by data\.jets\); did you mean 'Jet'\?; "
                       r"collections with pt, eta or phi branches: Jet, Track"),
    ({"collection": "Tracks"}, r"has no branch of collection 'Tracks' \(used by data\.inputs\.tracks\.collection\); "
                               r"did you mean 'Track'\?"),
])
def test_a_misspelt_collection_is_named_with_the_collections_of_the_file(tmp_path, change, message):
    """Before: 'cannot find the jet axis of collection 'Jets'' (no hint), and for a misspelt track
    collection a ConfigError asking to set data.constituents, which was not the problem."""
    write_tree(tmp_path / "a.root", "Events", per_event_data(20, seed=3))
    tracks = {"kind": "sequence", "collection": change.get("collection", "Track"), "link": "Track_jetIdx",
              "variables": ["Track_pt", "rel_eta"], "max_length": 4}
    data = {"layout": "per_event", "directory": str(tmp_path), "files": [{"path": "a.root", "tree": "Events", "label": 0}],
            "jets": change.get("jets", "Jet"), "inputs": {"tracks": tracks}}
    with pytest.raises(InputDataError, match=r"a\.root: tree 'Events' " + message):
        hepnn.io.load({"data": data})


@pytest.mark.parametrize("step", [0, -5, 2.5, "abc"])
def test_a_bad_step_size_argument_is_a_config_error_not_a_bad_file(tmp_path, step):
    """load(step_size=0 or "abc") reported every file as unreadable ("the file may be truncated"; with
    data.skip_bad_files they were all skipped), and step_size=-5 read no chunk: "no jets selected"."""
    from hepnn.exceptions import ConfigError

    data = per_jet_data(20)
    write_tree(tmp_path / "j.root", "jets", data)
    config = {"data": {"layout": "per_jet", "directory": str(tmp_path), "skip_bad_files": True,
                       "files": [{"path": "j.root", "tree": "jets", "label": 0}],
                       "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}}
    with pytest.raises(ConfigError, match=r"^step_size: expected a positive number of entries or a size like "
                                          rf"'100 MB' .*received {step!r}"):
        hepnn.io.load(config, step_size=step)
    with pytest.raises(ConfigError, match=r"^step_size: "):
        next(hepnn.io.iterate(config, step_size=step))
    # numpy integers are entries, as Python ints
    loaded = hepnn.io.load(config, standardize=False, step_size=np.int64(7))
    np.testing.assert_array_equal(loaded["jet"][:, 0], data["jet_pt"].astype(np.float32))


def test_split_by_event_keeps_an_event_s_jets_in_one_fold(tmp_path):
    """split.by: event without data.event_key: the split kept each event's jets together, but the
    k-fold key was drawn jet by jet, so a fold's test jets had event-mates in its training folds."""
    from hepnn.io.split import assign_fold, fold_key

    events = per_event_data(200, seed=4)
    write_tree(tmp_path / "ttbar.root", "Events", events)
    data = {"layout": "per_event", "directory": str(tmp_path), "files": [{"path": "ttbar.root", "tree": "Events", "label": 0}],
            "jets": "Jet", "split": {"by": "event"}, "inputs": {"jet": {"kind": "flat", "variables": ["Jet_pt"]}}}
    loaded = hepnn.io.load({"data": data}, standardize=False, step_size=13)
    n_jets = ak.to_numpy(ak.num(events["Jet"].pt))
    entry = np.repeat(np.arange(200), n_jets)
    np.testing.assert_array_equal(loaded["fold_key"], fold_key("ttbar.root", entry, np.zeros_like(entry), 42))
    folds = assign_fold(loaded["fold_key"], 3)
    assert all(len(set(folds[entry == e].tolist())) == 1 for e in range(200) if n_jets[e])
    # by jet (the default): each jet its own key, as before
    data["split"] = {"by": "jet"}
    by_jet = hepnn.io.load({"data": data}, standardize=False)
    jet = np.arange(len(entry)) - np.repeat(np.cumsum(n_jets) - n_jets, n_jets)
    np.testing.assert_array_equal(by_jet["fold_key"], fold_key("ttbar.root", entry, jet, 42))


def test_nan_label_values_are_counted_as_one_value(tmp_path):
    """Jets dropped for a NaN label were counted under a separate 'nan' key per chunk
    ({nan: 2, nan: 2, nan: 1, ...} in the summary and the warning) instead of one total."""
    data = per_jet_data(40)
    data["fl"] = np.where(np.arange(40) % 3 == 0, np.nan, data["jet_flavour"].astype(np.float64))
    write_tree(tmp_path / "j.root", "jets", data)
    config = {"data": {"layout": "per_jet", "directory": str(tmp_path), "files": [{"path": "j.root", "tree": "jets"}],
                       "label": {"branch": "fl", "classes": {"light": 0, "b": 5}}, "on_nan": "replace",
                       "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}}
    loaded = hepnn.io.load(config, standardize=False, step_size=5)
    fl = data["fl"].tolist()
    n_nan = sum(math.isnan(v) for v in fl)
    expected = {4: sum(v == 4 for v in fl)}
    dropped = loaded.summary["dropped_labels"]
    nan_keys = [k for k in dropped if isinstance(k, float) and math.isnan(k)]
    assert len(nan_keys) == 1 and dropped[nan_keys[0]] == n_nan == 14
    assert {k: v for k, v in dropped.items() if k not in nan_keys} == expected
    kept = [v for v in fl if v in (0, 5)]
    np.testing.assert_array_equal(loaded["label"], [0 if v == 0 else 1 for v in kept])


def test_one_file_matched_twice_through_a_link_is_an_error(tmp_path):
    """A glob matching a file and a symbolic link to it read every jet twice (and, the split hash
    taking the file name, put copies of one jet in training and in test) without a word."""
    from hepnn.exceptions import ConfigError

    data = per_jet_data(20)
    write_tree(tmp_path / "top_v3.root", "jets", data)
    (tmp_path / "top_latest.root").symlink_to(tmp_path / "top_v3.root")
    config = {"data": {"layout": "per_jet", "directory": str(tmp_path), "files": [{"path": "top_*.root", "tree": "jets", "label": 0}],
                       "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]}}}}
    with pytest.raises(ConfigError, match=r"data\.files\[0\] \('top_\*\.root'\): .*top_v3\.root and .*top_latest\.root "
                                          r"are the same file .* read twice"):
        hepnn.io.load(config)
    config["data"]["files"][0]["path"] = "top_v*.root"  # one name: every jet once
    loaded = hepnn.io.load(config, standardize=False)
    np.testing.assert_array_equal(loaded["jet"][:, 0], data["jet_pt"].astype(np.float32))
