"""hepnn convert: npz splits, preprocessing.json, config.yaml; the CLI."""

from __future__ import annotations

import json

import numpy as np

import hepnn.io
from hepnn.cli import main
from hepnn.config import load_config
from hepnn.preprocessing import Preprocessor
from test_io_fixtures import make_per_event, make_per_jet


def test_convert_writes_splits_same_as_load(tmp_path):
    config = make_per_jet(tmp_path, n=20)
    counts = hepnn.io.convert(config, tmp_path / "out")
    data = hepnn.io.load(config)
    assert sum(counts.values()) == data.n_jets
    for name in ("train", "val", "test"):
        arrays = hepnn.io.read_npz(tmp_path / "out" / f"{name}.npz")
        part = data.split(name)
        assert set(arrays) == {"highlevel", "particles", "particles_mask", "image", "label", "weight", "fold_key"}
        for k, v in arrays.items():
            np.testing.assert_array_equal(v, part[k])
    pre = Preprocessor.load(tmp_path / "out" / "preprocessing.json")
    np.testing.assert_allclose(pre.mean_["highlevel"], data.preprocessing.mean_["highlevel"])
    assert load_config(tmp_path / "out" / "config.yaml").data == load_config(config).data


def test_cli_convert_with_set(tmp_path, capsys):
    config = make_per_event(tmp_path, n_files=1)
    code = main(["convert", str(config), "--out", str(tmp_path / "o"), "--set", "data.inputs.tracks.max_length=4"])
    assert code == 0 and "converted" in capsys.readouterr().out
    arrays = hepnn.io.read_npz(tmp_path / "o" / "train.npz")
    assert arrays["tracks"].shape[1:] == (4, 7) and arrays["tracks_mask"].shape[1] == 4
    json.loads((tmp_path / "o" / "preprocessing.json").read_text())


def test_cli_convert_bad_branch_exit_code(tmp_path, capsys):
    config = make_per_event(tmp_path, n_files=1)
    code = main(["convert", str(config), "--out", str(tmp_path / "o"), "--set", "data.inputs.jet.variables=[Jet_ptx]"])
    assert code == 1 and "Jet_ptx" in capsys.readouterr().err


def test_list_shows_registries(capsys):
    main(["list"])
    out = capsys.readouterr().out
    assert "rel_eta" in out and "sequence" in out
