"""The shipped configs on real NanoAOD (TTree) and PHYSLITE (RNTuple) files from scikit-hep-testdata."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hepnn.io

DATA = Path(__file__).parent / "data"


def test_nanoaod_btag():
    data = hepnn.io.load(DATA / "nanoaod_btag.yaml")
    assert data.n_jets > 100 and data["jet"].shape[1] == 7
    assert set(np.unique(data["label"]).tolist()) == {0, 1} and data.class_names == ["light", "b"]
    assert (data["spec_Jet_pt"] >= 20).all()
    assert np.isfinite(data["jet"]).all()


def test_physlite_tracks_by_dr():
    data = hepnn.io.load(DATA / "physlite_tracks.yaml", standardize=False)
    assert data["tracks"].shape[1:] == (20, 8)
    mask = data["tracks_mask"]
    assert mask.any(axis=1).mean() > 0.5
    delta_r = data["tracks"][..., 6][mask]
    assert (delta_r < 0.4).all()
    d0 = np.abs(data["tracks"][..., 0])
    assert all((np.diff(d0[i][mask[i]]) <= 0).all() for i in range(len(d0)))
    assert (data["tracks"][~mask] == 0).all()
    assert set(np.unique(data["label"]).tolist()) <= {0, 1, 2}
