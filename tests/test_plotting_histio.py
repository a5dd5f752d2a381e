import json

import hist
import numpy as np
import pytest

from hepnn.exceptions import InputDataError
from hepnn.plotting import load_hists, merge_hists, plot_hist, plot_scores, save_hists


def _h(values, weights=None):
    h = hist.Hist.new.Reg(5, 0, 1, name="score", label="Tagger score").Weight()
    h.fill(values, weight=1.0 if weights is None else weights)
    return h


def test_round_trip(tmp_path):
    h = _h([0.1, 0.1, 0.5, 0.95, 1.5], [1.0, 2.0, 0.5, 1.0, 3.0])
    v = hist.Hist.new.Variable([0, 10, 100], name="pt").Double()
    v.fill([5, 50, 50])
    path = save_hists({"score": h, "pt": v}, tmp_path / "out" / "h.json")
    assert json.loads(path.read_text())["format"] == "hepnn-hists"
    back = load_hists(path)
    np.testing.assert_array_equal(back["score"].values(flow=True), h.values(flow=True))
    np.testing.assert_array_equal(back["score"].variances(flow=True), h.variances(flow=True))
    assert back["score"].axes[0].label == "Tagger score"
    np.testing.assert_array_equal(back["pt"].axes[0].edges, [0, 10, 100])
    assert back["pt"].values().tolist() == [1.0, 2.0]


def test_merge_sums_jobs_and_replots(tmp_path):
    rng = np.random.default_rng(0)
    parts = [rng.random(100) for _ in range(3)]
    files = [save_hists(_h(p), tmp_path / f"job{i}.json") for i, p in enumerate(parts)]
    merged = merge_hists(files, output=tmp_path / "merged.json")
    expected = _h(np.concatenate(parts))
    np.testing.assert_array_equal(merged["hist"].values(), expected.values())
    np.testing.assert_array_equal(load_hists(tmp_path / "merged.json")["hist"].variances(), expected.variances())
    res = plot_hist(merged)
    assert len(res["artists"]) == 1 and res["ax"].get_xlabel() == "Tagger score"


def test_plot_results_are_saveable(tmp_path):
    y = np.arange(50) % 2
    res = plot_scores(np.linspace(0, 1, 50), y)
    back = load_hists(save_hists(res.hists, tmp_path / "scores.json"))
    assert back["test/signal"].sum().value == 25


def test_merge_errors(tmp_path):
    a = save_hists({"x": _h([0.1])}, tmp_path / "a.json")
    b = save_hists({"y": _h([0.1])}, tmp_path / "b.json")
    c = save_hists({"x": hist.Hist.new.Reg(3, 0, 1).Weight()}, tmp_path / "c.json")
    with pytest.raises(InputDataError, match="holds histograms"):
        merge_hists([a, b])
    with pytest.raises(InputDataError, match="different binning"):
        merge_hists([a, c])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputDataError, match="not a hepnn histogram file"):
        load_hists(tmp_path / "bad.json")
