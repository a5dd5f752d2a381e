"""Bad input: every error names the file and what to fix; nothing is silently misaligned."""

from __future__ import annotations


import awkward as ak
import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.exceptions import ConfigError, InputDataError
from hepnn.io.sources import BadFileWarning
from test_io_fixtures import make_per_event, make_per_jet, per_event_data, per_jet_data, write_tree


def test_missing_branch_names_file_and_nearest(tmp_path):
    config = make_per_event(tmp_path)
    cfg = hepnn.load_config(config, ["data.inputs.jet.variables=[Jet_ptt]"])
    with pytest.raises(InputDataError, match=r"ttbar_0\.root.*'Jet_ptt'.*did you mean 'Jet_pt'"):
        hepnn.io.load(cfg)


def test_unknown_sequence_variable_lists_derived(tmp_path):
    config = make_per_jet(tmp_path)
    cfg = hepnn.load_config(config, ["data.inputs.particles.variables=[rel_etaa]"])
    with pytest.raises(InputDataError, match=r"did you mean 'rel_eta'"):
        hepnn.io.load(cfg)


def test_missing_tree_and_file(tmp_path):
    config = make_per_event(tmp_path)
    with pytest.raises(InputDataError, match=r"ttbar_0\.root: no tree or RNTuple named 'Event'.*did you mean 'Events'"):
        hepnn.io.load(hepnn.load_config(config, ["data.files=[{path: 'ttbar_*.root', tree: Event}]"]))
    with pytest.raises(InputDataError, match=r"no file matches 'nothing_\*\.root'"):
        hepnn.io.load(hepnn.load_config(config, ["data.files=[{path: 'nothing_*.root', tree: Events}]"]))


def test_truncated_file_error_and_skip(tmp_path):
    config = make_per_event(tmp_path, n_files=2)
    good = (tmp_path / "ttbar_1.root").read_bytes()
    (tmp_path / "ttbar_1.root").write_bytes(good[: len(good) // 3])
    with pytest.raises(InputDataError, match=r"ttbar_1\.root"):
        hepnn.io.load(config)
    cfg = hepnn.load_config(config, ["data.skip_bad_files=true"])
    with pytest.warns(BadFileWarning, match="ttbar_1.root"):
        data = hepnn.io.load(cfg)
    assert data.summary["n_skipped"] == 1 and data.summary["skipped"][0].endswith("ttbar_1.root")


def test_nan_error_and_replace(tmp_path):
    d = per_jet_data(20, seed=3)
    d["jet_mass"][[2, 5]] = np.nan
    d["jet_tau21"][7] = np.inf
    write_tree(tmp_path / "top.root", "jets", d)
    write_tree(tmp_path / "qcd.root", "jets", per_jet_data(20, seed=4))
    config = make_per_jet(tmp_path, n=20)
    write_tree(tmp_path / "top.root", "jets", d)
    with pytest.raises(InputDataError, match=r"top\.root: 'jet_mass'.*2 NaN"):
        hepnn.io.load(config)
    data = hepnn.io.load(hepnn.load_config(config, ["data.on_nan=replace", "data.nan_value=-9"]), standardize=False)
    assert data["highlevel"][2, 0] == -9 and data["highlevel"][7, 1] == -9


def test_inconsistent_jagged_lengths(tmp_path):
    d = per_jet_data(10)
    d["part_py"] = ak.Array([[1.0]] * 10)
    config = make_per_jet(tmp_path, n=10)
    write_tree(tmp_path / "top.root", "jets", d)
    with pytest.raises(InputDataError, match=r"top\.root: jagged branches 'part_px' and 'part_py'.*different lengths"):
        hepnn.io.load(config)


def test_link_out_of_range(tmp_path):
    config = make_per_event(tmp_path, n_files=1)
    d = per_event_data(30, seed=0)
    link = d["Track"]["jetIdx"]
    d["Track"] = ak.with_field(d["Track"], link + 10, "jetIdx")
    write_tree(tmp_path / "ttbar_0.root", "Events", d)
    with pytest.raises(InputDataError, match=r"ttbar_0\.root: link branch 'Track_jetIdx' points past"):
        hepnn.io.load(config)


def test_per_event_sequence_needs_link_or_dr(tmp_path):
    config = make_per_event(tmp_path, n_files=1)
    cfg = hepnn.load_config(config, ["data.inputs.tracks.link=null"])
    with pytest.raises(ConfigError, match="link.*associate_dr"):
        hepnn.io.load(cfg)


def test_no_jets_selected(tmp_path):
    config = make_per_event(tmp_path, n_files=1)
    with pytest.raises(InputDataError, match="no jets selected"):
        hepnn.io.load(hepnn.load_config(config, ["data.cuts=[{variable: Jet_pt, min: 1.0e9}]"]))
