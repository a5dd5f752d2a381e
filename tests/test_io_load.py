"""hepnn.io.load on the two contract layouts."""

from __future__ import annotations

import numpy as np
import pytest
import uproot
import awkward as ak

import hepnn.io
from test_io_fixtures import make_per_event, make_per_jet, per_event_data, write_tree


def _reference_tracks(paths):
    """Slow per-jet reference of the per-event contract example (raw values)."""
    rows, labels = [], []
    for path in paths:
        t = uproot.open(path)["Events"].arrays(library="ak")
        for ev in range(len(t)):
            for j in range(len(t["Jet_pt"][ev])):
                pt, eta, fl = float(t["Jet_pt"][ev][j]), float(t["Jet_eta"][ev][j]), int(t["Jet_hadronFlavour"][ev][j])
                if not (pt >= 20 and abs(eta) < 2.5):
                    continue
                idx = np.flatnonzero(np.asarray(t["Track_jetIdx"][ev]) == j)
                d0sig = np.abs(np.asarray(t["Track_d0sig"][ev])[idx])
                idx = idx[np.argsort(-d0sig, kind="stable")][:15]
                rows.append(np.asarray(t["Track_d0"][ev])[idx])
                labels.append({0: 0, 4: 1, 5: 2}[fl])
    return rows, np.array(labels)


def test_per_event_contract_matches_reference(tmp_path):
    config = make_per_event(tmp_path)
    data = hepnn.io.load(config, standardize=False)
    rows, labels = _reference_tracks(sorted(tmp_path.glob("ttbar_*.root")))
    assert data["tracks"].shape == (len(rows), 15, 7)
    assert data["tracks_mask"].dtype == bool and data["label"].dtype == np.int32
    assert data["split"].dtype == np.int8 and data["weight"].dtype == np.float32
    np.testing.assert_array_equal(data["label"], labels)
    for i, ref in enumerate(rows):
        n = len(ref)
        assert data["tracks_mask"][i].sum() == n
        np.testing.assert_allclose(data["tracks"][i, :n, 3], ref, rtol=1e-6)
        assert (data["tracks"][i, n:] == 0).all()
    assert data.class_names == ["light", "c", "b"]
    assert data.feature_names["tracks"][0] == "Track_pt"
    assert (data["jet"][:, 0] >= 20).all() and (np.abs(data["jet"][:, 1]) < 2.5).all()


def test_per_event_standardised_padding_keeps_pad_value(tmp_path):
    config = make_per_event(tmp_path)
    data = hepnn.io.load(config, step_size=7)
    x, mask = data["tracks"], data["tracks_mask"]
    assert (x[~mask] == 0).all()
    train = data.split("train")
    real = train["tracks"][train["tracks_mask"]]
    np.testing.assert_allclose(real.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(train["jet"].mean(axis=0), 0, atol=1e-4)


def test_chunking_and_file_order_do_not_change_result(tmp_path):
    config = make_per_event(tmp_path, n_files=2)
    a = hepnn.io.load(config, standardize=False, step_size=5)
    b = hepnn.io.load(config, standardize=False, step_size=1000)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # the split depends on the file's base name, entry and jet only
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "ttbar_1.root").rename(moved / "ttbar_1.root")
    c = hepnn.io.load(hepnn.load_config(config, [f"data.files=[{{path: {moved}/ttbar_1.root, tree: Events}}]"]), standardize=False)
    n0 = len(hepnn.io.load(hepnn.load_config(config, ["data.files=[{path: ttbar_0.root, tree: Events}]"]), standardize=False)["label"])
    np.testing.assert_array_equal(c["split"], a["split"][n0:])


def test_per_jet_contract(tmp_path):
    config = make_per_jet(tmp_path, n=30)
    data = hepnn.io.load(config)
    assert data["highlevel"].shape == (60, 4)
    assert data["particles"].shape == (60, 100, 7) and data["particles_mask"].shape == (60, 100)
    assert data["image"].shape == (60, 37, 37, 1)
    np.testing.assert_allclose(data["image"].sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    assert data["label"][:30].tolist() == [1] * 30 and data["label"][30:].tolist() == [0] * 30
    assert data.class_names == ["qcd", "top"]
    raw = hepnn.io.load(config, standardize=False)
    nparts = uproot.open(tmp_path / "top.root")["jets"]["jet_nparticles"].array(library="np")
    np.testing.assert_array_equal(raw["particles_mask"][:30].sum(1), nparts)
    # sorted by log_pt descending, padded with zeros
    logpt = raw["particles"][..., 2]
    for i in range(5):
        n = nparts[i]
        assert (np.diff(logpt[i, :n]) <= 0).all()
        assert (raw["particles"][i, n:] == 0).all()
    # delta_r == hypot(rel_eta, rel_phi)
    m = raw["particles_mask"]
    np.testing.assert_allclose(raw["particles"][..., 6][m], np.hypot(raw["particles"][..., 0], raw["particles"][..., 1])[m], rtol=1e-5)
    # log_e_frac uses the sum of constituent energies: sum(exp) == 1 per jet
    np.testing.assert_allclose((np.exp(raw["particles"][..., 5]) * m).sum(1), 1.0, rtol=1e-4)


def test_label_mapping_two_classes_drops_other_values(tmp_path):
    config = make_per_event(tmp_path)
    cfg = hepnn.load_config(config, ["data.label.classes={light: 0, b: 5}"])
    data = hepnn.io.load(cfg, standardize=False)
    full = hepnn.io.load(config, standardize=False)
    assert set(data["label"].tolist()) <= {0, 1}
    assert len(data["label"]) == int((full["label"] != 1).sum())
    assert data.class_names == ["light", "b"]


def test_analysis_select_weights_and_spectators(tmp_path):
    config = make_per_event(tmp_path)

    class HighPt:
        def select(self, jets):
            assert set(jets) >= {"Jet_pt", "Jet_eta", "Jet_hadronFlavour"}
            return jets["Jet_pt"] > 50

    cfg = hepnn.load_config(config, ["data.spectators=[Jet_pt, Jet_mass]", "data.files=[{path: 'ttbar_*.root', tree: Events, weight: 2.5}]"])
    data = hepnn.io.load(cfg, HighPt(), standardize=False)
    assert (data["spec_Jet_pt"] > 50).all() and data["spec_Jet_mass"].dtype == np.float32
    assert (data["weight"] == 2.5).all()


def test_iterate_yields_bounded_chunks(tmp_path):
    config = make_per_event(tmp_path, n_files=2, n_events=30)
    summary = {}
    chunks = list(hepnn.io.iterate(config, step_size=10, summary=summary))
    assert len(chunks) == 6
    assert summary["n_files"] == 2 and summary["n_skipped"] == 0
    train = list(hepnn.io.iterate(config, split="train", step_size=10))
    assert all((c["split"] == 0).all() for c in train)
    assert set(chunks[0]) == {"jet", "tracks", "tracks_mask", "label", "weight", "split", "fold_key"}


def test_jets_without_tracks_are_fully_masked(tmp_path):
    data = per_event_data(3)
    data["Track"] = ak.zip({k: ak.Array([[], [], []]) for k in ("pt", "eta", "phi", "d0", "z0", "d0sig", "z0sig")} | {"jetIdx": ak.values_astype(ak.Array([[], [], []]), np.int32)})
    write_tree(tmp_path / "ttbar_0.root", "Events", {"Jet": ak.zip({"pt": ak.Array([[30.0], [40.0, 50.0], []]), "eta": ak.Array([[0.0], [1.0, -1.0], []]), "hadronFlavour": ak.values_astype(ak.Array([[5], [0, 4], []]), np.int32)}), "Track": data["Track"]})
    from test_io_fixtures import PER_EVENT_YAML
    import textwrap
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(PER_EVENT_YAML))
    out = hepnn.io.load(cfg)
    assert out["tracks"].shape == (3, 15, 7) and not out["tracks_mask"].any() and (out["tracks"] == 0).all()


def _old_load(config, standardize):
    """``load`` as before the elements were standardised unpadded: padded chunks, fit, transform."""
    chunks = list(hepnn.io.iterate(config))
    arrays = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    pre = hepnn.io.fit_preprocessing(config, chunks=[arrays])
    return (pre.transform(arrays) if standardize else arrays), pre


def assert_same_as_streamed(data, config, standardize: bool) -> None:
    """``data`` (from load) has the keys, dtypes, shapes and bytes of the streamed chunks
    concatenated and transformed, and the same fitted preprocessing."""
    old, pre = _old_load(config, standardize)
    assert list(data) == list(old)
    for key in old:
        assert data[key].dtype == old[key].dtype and data[key].shape == old[key].shape, key
        np.testing.assert_array_equal(np.ascontiguousarray(data[key]).view(np.uint8),
                                      np.ascontiguousarray(old[key]).view(np.uint8), err_msg=key)
    assert data.preprocessing.to_dict() == pre.to_dict()


def _compiled_everywhere(monkeypatch):
    """The compiled fit (over every chunk) and padding (into each chunk's rows) even for tiny inputs."""
    from hepnn.io import representations
    from hepnn.preprocessing import preprocessor

    monkeypatch.setattr(preprocessor, "_COMPILED_FIT_VALUES", 0)
    monkeypatch.setattr(representations, "_COMPILED_PAD_VALUES", 0)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("sort", [True, False])
def test_load_standardises_elements_before_padding_bit_identically(tmp_path, monkeypatch, sort, compiled):
    # unsorted: the reader keeps every element and the rows past max_length are dropped by the fit's
    # gather and the padding (ElementRows.dropped); load writes every chunk (step 70) into its rows of
    # one array: the images too (with an intensity power)
    if compiled:
        _compiled_everywhere(monkeypatch)
    config = hepnn.load_config(make_per_jet(tmp_path, n=300), [
        "data.step_size=70", "data.inputs.particles.max_length=6", "data.inputs.particles.pad_value=-1.0",
        "data.inputs.particles.transforms={delta_r: {log1p: true}, rel_eta: {abs: true, clip: [0.0, 0.3]}}", "data.inputs.image.pixels=5",
    ] + ([] if sort else ["data.inputs.particles.sort_by=null"]) + (["data.inputs.image.intensity_power=0.5"] if compiled else []))
    for standardize in (True, False):
        data = hepnn.io.load(config, standardize=standardize)
        assert_same_as_streamed(data, config, standardize)
    x, mask = data["particles"], data["particles_mask"]  # standardised: some jets truncated, padding at -1
    assert mask.all(axis=1).mean() > 0.3 and not mask.all() and (x[~mask] == -1).all()
    assert data.preprocessing.n_samples_["particles"] == int(mask[data["split"] == 0].sum())


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("sort", [True, False])
def test_load_unpadded_sequences_on_per_event_links(tmp_path, monkeypatch, sort, compiled):
    if compiled:  # standardised while padded, every chunk into its rows of one array
        _compiled_everywhere(monkeypatch)
    overrides = ["data.inputs.tracks.max_length=3", "data.step_size=9"] + ([] if sort else ["data.inputs.tracks.sort_by=null"])
    config = hepnn.load_config(make_per_event(tmp_path, n_events=60), overrides)
    data = hepnn.io.load(config)
    old, _ = _old_load(config, True)
    for key in old:
        np.testing.assert_array_equal(data[key].view(np.uint8), old[key].view(np.uint8), err_msg=key)
    train = data.split("train")
    assert train["tracks_mask"].all(axis=1).any()  # truncated jets
    np.testing.assert_allclose(train["tracks"][train["tracks_mask"]].mean(axis=0), 0, atol=1e-5)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_load_builds_every_chunk_into_one_array_without_a_copy_per_chunk(tmp_path, power):
    # load builds each chunk's images straight into their rows of one array: its peak memory is the
    # images once plus the chunks' inputs, not an array per chunk and their concatenation (2x)
    import tracemalloc

    config = hepnn.load_config(make_per_jet(tmp_path, n=400), [
        f"data.inputs={{image: {{kind: image, pixels: 40, extent: 1.2, intensity_power: {power}}}}}", "data.step_size=100"])
    reference = np.concatenate([chunk["image"] for chunk in hepnn.io.iterate(config)])
    hepnn.io.load(config)  # first-use costs (imports, compiled loops) outside the measurement
    tracemalloc.start()
    try:
        data = hepnn.io.load(config)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.summary["n_jets"] == 800 and len(reference) == 800
    np.testing.assert_array_equal(data["image"].view(np.uint32), reference.view(np.uint32))
    assert peak < 1.5 * data["image"].nbytes, (peak, data["image"].nbytes)
