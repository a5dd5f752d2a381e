"""hepnn.io.represent.Columns: the branches of in-memory events, plain or with behaviours."""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepnn.io.represent import Columns


def _events():
    jets = ak.zip({"pt": ak.Array([[50.0, 30.0], [], [70.0]]), "eta": ak.Array([[0.1, -1.0], [], [2.0]])})
    return ak.zip({"Jet": jets, "nJet": np.array([2, 0, 1]), "Jet_mass": ak.Array([[5.0, 3.0], [], [7.0]])},
                  depth_limit=1)


def test_nested_names_come_from_the_form_like_ak_fields():
    events = _events()
    columns = Columns(events)
    assert set(columns.keys()) == {"Jet", "nJet", "Jet_mass", "Jet_pt", "Jet_eta"}
    assert ak.to_list(columns["Jet_pt"]) == [[50.0, 30.0], [], [70.0]]


def test_select_on_plain_arrays_shares_the_buffers_and_equals_the_stripped_path():
    """uproot's arrays carry no parameters: the selection is the same record of the same contents
    (no copy, no zip); arrays with behaviours (NanoEvents) are stripped as before."""
    events = _events()
    plain = Columns(events).select(["nJet", "Jet_mass"])
    assert plain.fields == ["nJet", "Jet_mass"]
    assert ak.to_list(plain) == ak.to_list(ak.zip({"nJet": events.nJet, "Jet_mass": events.Jet_mass}, depth_limit=1))
    assert plain.layout.content("Jet_mass") is events.layout.content("Jet_mass")  # the same buffers
    with_behaviour = ak.with_parameter(events, "__record__", "Event")
    with_behaviour = ak.with_field(with_behaviour, ak.with_parameter(events.Jet_mass, "__doc__", "mass"), "Jet_mass")
    stripped = Columns(with_behaviour).select(["nJet", "Jet_mass"])
    assert ak.to_list(stripped) == ak.to_list(plain)
    assert not ak.parameters(stripped.Jet_mass)
    nested = Columns(events).select(["Jet_pt", "nJet"])  # a nested name: the general path
    assert ak.to_list(nested.Jet_pt) == [[50.0, 30.0], [], [70.0]]
