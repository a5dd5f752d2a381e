"""Tiny ROOT files for the io tests (imported by the other test_io_* files)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import awkward as ak
import numpy as np
import uproot


def write_tree(path, name: str, data: dict) -> Path:
    """Write ``data`` (numpy or awkward, records give ``nX``/``X_field``) as a TTree."""
    with uproot.recreate(path) as f:
        f.mktree(name, {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()},
                 field_name=lambda outer, inner: f"{outer}_{inner}")
        f[name].extend(data)
    return Path(path)


def per_jet_data(n: int = 40, seed: int = 0, n_max: int = 12) -> dict:
    """One jet per entry with jagged constituents (generator branch names)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, n_max, n)
    jet_eta = rng.uniform(-2, 2, n)
    jet_phi = rng.uniform(-np.pi, np.pi, n)
    total = counts.sum()
    pt = rng.exponential(20, total) + 1.0
    eta = np.repeat(jet_eta, counts) + rng.normal(0, 0.3, total)
    phi = np.repeat(jet_phi, counts) + rng.normal(0, 0.3, total)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + 0.01)
    jet = np.repeat(np.arange(n), counts)
    jet_px, jet_py = np.bincount(jet, px), np.bincount(jet, py)
    unf = lambda x: ak.unflatten(x, counts)  # noqa: E731
    return {
        "jet_pt": np.hypot(jet_px, jet_py), "jet_eta": jet_eta, "jet_phi": jet_phi,
        "jet_mass": rng.uniform(10, 200, n), "jet_tau21": rng.uniform(0, 1, n), "jet_tau32": rng.uniform(0, 1, n),
        "jet_nparticles": counts.astype(np.int32), "jet_flavour": rng.choice([0, 4, 5], n).astype(np.int32),
        "event_number": np.arange(n, dtype=np.int64),
        "part_px": unf(px), "part_py": unf(py), "part_pz": unf(pz), "part_energy": unf(energy),
        "part_pt": unf(pt), "part_eta": unf(eta), "part_phi": unf(phi),
        "part_charge": unf(rng.choice([-1, 0, 1], total).astype(np.int32)),
    }


def write_top_qcd(folder, n: int) -> tuple[Path, Path]:
    """``folder/top.root`` and ``folder/qcd.root``: ``n`` per-jet jets each (seeds 1 and 2), the top
    jets 60 GeV heavier (something to learn)."""
    top, qcd = per_jet_data(n, seed=1), per_jet_data(n, seed=2)
    top["jet_mass"] = top["jet_mass"] + 60.0
    folder = Path(folder)
    return write_tree(folder / "top.root", "jets", top), write_tree(folder / "qcd.root", "jets", qcd)


def per_event_data(n_events: int = 30, seed: int = 0, max_jets: int = 4, max_tracks: int = 10) -> dict:
    """NanoAOD-like events: Jet, Track (linked by Track_jetIdx, -1 = none), PFCand."""
    rng = np.random.default_rng(seed)
    n_jets = rng.integers(0, max_jets + 1, n_events)
    nj = n_jets.sum()
    jet_eta = rng.uniform(-3, 3, nj)
    jet_phi = rng.uniform(-np.pi, np.pi, nj)
    n_tracks = rng.integers(0, max_tracks + 1, n_events)
    nt = n_tracks.sum()
    ev_of_track = np.repeat(np.arange(n_events), n_tracks)
    link = np.where(n_jets[ev_of_track] > 0, (rng.random(nt) * np.maximum(n_jets[ev_of_track], 1)).astype(np.int32), -1)
    link[rng.random(nt) < 0.1] = -1
    offs = np.concatenate([[0], np.cumsum(n_jets)])
    gj = np.where(link >= 0, offs[ev_of_track] + link, 0)
    t_eta = np.where(link >= 0, jet_eta[gj] if nj else 0, 0) + rng.normal(0, 0.1, nt)
    t_phi = np.where(link >= 0, jet_phi[gj] if nj else 0, 0) + rng.normal(0, 0.1, nt)
    d0 = rng.normal(0, 0.1, nt)
    ju = lambda x: ak.unflatten(x, n_jets)  # noqa: E731
    tu = lambda x: ak.unflatten(x, n_tracks)  # noqa: E731
    return {
        "event": np.arange(n_events, dtype=np.int64),
        "Jet": ak.zip({
            "pt": ju(rng.uniform(5, 100, nj).astype(np.float32)), "eta": ju(jet_eta.astype(np.float32)),
            "phi": ju(jet_phi.astype(np.float32)), "mass": ju(rng.uniform(1, 20, nj).astype(np.float32)),
            "hadronFlavour": ju(rng.choice([0, 4, 5], nj).astype(np.int32)),
        }),
        "Track": ak.zip({
            "pt": tu(rng.exponential(5, nt).astype(np.float32) + 0.5), "eta": tu(t_eta.astype(np.float32)),
            "phi": tu(t_phi.astype(np.float32)), "d0": tu(d0.astype(np.float32)),
            "z0": tu(rng.normal(0, 1, nt).astype(np.float32)), "d0sig": tu((d0 / 0.02).astype(np.float32)),
            "z0sig": tu(rng.normal(0, 3, nt).astype(np.float32)), "jetIdx": tu(link.astype(np.int32)),
        }),
    }


PER_EVENT_YAML = """
data:
  layout: per_event
  files:
    - {path: "ttbar_*.root", tree: Events}
  jets: Jet
  cuts: [{variable: Jet_pt, min: 20}, {variable: Jet_eta, abs_max: 2.5}]
  label: {branch: Jet_hadronFlavour, classes: {light: 0, c: 4, b: 5}}
  inputs:
    jet: {kind: flat, variables: [Jet_pt, Jet_eta]}
    tracks:
      kind: sequence
      collection: Track
      link: Track_jetIdx
      variables: [Track_pt, Track_eta, Track_phi, Track_d0, Track_z0, Track_d0sig, Track_z0sig]
      sort_by: {variable: Track_d0sig, descending: true, absolute: true}
      max_length: 15
  split: {train: 0.7, val: 0.1, test: 0.2, seed: 42}
"""

PER_JET_YAML = """
data:
  layout: per_jet
  files:
    - {path: top.root, tree: jets, label: 1}
    - {path: qcd.root, tree: jets, label: 0}
  jet_axis: {pt: jet_pt, eta: jet_eta, phi: jet_phi}
  constituents: {px: part_px, py: part_py, pz: part_pz, energy: part_energy}
  inputs:
    highlevel: {kind: flat, variables: [jet_mass, jet_tau21, jet_tau32, jet_nparticles]}
    particles: {kind: sequence, variables: [rel_eta, rel_phi, log_pt, log_pt_frac, log_e, log_e_frac, delta_r], sort_by: {variable: log_pt, descending: true}, max_length: 100}
    image: {kind: image, pixels: 37, extent: 1.6, channels: [pt], preprocess: [center, rotate, flip, normalize]}  # extent = half-width in eta and phi
"""


def make_per_event(tmp_path, n_files: int = 2, n_events: int = 30, yaml_text: str = PER_EVENT_YAML) -> Path:
    """ttbar_<i>.root files and config.yaml in ``tmp_path``; returns the config path."""
    for i in range(n_files):
        write_tree(tmp_path / f"ttbar_{i}.root", "Events", per_event_data(n_events, seed=i))
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(yaml_text))
    return config


def make_per_jet(tmp_path, n: int = 40, yaml_text: str = PER_JET_YAML) -> Path:
    write_tree(tmp_path / "top.root", "jets", per_jet_data(n, seed=1))
    write_tree(tmp_path / "qcd.root", "jets", per_jet_data(n, seed=2))
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(yaml_text))
    return config


def test_write_tree_counter_names(tmp_path):
    path = write_tree(tmp_path / "e.root", "Events", per_event_data(5))
    keys = uproot.open(path)["Events"].keys()
    assert {"nJet", "Jet_pt", "nTrack", "Track_jetIdx", "event"} <= set(keys)
