"""hepnn.Tagger in analysis code: jet collections, coffea NanoEvents (eager and dask), dask-awkward.

Two runs: a jet-level b-tagger trained on the real CMS NanoAOD file of ``tests/data`` and a
multiclass tagger whose track inputs come from a linked collection (``Track_jetIdx``),
trained on a generated ttbar sample rewritten as NanoAOD (``run``/``luminosityBlock``
branches, no ``Jet_energy`` beside ``Jet_mass``, as coffea's schema wants).
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

import hepnn
import hepnn.io
from hepnn.config import load_config
from hepnn.exceptions import InputDataError

pytest.importorskip("keras")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")
dak = pytest.importorskip("dask_awkward")

DATA = Path(__file__).parent / "data"
NANOAOD = DATA / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
TUTORIAL = Path(__file__).resolve().parents[1] / "tutorials" / "coffea_tagger_processor.py"

# coffea's NanoAOD schema warns about cross-references this old test file lacks
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:coffea", "ignore::UserWarning:coffea")


def quiet(_):
    pass


def train(config, out):
    from hepnn.training.trainer import Trainer

    Trainer(config, log=quiet).fit(out, data=hepnn.io.load(config))
    return out


@pytest.fixture(scope="module")
def nano_run(tmp_path_factory):
    config = load_config(DATA / "nanoaod_btag.yaml", [
        "model.name=dense", "model.units=[8]", "training.epochs=1", "training.verbose=0", "training.early_stopping=null",
    ])
    return train(config, tmp_path_factory.mktemp("runs") / "nano")


@pytest.fixture(scope="module")
def nano_arrays(nano_run):
    return uproot.open(NANOAOD)["Events"].arrays(filter_name=hepnn.Tagger.load(nano_run).required_branches)


@pytest.fixture(scope="module")
def track_file(tmp_path_factory):
    """A generated ttbar sample written as NanoAOD: collections Jet and Track with their counters."""
    pytest.importorskip("pythia8mc")
    from hepnn.datasets import generate

    folder = tmp_path_factory.mktemp("nano_tracks")
    source = generate("ttbar", 60, seed=3, out=folder / "ttbar.root", layout="per_event", progress=False)
    events = uproot.open(source)["Events"].arrays()
    n = len(events)
    out = folder / "nano_tracks.root"
    with uproot.recreate(out) as file:
        branches = {
            "run": np.ones(n, np.uint32), "luminosityBlock": np.ones(n, np.uint32),
            "event": np.arange(n, dtype=np.uint64),
            "Jet": ak.zip({v: events[f"Jet_{v}"] for v in ("pt", "eta", "phi", "mass", "tau32", "hadronFlavour")}),
            "Track": ak.zip({v: events[f"Track_{v}"] for v in ("pt", "eta", "phi", "d0sig", "z0sig", "jetIdx")}),
        }
        tree = file.mktree("Events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()},
                           counter_name=lambda name: f"n{name}", field_name=lambda outer, inner: f"{outer}_{inner}")
        tree.extend(branches)
    return out


@pytest.fixture(scope="module")
def track_run(track_file, tmp_path_factory):
    config = load_config({
        "data": {
            "layout": "per_event",
            "files": [{"path": str(track_file), "tree": "Events"}],
            "jets": "Jet",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
            "cuts": [{"variable": "Jet_pt", "min": 40.0}],
            "inputs": {
                "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_tau32"]},
                "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx", "max_length": 6,
                           "variables": ["Track_d0sig", "Track_z0sig", "Track_pt"], "sort_by": {"variable": "Track_pt"}},
            },
        },
        "model": {"name": "deepsets", "phi_units": [8], "dense_units": [8], "branch_units": 4},
        "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "early_stopping": None},
    })
    return train(config, tmp_path_factory.mktemp("runs") / "tracks")


def nanoevents(path, mode="eager"):
    coffea = pytest.importorskip("coffea.nanoevents")

    class Schema(coffea.NanoAODSchema):
        error_missing_event_ids = False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return coffea.NanoEventsFactory.from_root({str(path): "Events"}, mode=mode, schemaclass=Schema).events()


def same(a, b, fields=()):
    assert ak.num(a).tolist() == ak.num(b).tolist()
    for f in fields or [None]:
        x, y = (a, b) if f is None else (a[f], b[f])
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(x)), ak.to_numpy(ak.flatten(y)), rtol=0, atol=1e-6)


def test_jet_collection_of_real_nanoaod(nano_run, nano_arrays):
    tagger = hepnn.Tagger.load(nano_run)
    expected = tagger.predict(nano_arrays)
    assert expected.type.length == 200 and ak.num(expected).tolist() == ak.num(nano_arrays.Jet_pt).tolist()
    events = nanoevents(NANOAOD, mode="virtual")  # coffea's default: branches read when touched
    same(tagger.predict(events.Jet), expected)
    same(tagger.predict(events), expected)
    # a jet selection made before scoring: the scores of the selected jets, aligned with them
    selected = events.Jet[(events.Jet.pt > 30) & (abs(events.Jet.eta) < 2.4)]
    got = tagger.predict(selected)
    same(got, expected[(nano_arrays.Jet_pt > 30) & (abs(nano_arrays.Jet_eta) < 2.4)])
    assert ak.sum(ak.num(got)) < ak.sum(ak.num(expected))
    # a plain awkward collection: fields are the jet variables without the Jet_ prefix
    plain = ak.zip({b[len("Jet_"):]: nano_arrays[b] for b in tagger.required_branches})
    same(tagger.predict(plain), expected)
    with pytest.raises(InputDataError, match="Jet_btagDeepB"):
        tagger.predict(ak.zip({f: plain[f] for f in plain.fields if f != "btagDeepB"}))


def test_jet_collection_with_linked_tracks_uses_the_nanoevents_parent(track_run, track_file):
    tagger = hepnn.Tagger.load(track_run)
    arrays = uproot.open(track_file)["Events"].arrays()
    expected = tagger.predict(arrays)
    assert expected.fields == ["light", "c", "b"]
    events = nanoevents(track_file)
    same(tagger.predict(events.Jet), expected, expected.fields)
    same(tagger.predict(events), expected, expected.fields)
    # without the event, the tracks cannot be found: the error says what to pass
    plain = ak.zip({f: arrays[f"Jet_{f}"] for f in ("pt", "eta", "phi", "mass", "tau32")})
    with pytest.raises(InputDataError, match=r"(?s)Track_d0sig.*pass the whole events array"):
        tagger.predict(plain)
    with pytest.raises(InputDataError, match="before any jet selection"):
        tagger.predict(events.Jet[events.Jet.pt > 40])


def test_dask_awkward_input_is_lazy_and_equals_eager(nano_run, nano_arrays, monkeypatch):
    tagger = hepnn.Tagger.load(nano_run)
    expected = tagger.predict(nano_arrays)
    calls = []
    score = tagger._score
    monkeypatch.setattr(tagger, "_score", lambda *a, **k: calls.append(1) or score(*a, **k))
    lazy = dak.from_awkward(nano_arrays, npartitions=3)
    scores = tagger.predict(lazy)
    assert isinstance(scores, dak.Array) and scores.npartitions == 3
    assert calls == [], "building the graph must not score anything"
    assert str(scores._meta.type).endswith("var * float32")
    # the typetracer pass touches exactly the branches the tagger reads
    (needed,) = dak.report_necessary_columns(scores).values()
    assert set(needed) == set(tagger.required_branches)
    same(scores.compute(), expected)
    assert len(calls) == 3
    # a jet collection as a dask-awkward array works too
    jets = dak.from_awkward(ak.zip({b[4:]: nano_arrays[b] for b in tagger.required_branches}), npartitions=2)
    same(tagger.predict(jets).compute(), expected)
    # missing branches are reported when the graph is built, not at compute time
    broken = dak.from_awkward(nano_arrays[[f for f in nano_arrays.fields if f != "Jet_mass"]], npartitions=2)
    with pytest.raises(InputDataError, match="Jet_mass"):
        tagger.predict(broken)


def test_coffea_dask_nanoevents_read_only_what_the_tagger_needs(nano_run, nano_arrays, track_run, track_file):
    tagger = hepnn.Tagger.load(nano_run)
    expected = tagger.predict(nano_arrays)
    events = nanoevents(NANOAOD, mode="dask")
    for lazy in (tagger.predict(events.Jet), tagger.predict(events)):
        assert isinstance(lazy, dak.Array)
        (needed,) = dak.report_necessary_columns(lazy).values()
        assert set(needed) == set(tagger.required_branches) | {"nJet"}
        same(lazy.compute(), expected)
    # linked collections: the whole dask events
    tracks = hepnn.Tagger.load(track_run)
    expected = tracks.predict(uproot.open(track_file)["Events"].arrays())
    lazy = tracks.predict(nanoevents(track_file, mode="dask"))
    same(lazy.compute(), expected, expected.fields)


@pytest.fixture(scope="module")
def muon_run(tmp_path_factory):
    """A tagger on the real NanoAOD file whose second input is a linked collection (``Muon_jetIdx``)."""
    config = load_config(DATA / "nanoaod_btag.yaml", [
        "data.inputs.muons={kind: sequence, collection: Muon, link: Muon_jetIdx, max_length: 2, "
        "variables: [Muon_pt, Muon_eta, Muon_pfRelIso04_all], sort_by: {variable: Muon_pt}}",
        "model.name=deepsets", "model.phi_units=[4]", "model.dense_units=[4]", "model.branch_units=4",
        "training.epochs=1", "training.verbose=0", "training.early_stopping=null",
    ])
    return train(config, tmp_path_factory.mktemp("runs") / "muons")


def test_dask_jet_collection_with_linked_collection_is_lazy_and_equals_eager(muon_run, monkeypatch):
    """``tagger.predict(events.Jet)`` in dask mode when the tagger reads a linked collection (Muon)."""
    tagger = hepnn.Tagger.load(muon_run)
    assert any(b.startswith("Muon_") for b in tagger.required_branches)
    expected = tagger.predict(uproot.open(NANOAOD)["Events"].arrays(filter_name=tagger.required_branches))
    assert ak.sum(ak.num(expected)) > 100
    calls = []
    score = tagger._score
    monkeypatch.setattr(tagger, "_score", lambda *a, **k: calls.append(1) or score(*a, **k))
    events = nanoevents(NANOAOD, mode="dask")
    lazy = tagger.predict(events.Jet)
    assert isinstance(lazy, dak.Array) and calls == [], "building the graph must not score anything"
    # the typetracer pass: the output type, and exactly the branches the tagger reads (+ counters)
    assert str(lazy._meta.type).endswith("var * float32")
    (needed,) = dak.report_necessary_columns(lazy).values()
    assert set(needed) == set(tagger.required_branches) | {"nJet", "nMuon"}
    got = lazy.compute(scheduler="sync")
    same(got, expected)
    assert calls and ak.num(got).tolist() == ak.num(events.Jet.pt.compute()).tolist()
    # a selected collection is not all of events.Jet: the graph build says what to pass
    with pytest.raises(InputDataError, match=r"(?s)Muon_pt.*before any jet selection"):
        tagger.predict(events.Jet[events.Jet.pt > 30])
    # the eager path gives the same
    same(tagger.predict(nanoevents(NANOAOD, mode="virtual").Jet), expected)


def test_partition_scorer_pickles_as_its_run_directory(nano_run, nano_arrays):
    from hepnn.training.tagger import _PartitionScorer

    tagger = hepnn.Tagger.load(nano_run)
    scorer = pickle.loads(pickle.dumps(_PartitionScorer(tagger, None)))
    assert scorer.tagger is not tagger and str(scorer.tagger.path) == os.path.abspath(tagger.path)
    same(scorer(nano_arrays), tagger.predict(nano_arrays))


def _tutorial():
    spec = importlib.util.spec_from_file_location("coffea_tagger_processor", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coffea_processor_fills_the_score_per_flavour_on_real_nanoaod(nano_run, nano_arrays):
    """The tutorial processor (coffea 2025 dask style) on the real NanoAOD file."""
    pytest.importorskip("coffea")
    pytest.importorskip("dask_histogram")
    tutorial = _tutorial()
    tagger = hepnn.Tagger.load(nano_run)
    events = tutorial.open_events(str(NANOAOD))
    out = tutorial.TaggerProcessor(nano_run).process(events)
    assert isinstance(out["score"], tutorial.hist.dask.Hist)  # lazy: a graph, not numbers
    (result,) = tutorial.dask.compute(out, scheduler="sync")
    assert result["n_events"] == 200 and result["n_jets"] == int(ak.sum(ak.num(nano_arrays.Jet_pt)))
    assert result["n_unscored"] == 0
    scores = ak.to_numpy(ak.flatten(tagger.predict(nano_arrays)))
    flavour = ak.to_numpy(ak.flatten(uproot.open(NANOAOD)["Events"]["Jet_hadronFlavour"].array()))
    h = result["score"]
    for name, code in tutorial.FLAVOURS.items():
        counts, _ = np.histogram(scores[flavour == code], bins=20, range=(0.0, 1.0))
        np.testing.assert_array_equal(h[{"flavour": name}].values(), counts)
    assert h.values().sum() == len(scores)
