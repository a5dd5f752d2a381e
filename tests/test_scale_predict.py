"""hepnn.scale.predict_files in process and `hepnn predict`: friend trees, exact scores, resume, exit codes."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("pythia8mc")
ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")

import hepnn  # noqa: E402
from hepnn.cli import main  # noqa: E402
from hepnn.exceptions import HepnnError  # noqa: E402
from hepnn.scale import output_names, predict_files  # noqa: E402
from test_tagger import per_event_config, per_jet_config, train  # noqa: E402


@pytest.fixture(scope="module")
def scale_files(tmp_path_factory):
    from hepnn.datasets import generate

    folder = tmp_path_factory.mktemp("scale_data")
    events = [generate("ttbar", 150, seed=i, out=folder / f"ttbar_{i}.root", layout="per_event", progress=False)
              for i in range(3)]
    top = generate("top", 150, seed=11, out=folder / "top.root", progress=False)
    qcd = generate("qcd", 150, seed=12, out=folder / "qcd.root", progress=False)
    return {"events": [str(p) for p in events], "top": str(top), "qcd": str(qcd)}


@pytest.fixture(scope="module")
def event_run(scale_files, tmp_path_factory):
    files = {"ttbar": scale_files["events"][0]}
    return str(train(per_event_config(files), tmp_path_factory.mktemp("scale_runs") / "per_event"))


@pytest.fixture(scope="module")
def jet_run(scale_files, tmp_path_factory):
    return str(train(per_jet_config(scale_files), tmp_path_factory.mktemp("scale_runs") / "per_jet"))


def check_friend(tagger, path, out_path, tree="Events"):
    """The friend tree has the input's entries in order and exactly predict_file's scores."""
    expected = tagger.predict_file(path)
    friend = uproot.open(out_path)[tree]
    source = uproot.open(path)[tree]
    assert friend.num_entries == source.num_entries
    got = friend.arrays()
    assert got.nJet.tolist() == source["nJet"].array().tolist()
    for cls in tagger.classes:
        assert ak.all(ak.num(got[f"Jet_hepnnScore_{cls}"]) == got.nJet)
        assert ak.to_list(got[f"Jet_hepnnScore_{cls}"]) == ak.to_list(expected[cls]), cls


def test_in_process_matches_predict_file_exactly(scale_files, event_run, tmp_path):
    tagger = hepnn.Tagger.load(event_run)
    result = predict_files(event_run, scale_files["events"], tmp_path / "out")
    assert result.summary() == "3 file(s): 3 written, 0 skipped (already done), 0 failed"
    assert set(result) == set(scale_files["events"])
    for path in scale_files["events"]:
        out = result[path]
        assert out.name == f"{os.path.basename(path)[:-5]}_scores.root"
        check_friend(tagger, path, out)
        record = json.loads(out.with_suffix(".json").read_text())
        assert record["n_entries"] == uproot.open(path)["Events"].num_entries
        assert record["input_size"] == os.path.getsize(path) and record["run_fingerprint"].startswith("sha256:")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no temporary files left"


def test_per_jet_friend_has_a_scalar_score(scale_files, jet_run, tmp_path):
    tagger = hepnn.Tagger.load(jet_run)
    result = predict_files(jet_run, [scale_files["top"]], tmp_path)
    friend = uproot.open(result[scale_files["top"]])["jets"]
    assert friend.keys() == ["hepnn_score"] and friend.num_entries == 150
    np.testing.assert_array_equal(friend["hepnn_score"].array(library="np"), tagger.predict_file(scale_files["top"]))


def test_resume_skips_done_files_and_redoes_missing_or_stale(scale_files, event_run, tmp_path):
    files = scale_files["events"]
    first = predict_files(event_run, files, tmp_path)
    mtimes = {p: first[p].stat().st_mtime_ns for p in files}
    again = predict_files(event_run, files, tmp_path)
    assert len(again.skipped) == 3 and not again.written
    assert {p: again[p].stat().st_mtime_ns for p in files} == mtimes

    first[files[1]].unlink()                                   # output deleted: redone
    stale = tmp_path / "stale.root"                            # input changed since: redone
    shutil.copy(files[2], stale)
    predict_files(event_run, [stale], tmp_path)
    os.utime(stale, ns=(1, 1))
    third = predict_files(event_run, [*files, stale], tmp_path)
    assert sorted(third.written) == sorted([files[1], str(stale)])
    assert sorted(third.skipped) == sorted([files[0], files[2]])
    assert first[files[0]].stat().st_mtime_ns == mtimes[files[0]]
    check_friend(hepnn.Tagger.load(event_run), files[1], third[files[1]])
    assert len(predict_files(event_run, files, tmp_path, resume=False).written) == 3


def test_output_names_do_not_collide(scale_files, event_run, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = shutil.copy(scale_files["events"][0], other / os.path.basename(scale_files["events"][0]))
    names = output_names([scale_files["events"][0], str(twin), scale_files["events"][1]])
    assert len(set(names.values())) == 3 and names[scale_files["events"][1]] == "ttbar_1_scores.root"
    result = predict_files(event_run, [scale_files["events"][0], str(twin)], tmp_path / "out")
    assert len({p.name for p in result.values()}) == 2


def test_failures_are_reported_per_file(scale_files, event_run, tmp_path):
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"not a root file")
    with pytest.raises(HepnnError, match="1 failed.*bad.root"):
        predict_files(event_run, [scale_files["events"][0], bad], tmp_path / "out")
    result = predict_files(event_run, [scale_files["events"][0], bad], tmp_path / "out", raise_on_error=False)
    assert list(result.failed) == [str(bad)] and len(result.skipped) == 1
    with pytest.raises(ValueError, match="at most one of"):
        predict_files(event_run, [bad], tmp_path, workers=2, scheduler="tcp://x:1")


def test_cli_predict_exit_codes(scale_files, event_run, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["predict", event_run, *scale_files["events"][:2], "--out", str(out), "--quiet"]) == 0
    assert "2 file(s): 2 written, 0 skipped" in capsys.readouterr().out
    assert main(["predict", event_run, *scale_files["events"][:2], "--out", str(out), "--quiet"]) == 0
    assert "0 written, 2 skipped" in capsys.readouterr().out
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"junk")
    assert main(["predict", event_run, scale_files["events"][0], str(bad), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "1 skipped (already done), 1 failed" in captured.out and "bad.root" in captured.err
    with pytest.raises(SystemExit) as info:
        main(["predict", event_run, str(bad), "--out", str(out), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert info.value.code == 2
    assert main(["predict", str(tmp_path), str(bad), "--out", str(out)]) == 1   # not a run directory
    assert "not a trained run directory" in capsys.readouterr().err
