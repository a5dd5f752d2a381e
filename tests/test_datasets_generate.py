"""Tests of hepnn.datasets: physics of the generated samples, layouts, determinism, provenance."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")
ak = pytest.importorskip("awkward")

from hepnn.config.schema import GenerateConfig, GenerateSample  # noqa: E402
from hepnn.datasets import SAMPLES, generate  # noqa: E402
from hepnn.datasets.writer import read_provenance  # noqa: E402
from hepnn.exceptions import ConfigError  # noqa: E402

CONTRACT_PER_JET = [
    "jet_pt", "jet_eta", "jet_phi", "jet_mass", "jet_energy", "jet_nparticles", "jet_tau1", "jet_tau2",
    "jet_tau3", "jet_tau21", "jet_tau32", "jet_sdmass", "jet_label", "jet_flavour", "event_number",
    "part_px", "part_py", "part_pz", "part_energy", "part_pt", "part_eta", "part_phi", "part_charge", "part_pid",
]
CONTRACT_TRACKS = ["track_pt", "track_eta", "track_phi", "track_charge", "track_d0", "track_z0",
                   "track_d0sig", "track_z0sig"]
CONTRACT_PER_EVENT = [
    "event", "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_energy", "Jet_nConstituents", "Jet_tau1",
    "Jet_tau2", "Jet_tau3", "Jet_tau21", "Jet_tau32", "Jet_msoftdrop", "Jet_label", "Jet_hadronFlavour",
    "nPFCand", "PFCand_pt", "PFCand_eta", "PFCand_phi", "PFCand_energy", "PFCand_px", "PFCand_py", "PFCand_pz",
    "PFCand_charge", "PFCand_pdgId", "PFCand_jetIdx",
    "nTrack", "Track_pt", "Track_eta", "Track_phi", "Track_charge", "Track_d0", "Track_z0", "Track_d0sig",
    "Track_z0sig", "Track_jetIdx",
]


@pytest.fixture(scope="session")
def samples(tmp_path_factory):
    """Small samples made once per session: 200 top, 200 qcd, 40 w jets, 300 ttbar jets (per event)."""
    folder = tmp_path_factory.mktemp("generated")
    paths = {
        "top": generate("top", 200, seed=11, out=folder / "top.root", progress=False),
        "qcd": generate("qcd", 200, seed=12, out=folder / "qcd.root", progress=False),
        "w": generate("w", 40, seed=13, out=folder / "w.root", progress=False),
        "ttbar": generate("ttbar", 300, seed=14, out=folder / "ttbar.root", layout="per_event", progress=False),
    }
    arrays = {name: uproot.open(p)["jets"].arrays(library="ak") for name, p in paths.items() if name != "ttbar"}
    arrays["ttbar"] = uproot.open(paths["ttbar"])["Events"].arrays(library="ak")
    return SimpleNamespace(paths=paths, arrays=arrays)


def _np(x):
    return np.asarray(ak.to_numpy(x))


def test_registry_lists_samples():
    assert SAMPLES.names() == ["qcd", "top", "ttbar", "w"]


def test_import_is_light():
    code = ("import sys, hepnn.datasets; bad = [m for m in ('pythia8mc', 'fastjet', 'tensorflow', 'uproot') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_per_jet_branches_follow_contract(samples):
    keys = set(uproot.open(samples.paths["top"])["jets"].keys())
    assert set(CONTRACT_PER_JET) <= keys
    assert not set(CONTRACT_TRACKS) & keys  # tracks only for ttbar


def test_per_event_branches_follow_contract(samples):
    keys = set(uproot.open(samples.paths["ttbar"])["Events"].keys())
    assert set(CONTRACT_PER_EVENT) <= keys


def test_jet_counts_and_selection(samples):
    for name in ("top", "qcd", "w"):
        a = samples.arrays[name]
        n = 40 if name == "w" else 200
        assert len(a) == n
        pt, eta = _np(a.jet_pt), _np(a.jet_eta)
        assert ((pt > 550) & (pt < 650)).all()
        assert (np.abs(eta) < 2.0).all()


def test_labels_consistent(samples):
    assert (_np(samples.arrays["top"].jet_label) == 1).all()
    assert (_np(samples.arrays["w"].jet_label) == 1).all()
    assert (_np(samples.arrays["qcd"].jet_label) == 0).all()
    tt = samples.arrays["ttbar"]
    label, flav = _np(ak.flatten(tt.Jet_label)), _np(ak.flatten(tt.Jet_hadronFlavour))
    assert (label == flav).all()
    assert set(np.unique(flav)) == {0, 4, 5}
    assert (flav == 5).mean() > 0.15  # two b quarks per ttbar event


def test_top_mass_peak(samples):
    top, qcd = _np(samples.arrays["top"].jet_mass), _np(samples.arrays["qcd"].jet_mass)
    in_window = lambda m: ((m > 140) & (m < 210)).mean()  # noqa: E731
    assert 160 < np.median(top) < 190
    assert in_window(top) > 0.6
    assert np.median(qcd) < 110
    assert in_window(qcd) < 0.25
    sd_top = _np(samples.arrays["top"].jet_sdmass)
    assert 150 < np.median(sd_top) < 190


def test_w_mass_peak(samples):
    m = _np(samples.arrays["w"].jet_sdmass)
    assert 65 < np.median(m) < 95


def test_tau32_lower_for_tops(samples):
    top, qcd = _np(samples.arrays["top"].jet_tau32), _np(samples.arrays["qcd"].jet_tau32)
    assert np.median(top) < np.median(qcd) - 0.15
    a = samples.arrays["top"]
    np.testing.assert_allclose(_np(a.jet_tau32), _np(a.jet_tau3) / _np(a.jet_tau2), rtol=1e-4)


def test_constituents_sum_to_jet_and_are_pt_ordered(samples):
    a = samples.arrays["top"]
    assert (_np(ak.num(a.part_pt)) == _np(a.jet_nparticles)).all()
    assert ak.all(a.part_pt[:, :-1] >= a.part_pt[:, 1:])
    np.testing.assert_allclose(_np(ak.sum(a.part_energy, axis=1)), _np(a.jet_energy), rtol=1e-3)
    np.testing.assert_allclose(_np(ak.sum(a.part_px, axis=1)), _np(a.jet_pt) * np.cos(_np(a.jet_phi)),
                               rtol=1e-3, atol=0.1)
    charge = _np(ak.flatten(a.part_charge))
    pid = _np(ak.flatten(a.part_pid))
    assert set(np.unique(charge)) <= {-1, 0, 1}
    assert (charge[np.abs(pid) == 22] == 0).all() and (np.abs(charge[np.abs(pid) == 211]) == 1).all()


def test_per_event_links(samples):
    tt = samples.arrays["ttbar"]
    assert int(ak.sum(tt.nJet)) == 300
    assert ak.all(tt.PFCand_jetIdx < tt.nJet) and ak.all(tt.Track_jetIdx < tt.nJet)
    assert (_np(ak.flatten(tt.Jet_pt)) > 20).all() and (np.abs(_np(ak.flatten(tt.Jet_eta))) < 2.5).all()
    n_from_links = ak.sum(ak.values_astype(tt.PFCand_jetIdx[:, :, None] == ak.local_index(tt.Jet_pt)[:, None, :],
                                           np.int64), axis=1)
    assert ak.all(n_from_links == tt.Jet_nConstituents)
    assert ak.all(tt.Track_pt > 1.0) and ak.all(tt.Track_charge != 0)


def test_b_jet_tracks_are_displaced(samples):
    tt = samples.arrays["ttbar"]
    flav = tt.Jet_hadronFlavour[tt.Track_jetIdx]
    sig = np.abs(tt.Track_d0sig)
    b, light = _np(ak.flatten(sig[flav == 5])), _np(ak.flatten(sig[flav == 0]))
    assert len(b) > 200 and len(light) > 200
    assert np.median(b) > 1.5 * np.median(light)
    assert (b > 3).mean() > 2 * (light > 3).mean()
    # prompt light tracks: significance about unit Gaussian
    assert 0.4 < np.median(light) < 1.2


def test_provenance(samples):
    prov = read_provenance(samples.paths["top"])
    assert prov["sample"] == "top" and prov["seed"] == 11 and prov["n_jets"] == 200 and prov["jobs"] == 1
    assert prov["versions"]["pythia8mc"] == "8.317.2"
    assert prov["versions"]["fastjet"]
    assert "Top:gg2ttbar = on" in prov["pythia_settings"]
    assert prov["options"]["pt_min"] == 550 and prov["options"]["mpi"] is False
    assert "tracks" in read_provenance(samples.paths["ttbar"])


def _read(path):
    return uproot.open(path)["jets"].arrays(library="ak")


def test_same_seed_same_file(tmp_path):
    a = _read(generate("qcd", 15, seed=5, out=tmp_path / "a.root", progress=False))
    b = _read(generate("qcd", 15, seed=5, out=tmp_path / "b.root", progress=False))
    c = _read(generate("qcd", 15, seed=6, out=tmp_path / "c.root", progress=False))
    assert ak.to_list(a) == ak.to_list(b)
    assert ak.to_list(a.jet_pt) != ak.to_list(c.jet_pt)


def test_two_jobs_deterministic(tmp_path):
    a = _read(generate("qcd", 12, seed=5, jobs=2, out=tmp_path / "a.root", progress=False))
    b = _read(generate("qcd", 12, seed=5, jobs=2, out=tmp_path / "b.root", progress=False))
    assert ak.to_list(a) == ak.to_list(b)
    assert len(a) == 12
    assert len(set(_np(a.event_number) % 2)) == 2  # both workers contributed
    assert len(set(_np(a.event_number))) >= 6


def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    from hepnn.datasets import writer

    calls = []

    def failing_write(self, chunk):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(self, chunk)

    original = writer.ChunkWriter.write
    monkeypatch.setattr(writer.ChunkWriter, "write", failing_write)
    out = tmp_path / "qcd.root"
    with pytest.raises(KeyboardInterrupt):
        generate("qcd", 30, seed=1, out=out, progress=False, options={"chunk_jets": 5, "events_per_batch": 10})
    assert len(calls) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sample": "tops"}, "sample: unknown sample 'tops'; did you mean 'top'"),
    ({"n_jets": 0}, "n_jets: expected a positive int"),
    ({"jobs": 0}, "jobs: expected a positive int"),
    ({"layout": "flat"}, "layout: expected one of per_jet, per_event"),
    ({"options": {"ptmin": 3}}, "options.ptmin: unknown generator option"),
    ({"options": {"mpi": "yes"}}, "options.mpi: expected true or false"),
    ({"options": {"pt_min": 700}}, "options.pt_max: must be above pt_min"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"sample": "qcd", "n_jets": 5, "out": tmp_path / "x.root", "progress": False, **kwargs}
    with pytest.raises(ConfigError, match=match):
        generate(**args)


def test_cli_bad_arguments_exit_2(capsys):
    from hepnn.cli import main

    assert main(["generate", "qcd", "--n-jets", "0"]) == 2
    assert "--n-jets" in capsys.readouterr().err
    assert main(["generate", "qcd", "--n-jets", "3", "--option", "nope=1"]) == 2
    assert "options.nope" in capsys.readouterr().err


def test_cli_generates(tmp_path, capsys):
    from hepnn.cli import main

    out = tmp_path / "w.root"
    assert main(["generate", "w", "--n-jets", "5", "--seed", "2", "--out", str(out), "--quiet",
                 "--option", "mpi=false"]) == 0
    assert uproot.open(out)["jets"].num_entries == 5


def _analysis(samples, seed=3):
    return SimpleNamespace(config=SimpleNamespace(generate=GenerateConfig(samples=samples, seed=seed, jobs=1)))


def test_step_generates_and_resumes(tmp_path):
    from hepnn.datasets.step import generate_step

    analysis = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5, options={"pt_min": 500}),
                          "w.root": GenerateSample(sample="w", n_jets=4, seed=9, layout="per_event")})
    paths = generate_step(analysis, tmp_path, log=lambda _: None)
    assert paths == [tmp_path / "data" / "q.root", tmp_path / "data" / "w.root"]
    assert all(p.is_file() for p in paths)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["q.root", "w.root"]  # no leftover parts
    assert read_provenance(paths[0])["seed"] == 3 and read_provenance(paths[0])["options"]["pt_min"] == 500
    assert read_provenance(paths[1])["seed"] == 9
    mtime = paths[0].stat().st_mtime_ns
    messages = []
    generate_step(analysis, tmp_path, log=messages.append)
    assert paths[0].stat().st_mtime_ns == mtime
    assert all("skipped" in m for m in messages)


def test_step_unknown_option_names_its_path(tmp_path):
    from hepnn.datasets.step import generate_step

    analysis = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5, options={"pt_mn": 500})})
    with pytest.raises(ConfigError, match=r"generate\.samples\.q\.root\.options\.pt_mn"):
        generate_step(analysis, tmp_path)
    assert not (tmp_path / "data" / "q.root").exists()


def test_charged_constituents_carry_track_quantities(samples):
    a = samples.arrays["top"]
    is_track = _np(ak.flatten(a.part_istrack)).astype(bool)
    charge = _np(ak.flatten(a.part_charge))
    pt = _np(ak.flatten(a.part_pt))
    d0sig = _np(ak.flatten(a.part_d0sig))
    assert is_track.any() and (charge[is_track] != 0).all() and (pt[is_track] > 1.0).all()
    assert (d0sig[~is_track] == 0).all() and (d0sig[is_track] != 0).mean() > 0.99
    # the ttbar track collection is exactly its constituents flagged as tracks, with the same values
    tt = samples.arrays["ttbar"]
    flagged = tt.PFCand_isTrack == 1
    np.testing.assert_array_equal(_np(ak.flatten(tt.PFCand_d0sig[flagged])), _np(ak.flatten(tt.Track_d0sig)))


@pytest.mark.parametrize("debug", [False, True])
def test_fastjet_banner_only_with_debug(tmp_path, debug):
    # FastJet prints its banner from C++ at the first clustering of each process (here: of each
    # generator worker), past Python's sys.stdout: only a subprocess shows what reaches the terminal
    args = [sys.executable, "-m", "hepnn", *(["--debug"] if debug else []), "generate", "qcd", "--n-jets", "2",
            "--seed", "3", "--jobs", "2", "--out", str(tmp_path / "q.root"), "--quiet", "--option", "mpi=false"]
    env = {k: v for k, v in os.environ.items() if k != "HEPNN_DEBUG"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert uproot.open(tmp_path / "q.root")["jets"].num_entries == 2
    assert done.stdout.count("FastJet release") == (2 if debug else 0), done.stdout[:500]
