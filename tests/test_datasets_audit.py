"""Audit of hepnn.datasets: option checks, the empty-selection guard, and bookkeeping of written files."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")
ak = pytest.importorskip("awkward")

from hepnn.datasets import generate, generator, resolve_options  # noqa: E402
from hepnn.exceptions import ConfigError, HepnnError  # noqa: E402


def _np(x):
    return np.asarray(ak.to_numpy(x))


@pytest.mark.parametrize(("sample", "options", "match"), [
    # Pythia ignores a pTHatMax at or below pTHatMin and generates pTHat from pthat_min up (checked:
    # 700 < pTHat < 1459 GeV with min 700, max 500), while the provenance recorded pthat_max=500
    ("qcd", {"pthat_min": 700, "pthat_max": 500}, r"options\.pthat_max: must be above pthat_min=700, received 500"),
    ("top", {"pthat_min": 800}, r"options\.pthat_max: must be above pthat_min=800, received 700"),
    ("ttbar", {"pthat_max": 0}, r"options\.pthat_max: must be above pthat_min=0, received 0"),
    # |eta| < 0 selects no jet: the generator looped for ever
    ("qcd", {"eta_max": 0}, r"options\.eta_max: expected a positive number"),
])
def test_contradictory_options_are_rejected(sample, options, match):
    with pytest.raises(ConfigError, match=match):
        resolve_options(sample, options)


def test_consistent_pthat_options_pass():
    defn = resolve_options("qcd", {"pthat_min": 300, "pthat_max": 400, "eta_max": 1.5})
    assert (defn.pthat_min, defn.pthat_max, defn.eta_max) == (300.0, 400.0, 1.5)
    assert resolve_options("top", {"pthat_min": 800, "pthat_max": None}).pthat_max is None


def test_empty_selection_stops_with_an_error(tmp_path, monkeypatch):
    # pt_min far above what pthat 500-700 GeV can give: before the guard, generate never returned
    monkeypatch.setattr(generator, "MAX_EVENTS_WITHOUT_JETS", 30)
    out = tmp_path / "none.root"
    with pytest.raises(HepnnError, match=r"no jet passed the selection in 30 events \(pt_min=5000"):
        generate("qcd", 2, seed=1, out=out, progress=False,
                 options={"pt_min": 5000, "pt_max": None, "events_per_batch": 10})
    assert list(tmp_path.iterdir()) == []


def test_cli_negative_seed_names_the_option(capsys, tmp_path):
    from hepnn.cli import main

    assert main(["generate", "qcd", "--n-jets", "2", "--seed", "-1", "--out", str(tmp_path / "q.root")]) == 2
    assert "--seed: expected a non-negative int, received -1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def ttbar_pair(tmp_path_factory):
    """The same 120 ttbar jets (seed 8) in both layouts."""
    folder = tmp_path_factory.mktemp("audit")
    per_jet = generate("ttbar", 120, seed=8, out=folder / "j.root", progress=False)
    per_event = generate("ttbar", 120, seed=8, out=folder / "e.root", layout="per_event", progress=False)
    return (uproot.open(per_jet)["jets"].arrays(library="ak"),
            uproot.open(per_event)["Events"].arrays(library="ak"))


def test_layouts_hold_the_same_jets(ttbar_pair):
    jets, events = ttbar_pair
    for flat, jagged in (("jet_pt", "Jet_pt"), ("jet_mass", "Jet_mass"), ("jet_flavour", "Jet_hadronFlavour"),
                         ("jet_sdmass", "Jet_msoftdrop"), ("jet_nparticles", "Jet_nConstituents")):
        np.testing.assert_array_equal(_np(jets[flat]), _np(ak.flatten(events[jagged])))
    np.testing.assert_array_equal(_np(jets.event_number), np.repeat(_np(events.event), _np(events.nJet)))
    np.testing.assert_array_equal(_np(ak.flatten(jets.part_pt)), _np(ak.flatten(events.PFCand_pt)))
    np.testing.assert_array_equal(_np(ak.flatten(jets.track_d0sig)), _np(ak.flatten(events.Track_d0sig)))
    assert (_np(events.nPFCand) == _np(ak.sum(events.Jet_nConstituents, axis=1))).all()


def test_jet_four_vector_is_the_sum_of_its_constituents(ttbar_pair):
    jets, _ = ttbar_pair
    px, py, pz, e = (_np(ak.sum(jets[f"part_{k}"], axis=1)).astype(np.float64) for k in ("px", "py", "pz", "energy"))
    pt = np.hypot(px, py)
    np.testing.assert_allclose(pt, _np(jets.jet_pt), rtol=1e-5)
    np.testing.assert_allclose(np.arcsinh(pz / pt), _np(jets.jet_eta), atol=1e-5)
    dphi = np.mod(np.arctan2(py, px) - _np(jets.jet_phi) + np.pi, 2 * np.pi) - np.pi
    assert np.abs(dphi).max() < 1e-5
    np.testing.assert_allclose(e, _np(jets.jet_energy), rtol=1e-5)
    mass = np.sqrt(np.maximum(e**2 - pt**2 - pz**2, 0))
    np.testing.assert_allclose(mass, _np(jets.jet_mass), rtol=1e-3, atol=0.05)


def test_track_links_point_to_their_jet(ttbar_pair):
    _, events = ttbar_pair
    idx = events.Track_jetIdx
    assert ak.all(idx >= 0) and ak.all(idx < events.nJet)
    dphi = np.mod(events.Track_phi - events.Jet_phi[idx] + np.pi, 2 * np.pi) - np.pi
    dr = _np(ak.flatten(np.sqrt((events.Track_eta - events.Jet_eta[idx]) ** 2 + dphi**2)))
    assert dr.max() < 0.6  # anti-kT 0.4 (tracks are pions etc.: rapidity ~ pseudorapidity)
    assert np.isfinite(_np(ak.flatten(events.Track_d0sig))).all()
    assert np.isfinite(_np(ak.flatten(events.Track_z0sig))).all()


def test_out_under_a_file_says_so(tmp_path):
    from hepnn.exceptions import OutputDirError

    (tmp_path / "afile").write_text("not a folder")
    # the message was "cannot write a file there (File exists)", which points at the wrong thing
    with pytest.raises(OutputDirError, match=r"--out .*afile/x\.root: cannot write a file there \(.*afile is a file, "
                                             r"not a directory\)"):
        generate("qcd", 2, seed=1, out=tmp_path / "afile" / "x.root", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
