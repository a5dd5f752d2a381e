"""Physics audit of hepnn.datasets: the numbers the generator writes against brute-force references.

Each reference is written independently of the code under test: anti-kT jets from FastJet run
event by event on PseudoJets, N-subjettiness and soft drop from numpy re-implementations (exclusive
kT axes + one-pass minimisation, C/A declustering), truth matching and hadron flavour from loops
over the event record, impact parameters from the track geometry with the same random draws.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
fastjet = pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")
ak = pytest.importorskip("awkward")

from hepnn.datasets import SAMPLES, generate, generator  # noqa: E402
from hepnn.datasets.clustering import cluster_jets, kinematics  # noqa: E402
from hepnn.datasets.generator import process_batch  # noqa: E402
from hepnn.datasets.matching import hadron_flavour, heavy_flavour_of, match_resonance  # noqa: E402
from hepnn.datasets.pythia import make_pythia, next_batch  # noqa: E402
from hepnn.datasets.substructure import substructure  # noqa: E402
from hepnn.datasets.tracks import impact_parameters  # noqa: E402
from hepnn.datasets.writer import JET_FIELDS, PART_FIELDS, TRACK_FIELDS  # noqa: E402


def _events(sample: str, seed: int, n_events: int):
    pythia = make_pythia(SAMPLES.get(sample).pythia_settings(seed))
    return pythia, next_batch(pythia, n_events)


@pytest.fixture(scope="module")
def top_events():
    return _events("top", 3, 40)


@pytest.fixture(scope="module")
def w_events():
    return _events("w", 4, 40)


@pytest.fixture(scope="module")
def ttbar_events():
    return _events("ttbar", 5, 20)


# ---------------------------------------------------------------- references (numpy / plain loops)

def _rapidity(p):
    return 0.5 * np.log((p[..., 3] + p[..., 2]) / (p[..., 3] - p[..., 2]))


def _phi(p):
    return np.arctan2(p[..., 1], p[..., 0])


def _pt(p):
    return np.hypot(p[..., 0], p[..., 1])


def _wrap(dphi):
    return np.mod(dphi + np.pi, 2 * np.pi) - np.pi


def _pair_distance2(p):
    """(n, n) squared rapidity-azimuth distances, inf on the diagonal."""
    y, phi = _rapidity(p), _phi(p)
    d2 = (y[:, None] - y[None, :]) ** 2 + _wrap(phi[:, None] - phi[None, :]) ** 2
    np.fill_diagonal(d2, np.inf)
    return d2


def _exclusive_kt_axes(p, n_axes):
    """Exclusive kT (E-scheme, no beam distance: R -> infinity) down to ``n_axes`` pseudo-jets."""
    p = [row for row in p]
    while len(p) > n_axes:
        arr = np.array(p)
        pt2 = _pt(arr) ** 2
        dij = np.minimum(pt2[:, None], pt2[None, :]) * _pair_distance2(arr)
        a, b = np.unravel_index(np.argmin(dij), dij.shape)
        merged = p[a] + p[b]
        p = [row for k, row in enumerate(p) if k not in (a, b)] + [merged]
    return np.array(p)


def _tau(p, axis_y, axis_phi, r0):
    dr = np.sqrt((_rapidity(p)[:, None] - axis_y[None, :]) ** 2
                 + _wrap(_phi(p)[:, None] - axis_phi[None, :]) ** 2)
    return (_pt(p) * dr.min(axis=1)).sum() / (_pt(p).sum() * r0)


def _tau_one_pass(p, n_axes, r0, iterations=100, precision=1e-4):
    """N-subjettiness (beta = 1): kT axes, then Lloyd/Weiszfeld steps (weights pT / dR) to convergence."""
    axes = _exclusive_kt_axes(p, n_axes)
    ay, aphi = _rapidity(axes), _phi(axes)
    y, phi, pt = _rapidity(p), _phi(p), _pt(p)
    for _ in range(iterations):
        dphi = _wrap(phi[:, None] - aphi[None, :])
        d2 = (y[:, None] - ay[None, :]) ** 2 + dphi**2
        owner = d2.argmin(axis=1)
        dist = np.sqrt(d2[np.arange(len(p)), owner])
        weight = np.where(dist > 0, pt / np.where(dist > 0, dist, 1.0), 0.0)
        new_y, new_phi = ay.copy(), aphi.copy()
        for k in range(n_axes):
            w = weight * (owner == k)
            if w.sum() > 0:
                new_y[k] = (w * y).sum() / w.sum()
                new_phi[k] = aphi[k] + (w * dphi[:, k]).sum() / w.sum()
        moved = np.sqrt(((new_y - ay) ** 2 + (new_phi - aphi) ** 2).sum())
        ay, aphi = new_y, new_phi
        if moved < precision:
            break
    return _tau(p, ay, aphi, r0)


def _mass(p):
    return np.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))


def _soft_drop_mass(p, z_cut=0.1):
    """C/A clustering (plain loop), then decluster: stop at min(pT1, pT2)/(pT1 + pT2) > z_cut (beta = 0)."""
    nodes = [(row, None, None) for row in p]
    active = list(range(len(p)))
    while len(active) > 1:
        d2 = _pair_distance2(np.array([nodes[k][0] for k in active]))
        a, b = np.unravel_index(np.argmin(d2), d2.shape)
        ia, ib = active[a], active[b]
        nodes.append((nodes[ia][0] + nodes[ib][0], ia, ib))
        active = [k for k in active if k not in (ia, ib)] + [len(nodes) - 1]
    k = len(nodes) - 1
    while nodes[k][1] is not None:
        a, b = nodes[k][1], nodes[k][2]
        pt_a, pt_b = _pt(nodes[a][0]), _pt(nodes[b][0])
        if min(pt_a, pt_b) / (pt_a + pt_b) > z_cut:
            break
        k = a if pt_a > pt_b else b
    return _mass(nodes[k][0])


def _fastjet_reference(batch, r, pt_min, pt_max, eta_max, n_leading):
    """Jets event by event with FastJet's PseudoJet interface: (event, four-vector, constituent indices)."""
    out = []
    for ev in range(batch.n_events):
        first = batch.offsets[ev]
        index = first + np.flatnonzero((batch.status[first:batch.offsets[ev + 1]] > 0)
                                       & ~np.isin(np.abs(batch.id[first:batch.offsets[ev + 1]]), (12, 14, 16)))
        particles = []
        for i in index:
            pj = fastjet.PseudoJet(float(batch.px[i]), float(batch.py[i]), float(batch.pz[i]), float(batch.e[i]))
            pj.set_user_index(int(i))
            particles.append(pj)
        sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, r))
        for rank, jet in enumerate(fastjet.sorted_by_pt(sequence.inclusive_jets(0.0))):
            if n_leading is not None and rank >= n_leading:
                break
            if jet.pt() > pt_min and (pt_max is None or jet.pt() < pt_max) and abs(jet.eta()) < eta_max:
                constituents = sorted(jet.constituents(), key=lambda c: -c.pt())
                out.append((ev, [jet.px(), jet.py(), jet.pz(), jet.E()], [c.user_index() for c in constituents]))
    return out


def _daughters(batch, g):
    first = batch.offsets[np.searchsorted(batch.offsets, g, side="right") - 1]
    d1, d2 = batch.daughter1[g], batch.daughter2[g]
    return [] if d1 <= 0 else [first + d for d in range(d1, max(d1, d2) + 1)]


def _last_copy(batch, g):
    while True:
        copies = [d for d in _daughters(batch, g) if batch.id[d] == batch.id[g]]
        if not copies:
            return g
        g = copies[0]


def _delta_r(batch, g, eta, phi):
    pt = np.hypot(batch.px[g], batch.py[g])
    return np.hypot(np.arcsinh(batch.pz[g] / pt) - eta, _wrap(np.arctan2(batch.py[g], batch.px[g]) - phi))


def _jet_eta_phi(jets):
    _, eta, phi, _ = kinematics(jets.px, jets.py, jets.pz, jets.e)
    return eta, phi


def _constituents(batch, jets, j):
    cons = jets.constituents[jets.cons_offsets[j]:jets.cons_offsets[j + 1]]
    return np.stack([batch.px[cons], batch.py[cons], batch.pz[cons], batch.e[cons]], axis=1)


# ---------------------------------------------------------------- clustering

@pytest.mark.parametrize(("sample", "cuts"), [
    ("ttbar", dict(r=0.4, pt_min=20.0, pt_max=None, eta_max=2.5, n_leading=None)),
    ("ttbar", dict(r=0.4, pt_min=30.0, pt_max=90.0, eta_max=1.5, n_leading=3)),
    ("top", dict(r=0.8, pt_min=550.0, pt_max=650.0, eta_max=2.0, n_leading=2)),
])
def test_jets_match_fastjet_event_by_event(sample, cuts, request):
    _, batch = request.getfixturevalue(f"{sample}_events")
    jets = cluster_jets(batch, **cuts)
    reference = _fastjet_reference(batch, **cuts)
    assert jets.n_jets == len(reference) > 0
    for j, (ev, four, cons) in enumerate(reference):
        assert jets.event[j] == ev
        np.testing.assert_allclose([jets.px[j], jets.py[j], jets.pz[j], jets.e[j]], four, rtol=1e-9, atol=1e-9)
        got = jets.constituents[jets.cons_offsets[j]:jets.cons_offsets[j + 1]]
        assert sorted(got.tolist()) == sorted(cons)
        pt = np.hypot(batch.px[got], batch.py[got])
        assert (np.diff(pt) <= 0).all()  # constituents pT-ordered
    pt, eta, _, _ = kinematics(jets.px, jets.py, jets.pz, jets.e)
    for ev in np.unique(jets.event):  # jets pT-ordered within each event
        assert (np.diff(pt[jets.event == ev]) <= 0).all()
    assert (pt > cuts["pt_min"]).all() and (np.abs(eta) < cuts["eta_max"]).all()


def test_jet_kinematics_are_those_of_the_constituent_sum(top_events):
    _, batch = top_events
    jets = cluster_jets(batch, 0.8, 550.0, 650.0, 2.0, 2)
    for j in range(jets.n_jets):
        total = _constituents(batch, jets, j).sum(axis=0)
        pt, eta, phi, mass = kinematics(*(np.array([x]) for x in (jets.px[j], jets.py[j], jets.pz[j], jets.e[j])))
        np.testing.assert_allclose(pt[0], _pt(total), rtol=1e-10)
        np.testing.assert_allclose(eta[0], np.arcsinh(total[2] / _pt(total)), rtol=1e-10, atol=1e-12)
        assert abs(_wrap(phi[0] - _phi(total))) < 1e-10
        np.testing.assert_allclose(mass[0], _mass(total), rtol=1e-7)


# ---------------------------------------------------------------- substructure

@pytest.fixture(scope="module")
def top_substructure(top_events):
    pythia, batch = top_events
    jets = cluster_jets(batch, 0.8, 550.0, 650.0, 2.0, 2)
    cons = jets.constituents
    taus, sd_mass = substructure(batch.px[cons], batch.py[cons], batch.pz[cons], batch.e[cons],
                                 np.diff(jets.cons_offsets), 0.8)
    return batch, jets, taus, sd_mass


def test_nsubjettiness_matches_one_pass_kt_reference(top_substructure):
    """Documented: beta = 1, one-pass kT axes, normalised by sum(pT) * R0 with R0 = 0.8, rapidity distances."""
    batch, jets, taus, _ = top_substructure
    for j in range(min(jets.n_jets, 12)):
        p = _constituents(batch, jets, j)
        for n in (1, 2, 3):
            kt_only = _tau(p, _rapidity(_exclusive_kt_axes(p, n)), _phi(_exclusive_kt_axes(p, n)), 0.8)
            one_pass = _tau_one_pass(p, n, 0.8)
            np.testing.assert_allclose(taus[j, n - 1], one_pass, rtol=2e-3, err_msg=f"jet {j} tau{n}")
            assert taus[j, n - 1] <= kt_only * (1 + 1e-9)  # the minimisation never makes tau larger
    assert (taus[:, 1] <= taus[:, 0]).all() and (taus[:, 2] <= taus[:, 1]).all()


def test_soft_drop_mass_matches_ca_declustering_reference(top_substructure):
    batch, jets, _, sd_mass = top_substructure
    for j in range(min(jets.n_jets, 12)):
        np.testing.assert_allclose(sd_mass[j], _soft_drop_mass(_constituents(batch, jets, j)), rtol=1e-9)


def test_written_ratios_and_counts(top_events):
    pythia, batch = top_events
    chunk = process_batch(SAMPLES.get("top"), pythia, batch, np.random.default_rng(1))
    jet = chunk["jet"]
    assert len(jet["pt"]) > 0
    np.testing.assert_allclose(jet["tau21"], jet["tau2"] / jet["tau1"], rtol=1e-6)
    np.testing.assert_allclose(jet["tau32"], jet["tau3"] / jet["tau2"], rtol=1e-6)
    np.testing.assert_array_equal(jet["nparticles"], chunk["part_counts"])
    assert len(chunk["part"]["pt"]) == chunk["part_counts"].sum()
    assert (jet["label"] == 1).all() and (jet["flavour"] == 0).all()


# ---------------------------------------------------------------- truth labels

@pytest.mark.parametrize(("sample", "signal_id"), [("top", 6), ("w", 24)])
def test_resonance_matching_matches_a_loop_over_the_record(sample, signal_id, request):
    """A jet is signal when the resonance (last copy) and all its decay quarks are within dR < 0.8."""
    _, batch = request.getfixturevalue(f"{sample}_events")
    jets = cluster_jets(batch, 0.8, 550.0, 650.0, 2.0, 2)
    matched = match_resonance(batch, jets, signal_id, 0.8)
    eta, phi = _jet_eta_phi(jets)
    reference = np.zeros(jets.n_jets, dtype=bool)
    for j in range(jets.n_jets):
        first, stop = batch.offsets[jets.event[j]], batch.offsets[jets.event[j] + 1]
        for g in first + np.flatnonzero(np.abs(batch.id[first:stop]) == signal_id):
            if any(batch.id[d] == batch.id[g] for d in _daughters(batch, g)):
                continue  # not the last copy
            products = _daughters(batch, g)
            if signal_id == 6:
                w = [d for d in products if abs(batch.id[d]) == 24]
                assert len(w) == 1 and len(products) == 2
                products = [d for d in products if abs(batch.id[d]) != 24] + _daughters(batch, _last_copy(batch, w[0]))
            assert len(products) == (3 if signal_id == 6 else 2)
            assert all(1 <= abs(batch.id[d]) <= 5 for d in products)  # quarks
            reference[j] |= all(_delta_r(batch, k, eta[j], phi[j]) < 0.8 for k in [g, *products])
    np.testing.assert_array_equal(matched, reference)
    assert matched.any()


def test_hadron_flavour_matches_a_loop_over_the_record(ttbar_events):
    """5: a weakly decaying B hadron (no B hadron among its daughters), pT > 5 GeV, dR < 0.3; else 4 for C."""
    _, batch = ttbar_events
    jets = cluster_jets(batch, 0.4, 20.0, None, 2.5, None)
    label = hadron_flavour(batch, jets)
    eta, phi = _jet_eta_phi(jets)
    reference = np.zeros(jets.n_jets, dtype=np.int32)
    flavour = heavy_flavour_of(batch.id)
    for j in range(jets.n_jets):
        first, stop = batch.offsets[jets.event[j]], batch.offsets[jets.event[j] + 1]
        for g in first + np.flatnonzero(flavour[first:stop] > 0):
            if any(flavour[d] == flavour[g] for d in _daughters(batch, g)):
                continue  # decays to a hadron of the same flavour: not the weakly decaying one
            if np.hypot(batch.px[g], batch.py[g]) > 5.0 and _delta_r(batch, g, eta[j], phi[j]) < 0.3:
                reference[j] = max(reference[j], flavour[g])
    np.testing.assert_array_equal(label, reference)
    assert {0, 5} <= set(label.tolist())


# ---------------------------------------------------------------- tracks

def test_track_impact_parameters_match_the_geometry(ttbar_events):
    """d0/z0 of a straight line from the production vertex, smeared with the same draws, lifetime-signed."""
    pythia, batch = ttbar_events
    defn = SAMPLES.get("ttbar")
    chunk = process_batch(defn, pythia, batch, np.random.default_rng(7))
    jets = cluster_jets(batch, 0.4, 20.0, None, 2.5, None)
    jet_pt = np.hypot(jets.px, jets.py)
    jet_eta, jet_phi = np.arcsinh(jets.pz / jet_pt), np.arctan2(jets.py, jets.px)
    rows, owners = [], []
    for j in range(jets.n_jets):
        for c in jets.constituents[jets.cons_offsets[j]:jets.cons_offsets[j + 1]]:
            charge = pythia.particleData.charge(int(batch.id[c]))
            pt = np.hypot(batch.px[c], batch.py[c])
            vertex = np.array([batch.vx[c], batch.vy[c], batch.vz[c]])
            if charge == 0 or pt <= 1.0 or np.hypot(*vertex[:2]) >= 122.5 or abs(vertex[2]) >= 400.0:
                continue
            rows.append((c, pt, vertex))
            owners.append(j)
    draws = np.random.default_rng(7).normal(size=(len(rows), 2))  # documented: (d0, z0) per track
    noise_d0, noise_z0 = draws[:, 0], draws[:, 1]
    expected = []
    for k, ((c, pt, vertex), j) in enumerate(zip(rows, owners)):
        u = np.array([batch.px[c], batch.py[c]]) / pt
        t = -vertex[:2] @ u  # closest approach to the beam line along the flight direction
        closest = vertex[:2] + t * u
        z0 = vertex[2] + t * batch.pz[c] / pt
        s_d0, s_z0 = np.hypot(0.010, 0.050 / pt), np.hypot(0.020, 0.080 / pt)
        # the smearing moves the point along the signed axis n = (u_y, -u_x): d0_geo = closest . n
        n_axis = np.array([u[1], -u[0]])
        d0_meas = closest @ n_axis + noise_d0[k] * s_d0
        z0_meas = z0 + noise_z0[k] * s_z0
        on_jet_side = (d0_meas * n_axis) @ np.array([np.cos(jet_phi[j]), np.sin(jet_phi[j])])
        sign_d0 = 1.0 if on_jet_side >= 0 else -1.0
        sign_z0 = 1.0 if (jet_eta[j] - np.arcsinh(batch.pz[c] / pt)) * z0_meas >= 0 else -1.0
        expected.append((sign_d0 * abs(d0_meas), sign_z0 * abs(z0_meas), sign_d0 * abs(d0_meas) / s_d0,
                         sign_z0 * abs(z0_meas) / s_z0, np.hypot(*closest)))
    expected = np.array(expected)
    track = chunk["track"]
    assert len(track["d0"]) == len(expected) > 100
    # a track exactly along its jet (one-track jet) has no side: either sign is right
    sided = np.abs(np.sin(track["phi"] - jet_phi[owners])) > 1e-6
    for col, key in enumerate(("d0", "z0", "d0sig", "z0sig")):
        np.testing.assert_allclose(track[key][sided], expected[sided, col], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(np.abs(track["d0"]), np.abs(expected[:, 0]), rtol=1e-5, atol=1e-7)
    assert (expected[:, 4] > 0.1).any()  # some tracks come from displaced (B/D decay) vertices
    np.testing.assert_array_equal(chunk["track_counts"], np.bincount(owners, minlength=jets.n_jets))
    np.testing.assert_array_equal(chunk["part"]["istrack"].sum(), len(rows))


# ---------------------------------------------------------------- writer layouts and reproducibility

@pytest.fixture(scope="module")
def ttbar_files(tmp_path_factory):
    """The same 80 ttbar jets (seed 3, two workers written in blocks of >= 10 jets) per jet, per event,
    with other performance options (chunk_jets, events_per_batch), and with another seed."""
    folder = tmp_path_factory.mktemp("physics_audit")
    small = {"chunk_jets": 7, "events_per_batch": 6}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generator, "INTERLEAVE_JETS", 10, raising=False)
        return {
            "per_jet": generate("ttbar", 80, seed=3, jobs=2, out=folder / "j.root", progress=False, options=small),
            "per_event": generate("ttbar", 80, seed=3, jobs=2, out=folder / "e.root", layout="per_event",
                                  progress=False, options=small),
            "rechunked": generate("ttbar", 80, seed=3, jobs=2, out=folder / "c.root", progress=False,
                                  options={"chunk_jets": 1000, "events_per_batch": 10}),
            "other_seed": generate("ttbar", 80, seed=4, jobs=2, out=folder / "s.root", progress=False,
                                   options=small),
        }


def _np(x):
    return np.asarray(ak.to_numpy(x))


def test_layouts_hold_the_same_numbers_with_the_same_dtypes(ttbar_files):
    jets_tree = uproot.open(ttbar_files["per_jet"])["jets"]
    events_tree = uproot.open(ttbar_files["per_event"])["Events"]
    jets, events = jets_tree.arrays(library="ak"), events_tree.arrays(library="ak")
    assert len(jets) == 80 == int(ak.sum(events.nJet))
    for key, (flat, nano) in JET_FIELDS.items():
        a, b = _np(jets[flat]), _np(ak.flatten(events[f"Jet_{nano}"]))
        assert a.dtype == b.dtype == (np.int32 if key in ("nparticles", "label", "flavour") else np.float32), key
        np.testing.assert_array_equal(a, b, err_msg=key)
    for collection, nano, fields in (("part", "PFCand", PART_FIELDS), ("track", "Track", TRACK_FIELDS)):
        for key, name in fields.items():
            a, b = _np(ak.flatten(jets[f"{collection}_{key}"])), _np(ak.flatten(events[f"{nano}_{name}"]))
            assert a.dtype == b.dtype, key
            np.testing.assert_array_equal(a, b, err_msg=f"{collection}_{key}")
        # jetIdx: the owning jet's index within its event
        first_jet = np.repeat(np.r_[0, np.cumsum(_np(events.nJet))[:-1]], _np(events[f"n{nano}"]))
        owner = _np(ak.flatten(events[f"{nano}_jetIdx"])) + first_jet
        counts = _np(jets[f"n{collection}"])
        np.testing.assert_array_equal(owner, np.repeat(np.arange(len(jets)), counts))
    np.testing.assert_array_equal(_np(jets.jet_nparticles), _np(jets.npart))
    np.testing.assert_array_equal(_np(jets.event_number), np.repeat(_np(events.event), _np(events.nJet)))
    assert len(np.unique(_np(events.event))) == len(events)
    assert events_tree["event"].interpretation.from_dtype == np.dtype(">i8")
    assert ak.all(events.Jet_pt[:, 1:] <= events.Jet_pt[:, :-1])
    assert ak.all(jets.track_pt[:, 1:] <= jets.track_pt[:, :-1])
    np.testing.assert_array_equal(_np(ak.flatten(jets.part_d0[jets.part_istrack == 1])),
                                  _np(ak.flatten(jets.track_d0)))


def test_performance_options_do_not_change_the_file_and_seeds_do(ttbar_files):
    """chunk_jets and events_per_batch are memory/speed knobs: before, with two workers, chunk_jets changed
    the order of the jets in the file, and events_per_batch every smeared d0/z0."""
    a = uproot.open(ttbar_files["per_jet"])["jets"].arrays(library="ak")
    b = uproot.open(ttbar_files["rechunked"])["jets"].arrays(library="ak")
    c = uproot.open(ttbar_files["other_seed"])["jets"].arrays(library="ak")
    assert a.fields == b.fields
    for field in a.fields:
        np.testing.assert_array_equal(_np(ak.flatten(a[field], axis=None)), _np(ak.flatten(b[field], axis=None)),
                                      err_msg=field)
    assert not np.array_equal(_np(a.jet_pt), _np(c.jet_pt))


def test_workers_are_interleaved_in_blocks_of_whole_events(ttbar_files):
    events = _np(uproot.open(ttbar_files["per_jet"])["jets"]["event_number"].array(library="np"))
    worker = events % 2
    runs = np.flatnonzero(np.r_[True, worker[1:] != worker[:-1]])
    lengths = np.diff(np.r_[runs, len(events)])
    assert len(runs) >= 4 and (worker[runs] == np.arange(len(runs)) % 2).all()  # worker 0, 1, 0, 1, ...
    assert (lengths[:-2] >= 10).all()  # blocks of at least INTERLEAVE_JETS, the last ones: what was left
    for start in runs[1:]:  # a block boundary never splits an event
        assert events[start] not in events[:start]
    assert (np.diff(events[worker == 0]) >= 0).all() and (np.diff(events[worker == 1]) >= 0).all()


def test_smearing_does_not_depend_on_how_tracks_are_batched():
    """Smearing 60 tracks at once or as 25 + 35 with the same generator gave different d0/z0 before."""
    rng = np.random.default_rng(0)
    n = 60
    px, py, pz = rng.normal(size=n) * 5 + 2, rng.normal(size=n) * 5, rng.normal(size=n) * 10
    vx, vy, vz = rng.normal(size=(3, n)) * 0.5
    jet_phi, jet_eta = np.full(n, 0.3), np.full(n, 0.1)
    args = (px, py, pz, vx, vy, vz, jet_phi, jet_eta)
    whole = impact_parameters(*args, rng=np.random.default_rng(5))
    split_rng = np.random.default_rng(5)
    parts = [impact_parameters(*(a[s] for a in args), rng=split_rng) for s in (slice(0, 25), slice(25, n))]
    for k, name in enumerate(("d0", "z0", "d0sig", "z0sig")):
        np.testing.assert_array_equal(whole[k], np.concatenate([p[k] for p in parts]), err_msg=name)
    # prompt tracks (vertex at the origin): |d0| / sigma(d0) and |z0| / sigma(z0) are the |draws|, (d0, z0) per track
    zero = np.zeros(n)
    d0, z0, d0sig, z0sig = impact_parameters(px, py, pz, zero, zero, zero, jet_phi, jet_eta,
                                             rng=np.random.default_rng(5))
    draws = np.abs(np.random.default_rng(5).normal(size=(n, 2)))
    pt = np.hypot(px, py)
    np.testing.assert_allclose(np.abs(d0), draws[:, 0] * np.hypot(0.010, 0.050 / pt), rtol=1e-12)
    np.testing.assert_allclose(np.abs(z0), draws[:, 1] * np.hypot(0.020, 0.080 / pt), rtol=1e-12)
    np.testing.assert_allclose(np.abs(d0sig), draws[:, 0], rtol=1e-12)
    np.testing.assert_allclose(np.abs(z0sig), draws[:, 1], rtol=1e-12)
