"""A physicist's own files: bad values give an error naming the file and branch, never wrong numbers.

Each test was found by feeding the reader small hand-made files and comparing its arrays with
what uproot, awkward and numpy give directly.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

import hepnn
import hepnn.io
from hepnn.exceptions import InputDataError
from hepnn.io.represent import Columns, jets_per_entry, plan_for, represent
from test_io_fixtures import per_event_data, per_jet_data, write_tree

FILES = [{"path": "top.root", "tree": "jets", "label": 1}, {"path": "qcd.root", "tree": "jets", "label": 0}]


def per_jet_config(tmp_path, top: dict, qcd: dict | None = None, **data):
    """top.root and qcd.root (per-jet layout) and a config with a flat and a sequence input."""
    write_tree(tmp_path / "top.root", "jets", top)
    write_tree(tmp_path / "qcd.root", "jets", per_jet_data(20, seed=2) if qcd is None else qcd)
    section = {
        "layout": "per_jet", "directory": str(tmp_path), "files": FILES,
        "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi"},
        "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
        "inputs": {
            "highlevel": {"kind": "flat", "variables": ["jet_mass", "jet_tau21"]},
            "particles": {"kind": "sequence", "variables": ["rel_eta", "part_px"], "max_length": 5,
                          "sort_by": {"variable": "log_pt"}},
        },
    }
    section.update(data)
    return hepnn.load_config({"data": section})


def per_event_config(tmp_path, events: dict, **data):
    write_tree(tmp_path / "ttbar.root", "Events", events)
    section = {
        "layout": "per_event", "directory": str(tmp_path), "files": [{"path": "ttbar.root", "tree": "Events"}],
        "jets": "Jet", "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
        "inputs": {
            "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta"]},
            "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx",
                       "variables": ["Track_pt", "Track_d0"], "max_length": 6},
        },
    }
    section.update(data)
    return hepnn.load_config({"data": section})


def with_values(jagged: ak.Array, index, value) -> ak.Array:
    """``jagged`` with its flat values at ``index`` set to ``value``."""
    flat = ak.to_numpy(ak.flatten(jagged)).copy()
    flat[index] = value
    return ak.unflatten(flat, ak.num(jagged))


def test_nan_weight_is_an_error_or_replaced(tmp_path):
    top, qcd = per_jet_data(20, seed=1), per_jet_data(20, seed=2)
    top["w"], qcd["w"] = np.ones(20), np.ones(20)
    top["w"][3] = np.nan
    config = per_jet_config(tmp_path, top, qcd, weight="w")
    with pytest.raises(InputDataError, match=r"top\.root: 'w' \(used by data\.weight\) has 1 NaN"):
        hepnn.io.load(config)
    replaced = hepnn.io.load(per_jet_config(tmp_path, top, qcd, weight="w", on_nan="replace", nan_value=0.0))
    assert replaced["weight"][3] == 0 and np.isfinite(replaced["weight"]).all()


def test_nan_in_a_cut_variable_does_not_drop_jets_silently(tmp_path):
    top = per_jet_data(20, seed=1)
    top["jet_mass"][[1, 2]] = np.nan
    cuts = [{"variable": "jet_mass", "max": 1000.0}]
    inputs = {"highlevel": {"kind": "flat", "variables": ["jet_tau21"]}}
    with pytest.raises(InputDataError, match=r"top\.root: 'jet_mass' \(used by data\.cuts\[0\]\) has 2 NaN"):
        hepnn.io.load(per_jet_config(tmp_path, top, cuts=cuts, inputs=inputs))
    # data.on_nan: replace cuts NaN as data.nan_value (here it passes the cut): every jet kept
    data = hepnn.io.load(per_jet_config(tmp_path, top, cuts=cuts, inputs=inputs, on_nan="replace"), standardize=False)
    assert data.n_jets == 40
    np.testing.assert_array_equal(data["highlevel"][:20, 0], top["jet_tau21"].astype(np.float32))


@pytest.mark.parametrize("where", ["flat", "sequence", "spectator"])
def test_float64_values_beyond_float32_range_are_an_error(tmp_path, where):
    top = per_jet_data(20, seed=1)
    if where == "sequence":
        top["part_px"] = with_values(top["part_px"], 4, 1e300)
        name = "part_px"
    else:
        top["jet_mass"] = top["jet_mass"].astype(np.float64)
        top["jet_mass"][0] = -1e300
        name = "jet_mass"
    spectators = ["jet_mass"] if where == "spectator" else []
    inputs = {"highlevel": {"kind": "flat", "variables": ["jet_tau21"]}} if where == "spectator" else None
    config = per_jet_config(tmp_path, top, spectators=spectators, **({"inputs": inputs} if inputs else {}))
    # before: an inf in the float32 arrays, which standardisation spread over the whole column
    with pytest.raises(InputDataError, match=rf"top\.root: '{name}' .* beyond float32's range, e\.g\. -?1e\+300"):
        hepnn.io.load(config)


def test_dr_association_with_nan_coordinates_is_an_error(tmp_path):
    events = per_event_data(30, seed=0)
    events["Track"] = ak.with_field(events["Track"], with_values(events["Track"]["eta"], [0, 3], np.nan), "eta")
    tracks = {"kind": "sequence", "collection": "Track", "associate_dr": 0.4, "variables": ["Track_pt"], "max_length": 6}
    config = per_event_config(tmp_path, events, inputs={"jet": {"kind": "flat", "variables": ["Jet_pt"]}, "tracks": tracks})
    # before: the two tracks matched no jet and were left out without a word
    with pytest.raises(InputDataError, match=r"ttbar\.root: 'Track_eta' \(used by the dR association.*has 2 NaN"):
        hepnn.io.load(config)


@pytest.mark.parametrize("labels, message", [
    (lambda jets: jets["jet_tau21"], r"whole numbers 0, 1, \.\.\.; received 20 other value\(s\) of dtype float64"),
    (lambda jets: np.where(jets["jet_tau21"] > 2, 1.0, np.nan), r"received 20 other value\(s\).*e\.g\. nan"),
    (lambda jets: np.full(len(jets["jet_mass"]), 2**40), r"received 1099511627776, beyond int32"),
])
def test_analysis_labels_must_be_whole_class_indices(tmp_path, labels, message):
    class Scores:  # an analysis whose labels hook returns scores or NaN: before, cast to int32 silently
        def labels(self, jets):
            return labels(jets)

    config = per_jet_config(tmp_path, per_jet_data(20, seed=1))
    with pytest.raises(InputDataError, match=r"top\.root: Scores\.labels: class indices must be .*" + message):
        hepnn.io.load(config, Scores())


def test_event_key_must_be_one_whole_number_per_event(tmp_path):
    events = per_event_data(30, seed=0)
    events["event_f"] = events["event"] + 0.5
    config = per_event_config(tmp_path, events, event_key="Jet_pt")
    # before: awkward's "cannot convert to RegularArray" from the fold key
    with pytest.raises(InputDataError, match=r"ttbar\.root: branch 'Jet_pt' \(used by data\.event_key\) should hold one"):
        hepnn.io.load(config)
    # before: 0.5 truncated, NaN a huge negative number: events sharing folds at random
    with pytest.raises(InputDataError, match=r"'event_f' \(used by data\.event_key\) must hold whole event numbers, "
                                             r"found 0\.5 at entry 0"):
        hepnn.io.load(per_event_config(tmp_path, events, event_key="event_f"))


def test_rntuple_subfields_read_as_the_same_arrays_as_flat_branches(tmp_path):
    events = per_event_data(40, seed=0)
    with uproot.recreate(tmp_path / "nested.root") as f:
        f.mkrntuple("Events", ak.Array({"event": events["event"], "Jet": events["Jet"], "Track": events["Track"]}))
    assert "Jet.pt" in uproot.open(tmp_path / "nested.root")["Events"].keys()
    flat = hepnn.io.load(per_event_config(tmp_path, events), standardize=False)
    dotted = {
        "files": [{"path": "nested.root", "tree": "Events"}],
        "label": {"branch": "Jet.hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
        "inputs": {"jet": {"kind": "flat", "variables": ["Jet.pt", "Jet.eta"]},
                   "tracks": {"kind": "sequence", "collection": "Track", "link": "Track.jetIdx",
                              "variables": ["Track.pt", "Track.d0"], "max_length": 6}},
    }
    # before: awkward's FieldNotFoundError "no field 'Jet.pt'" (uproot reads subfields inside their record)
    nested = hepnn.io.load(per_event_config(tmp_path, events, **dotted), standardize=False)
    for key in ("jet", "tracks", "tracks_mask", "label", "weight"):
        np.testing.assert_array_equal(nested[key], flat[key])


def test_input_of_elements_only_keeps_every_jet(tmp_path):
    top = per_jet_data(20, seed=1)
    inputs = {"p": {"kind": "sequence", "variables": ["part_pt"], "max_length": 1, "sort_by": {"variable": "part_pt"}}}
    config = per_jet_config(tmp_path, top, inputs=inputs)
    # before: no jet-level branch read, so the cuts made an empty mask: "no jets selected" (load) and
    # chunks with 20 sequences but 0 labels (iterate)
    chunks = list(hepnn.io.iterate(config))
    assert [len(c["label"]) for c in chunks] == [len(c["p"]) for c in chunks] == [20, 20]
    data = hepnn.io.load(config, standardize=False)
    np.testing.assert_array_equal(data["p"][:20, 0, 0], np.float32([max(v) for v in top["part_pt"].tolist()]))
    out = represent(config, {"part_pt": ak.Array([[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]])})
    assert out["p"].shape == (3, 1, 1) and out["fold_key"].shape == (3,)


def test_per_event_values_are_given_to_each_jet_of_the_event(tmp_path):
    """genWeight, MET or rho (one value per entry) as weight, cut or input in per-event layout:
    each jet of the event takes its event's value (was an error)."""
    events = per_event_data(40, seed=0)
    rng = np.random.default_rng(5)
    events["genWeight"] = rng.normal(1.0, 0.5, 40).astype(np.float32)
    events["MET_pt"] = rng.uniform(0, 100, 40).astype(np.float32)
    events["rho"] = rng.uniform(10, 30, 40)
    config = per_event_config(tmp_path, events, weight="genWeight", cuts=[{"variable": "MET_pt", "min": 30.0}],
                              inputs={"jet": {"kind": "flat", "variables": ["rho", "Jet_pt"]}},
                              split={"train": 1.0, "val": 0.0, "test": 0.0})
    data = hepnn.io.load(config, standardize=False)
    n_jets = ak.to_numpy(ak.num(events["Jet"].pt))
    keep = np.repeat(events["MET_pt"] >= 30.0, n_jets)
    np.testing.assert_array_equal(data["weight"], np.repeat(events["genWeight"], n_jets)[keep])
    np.testing.assert_array_equal(data["jet"][:, 0], np.repeat(events["rho"], n_jets)[keep].astype(np.float32))
    np.testing.assert_array_equal(data["jet"][:, 1], ak.to_numpy(ak.flatten(events["Jet"].pt))[keep])
    streamed = np.concatenate([c["jet"] for c in hepnn.io.iterate(config, step_size=7)])
    np.testing.assert_array_equal(streamed, data["jet"])
    # a per-event tagger scoring whole events reads them the same way
    tree = uproot.open(tmp_path / "ttbar.root")["Events"]
    x = represent(config, tree.arrays())
    np.testing.assert_array_equal(x["jet"][:, 0], np.repeat(events["rho"], n_jets).astype(np.float32))
    columns = Columns(tree.arrays())
    plan = plan_for(config, columns.keys(), "ttbar.root")
    assert next(iter(plan.jet_branches)) in ("MET_pt", "rho")  # the jets are counted on a list, not on it
    np.testing.assert_array_equal(jets_per_entry(plan, columns), n_jets)
    # with no branch of the jet collection the jets cannot be counted: an error, not zero jets
    events["flavour"] = rng.choice([0, 5], 40).astype(np.int32)
    bad = per_event_config(tmp_path, events, label={"branch": "flavour", "classes": {"light": 0, "b": 5}},
                           inputs={"jet": {"kind": "flat", "variables": ["rho"]}})
    with pytest.raises(InputDataError, match="every jet-level branch .* holds one value per entry"):
        hepnn.io.load(bad)


def test_split_by_event_keeps_the_jets_of_an_event_together(tmp_path):
    """data.split.by: event -- no event has jets in training and in test; by jet (the default) unchanged."""
    events = per_event_data(300, seed=4)
    by_jet = hepnn.io.load(per_event_config(tmp_path, events), standardize=False)
    by_event = hepnn.io.load(per_event_config(tmp_path, events, split={"by": "event"}), standardize=False)
    n_jets = ak.to_numpy(ak.num(events["Jet"].pt))
    entry = np.repeat(np.arange(300), n_jets)
    # the default: each jet its own draw, the hash of (file, entry, jet index) as before
    jet = np.arange(len(entry)) - np.repeat(np.cumsum(n_jets) - n_jets, n_jets)
    np.testing.assert_array_equal(by_jet["split"], hepnn.io.split.assign_split("ttbar.root", entry, jet,
                                                                               (0.7, 0.1, 0.2), 42))
    mixed = [len(np.unique(by_jet["split"][entry == e])) > 1 for e in range(300)]
    assert any(mixed), "per jet, some events are split"
    codes = by_event["split"]
    assert all(len(np.unique(codes[entry == e])) == 1 for e in range(300) if n_jets[e])
    np.testing.assert_array_equal(codes, np.repeat(
        hepnn.io.split.assign_split("ttbar.root", np.arange(300), np.zeros(300, int), (0.7, 0.1, 0.2), 42), n_jets))
    np.testing.assert_array_equal(by_event["jet"], by_jet["jet"])  # the same jets, only their split differs
