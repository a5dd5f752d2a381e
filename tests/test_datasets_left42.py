"""Audit of ``hepnn generate`` / ``hepnn.datasets`` as a user runs it: option values, the CLI's
``--option``, the generate step's resume and the messages of failing workers.

Generation is kept tiny (a few jets) so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import queue
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")

from hepnn.cli import main  # noqa: E402
from hepnn.config.schema import GenerateConfig, GenerateSample  # noqa: E402
from hepnn.datasets import SAMPLES, generate, resolve_options  # noqa: E402
from hepnn.datasets.generator import WorkerTraceback, _worker_chunks, _worker_main, produce  # noqa: E402
from hepnn.datasets.step import generate_step  # noqa: E402
from hepnn.datasets.writer import read_provenance  # noqa: E402
from hepnn.exceptions import ConfigError, HepnnError, OutputDirError  # noqa: E402


# --- option values ------------------------------------------------------------------------------


@pytest.mark.parametrize("key, value", [
    ("pt_min", math.nan), ("pt_min", math.inf), ("pt_max", math.nan), ("pt_max", math.inf),
    ("eta_max", math.inf), ("eta_max", math.nan), ("track_pt_min", math.nan), ("pthat_min", math.nan),
    ("pthat_max", math.inf),
])
def test_non_finite_option_values_are_rejected(key, value):
    # a NaN cut selects nothing (the run spins through 50 000 events), a NaN track threshold silently
    # makes no tracks, and Pythia is handed "PhaseSpace:pTHatMin = nan"
    with pytest.raises(ConfigError, match=rf"options\.{key}: expected a finite number, received {value!r}"):
        resolve_options("qcd", {key: value})


def test_non_finite_option_from_the_cli_names_it(capsys, tmp_path):
    out = tmp_path / "q.root"
    assert main(["generate", "qcd", "--n-jets", "5", "--out", str(out), "--quiet", "--option", "pt_min=.nan"]) == 2
    assert "options.pt_min: expected a finite number, received nan" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("options", [{"pt_min": 7000}, {"pt_min": 9000, "pt_max": None},
                                     {"pthat_min": 8000, "pthat_max": None}])
def test_pt_beyond_the_collision_energy_is_rejected(options, tmp_path):
    # before: pt_min=7000 ran 50 000 events for nothing, pthat_min=8000 came back from inside the
    # worker as "Pythia failed to initialise with settings [...]" without naming the option
    key = next(k for k, v in options.items() if v is not None and k != "pt_max")
    with pytest.raises(ConfigError, match=rf"options\.{key}: expected a value below 7000 GeV"):
        resolve_options("qcd", options)
    with pytest.raises(ConfigError, match=rf"options\.{key}"):
        generate("qcd", 5, out=tmp_path / "q.root", options=options, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_values_just_inside_the_limits_are_kept():
    defn = resolve_options("qcd", {"pt_min": 6999.5, "pt_max": None, "pthat_min": 6999, "pthat_max": None,
                                   "eta_max": 5, "track_pt_min": 0})
    assert (defn.pt_min, defn.pt_max, defn.pthat_min, defn.eta_max, defn.track_pt_min) == (6999.5, None, 6999.0,
                                                                                          5.0, 0.0)


def test_numpy_scalars_are_accepted_as_numbers():
    # values computed with numpy (a scan over cuts) used to be refused: "expected a positive int,
    # received np.int64(50)"
    defn = resolve_options("qcd", {"chunk_jets": np.int64(50), "n_leading": np.int32(1),
                                   "pt_min": np.float32(520.5), "mpi": np.bool_(True)})
    assert (defn.chunk_jets, defn.n_leading, defn.pt_min, defn.mpi) == (50, 1, 520.5, True)
    assert type(defn.chunk_jets) is int and type(defn.n_leading) is int
    assert type(defn.pt_min) is float and type(defn.mpi) is bool


@pytest.mark.parametrize("value", [np.bool_(True), True, 1.5, "50"])
def test_non_integers_still_refused_for_integer_options(value):
    with pytest.raises(ConfigError, match=r"options\.chunk_jets: expected a positive int"):
        resolve_options("qcd", {"chunk_jets": value})


@pytest.mark.parametrize("sample, options, match", [
    (None, None, r"sample: expected a sample name \(qcd, top, ttbar, w\) or a SampleDefinition, received NoneType"),
    ("qcd", "pt_min=500", r"options: expected a mapping of option name to value.*received str 'pt_min=500'"),
    ("qcd", [("pt_min", 500)], r"options: expected a mapping.*received list"),
])
def test_wrong_kinds_of_arguments_get_a_clear_message(sample, options, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        generate(sample, 5, out=tmp_path / "x.root", options=options, progress=False)
    assert list(tmp_path.iterdir()) == []


# --- the command line ---------------------------------------------------------------------------


def test_cli_option_given_twice_is_an_error(capsys, tmp_path):
    # before: the last one won silently (generated with pt_min=600 although the user also wrote 500)
    out = tmp_path / "q.root"
    code = main(["generate", "qcd", "--n-jets", "5", "--out", str(out), "--quiet",
                 "--option", "pt_min=500", "--option", "pt_min=600"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--option pt_min: given twice (500 and 600)" in err and "Traceback" not in err
    assert not out.exists()


# --- the generate step of hepnn run -------------------------------------------------------------


def _analysis(samples, seed=3, jobs=1):
    return dataclasses.make_dataclass("A", ["config"])(
        config=dataclasses.make_dataclass("C", ["generate"])(
            generate=GenerateConfig(samples=samples, seed=seed, jobs=jobs)))


def _entries(path):
    return uproot.open(path)["jets"].num_entries


def test_step_refuses_an_existing_sample_made_with_other_settings(tmp_path):
    first = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5, options={"pt_min": 500})})
    (path,) = generate_step(first, tmp_path, log=lambda _: None)
    assert path == tmp_path / "data" / "q.root" and _entries(path) == 5
    before = path.read_bytes()

    # more jets: before, "exists, skipped" and the run went on with 5 jets instead of 7
    more = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=7, options={"pt_min": 500})})
    with pytest.raises(ConfigError, match=r"generate\.samples\.q\.root: .*q\.root exists but was generated with "
                                          r"n_jets=5 \(config: 7\).*Delete the file to regenerate it"):
        generate_step(more, tmp_path, log=lambda _: None)
    # another cut, another seed
    cut = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5, options={"pt_min": 520})}, seed=4)
    with pytest.raises(ConfigError, match=r"seed=3 \(config: 4\), options\.pt_min=500\.0 \(config: 520\.0\)"):
        generate_step(cut, tmp_path, log=lambda _: None)
    assert path.read_bytes() == before

    # performance options and the number of workers do not change what is selected: kept, not regenerated
    same = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5, options={"pt_min": 500, "chunk_jets": 3})},
                     jobs=2)
    messages = []
    assert generate_step(same, tmp_path, log=messages.append) == [path]
    assert messages == ["  q.root: exists, skipped"] and path.read_bytes() == before


def test_step_checks_every_existing_sample_before_generating_any(tmp_path):
    data = tmp_path / "data"
    generate_step(_analysis({"b.root": GenerateSample(sample="qcd", n_jets=3)}), tmp_path, log=lambda _: None)
    both = _analysis({"a.root": GenerateSample(sample="qcd", n_jets=3),
                      "b.root": GenerateSample(sample="w", n_jets=3)})
    with pytest.raises(ConfigError, match=r"generate\.samples\.b\.root: .* sample='qcd' \(config: 'w'\)"):
        generate_step(both, tmp_path, log=lambda _: None)
    assert not (data / "a.root").exists()


def test_step_keeps_a_file_the_user_put_there(tmp_path):
    mine = tmp_path / "data" / "q.root"
    mine.parent.mkdir()
    mine.write_text("my own sample")
    analysis = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5)})
    assert generate_step(analysis, tmp_path, log=lambda _: None) == [mine]
    assert mine.read_text() == "my own sample"


def test_step_refuses_a_folder_under_a_sample_name(tmp_path):
    # before: "exists, skipped", and the later steps failed reading a folder as a ROOT file
    (tmp_path / "data" / "q.root").mkdir(parents=True)
    analysis = _analysis({"q.root": GenerateSample(sample="qcd", n_jets=5)})
    with pytest.raises(OutputDirError, match=r"generate\.samples\.q\.root: .*q\.root is a directory, expected a "
                                             r"sample file"):
        generate_step(analysis, tmp_path, log=lambda _: None)


def test_step_warns_when_two_samples_would_draw_the_same_events(tmp_path):
    # generate.seed 1: the second entry gets seed 1 + 1 = 2, the seed the first one set by hand
    analysis = _analysis({"a.root": GenerateSample(sample="qcd", n_jets=3, seed=2),
                          "b.root": GenerateSample(sample="qcd", n_jets=3),
                          "c.root": GenerateSample(sample="ttbar", n_jets=3, seed=2)}, seed=1)
    messages = []
    a, b, c = generate_step(analysis, tmp_path, log=messages.append)
    warnings = [m for m in messages if "warning" in m]
    assert warnings == ["  warning: generate.samples.b.root and generate.samples.a.root are both qcd with seed 2: "
                        "they draw the same events (not independent samples); give one of them another seed "
                        "unless that is what you want"]
    jets = [uproot.open(p)["jets"]["jet_pt"].array(library="np") for p in (a, b)]
    np.testing.assert_array_equal(jets[0], jets[1])  # what the warning says


# --- workers ------------------------------------------------------------------------------------


def test_worker_error_is_the_hepnn_message_without_a_traceback(tmp_path):
    bad = dataclasses.replace(SAMPLES.get("qcd"), processes=("HardQCD:nonsense = on",))
    with pytest.raises(HepnnError) as one:
        generate(bad, 4, out=tmp_path / "bad.root", jobs=1, progress=False)
    with pytest.raises(HepnnError) as two:
        generate(bad, 4, out=tmp_path / "bad.root", jobs=2, progress=False)
    assert str(one.value) == "Pythia rejected the setting 'HardQCD:nonsense = on'"
    # before: the message went on with "Traceback (most recent call last): ..." of the worker
    assert str(two.value) == "generator worker 0 failed: HepnnError: Pythia rejected the setting 'HardQCD:nonsense = on'"
    assert list(tmp_path.iterdir()) == []


def test_step_file_provenance_matches_the_config(tmp_path):
    analysis = _analysis({"w.root": GenerateSample(sample="w", n_jets=3, seed=9, layout="per_event",
                                                   options={"mpi": np.bool_(False)})})
    (path,) = generate_step(analysis, tmp_path, log=lambda _: None)
    record = read_provenance(path)
    assert (record["sample"], record["n_jets"], record["seed"], record["layout"]) == ("w", 3, 9, "per_event")
    assert record["options"]["mpi"] is False
    assert int(uproot.open(path)["Events"]["nJet"].array(library="np").sum()) == 3


class _EndedWorker:
    """Stands for a worker process that has sent its last message and ended."""

    exitcode = 0

    def is_alive(self):
        return False


def test_unexpected_worker_error_is_its_message_with_the_traceback_chained():
    # an error that is not hepnn's (here pybind refusing a non-string setting): before, the worker's
    # whole traceback was pasted into the message, so `hepnn generate` printed it without --debug
    broken = dataclasses.replace(SAMPLES.get("qcd"), processes=(5,))
    messages = queue.Queue()
    _worker_main(broken, 3, 1, 0, 2, messages)
    with pytest.raises(HepnnError) as err:
        list(_worker_chunks(messages, _EndedWorker(), 0))
    text = str(err.value)
    assert text.startswith("generator worker 0 failed: TypeError: readString(): incompatible function arguments")
    assert "Traceback" not in text and "make_pythia" not in text
    cause = err.value.__cause__
    assert isinstance(cause, WorkerTraceback)
    assert str(cause).startswith("in generator worker 0:\nTraceback (most recent call last):")
    assert "make_pythia" in str(cause)


def test_hepnn_worker_error_has_no_chained_traceback():
    broken = dataclasses.replace(SAMPLES.get("qcd"), processes=("HardQCD:nonsense = on",))
    messages = queue.Queue()
    _worker_main(broken, 3, 1, 0, 2, messages)
    with pytest.raises(HepnnError) as err:
        list(_worker_chunks(messages, _EndedWorker(), 0))
    assert str(err.value) == "generator worker 0 failed: HepnnError: Pythia rejected the setting 'HardQCD:nonsense = on'"
    assert err.value.__cause__ is None and err.value.__suppress_context__


@pytest.mark.parametrize("change, match", [
    ({"events_per_batch": 0}, r"SampleDefinition 'qcd'\.events_per_batch: expected a positive int, received 0"),
    ({"pt_min": math.nan}, r"SampleDefinition 'qcd'\.pt_min: expected a finite number"),
    ({"kind": "boost"}, r"SampleDefinition 'qcd'\.kind: expected 'boosted' or 'flavour', received 'boost'"),
    ({"processes": ("HardQCD:all = on", 5)}, r"SampleDefinition 'qcd'\.processes: expected Pythia setting strings"),
    ({"extra": {"xsec_pb": np.float32(1.5)}}, r"SampleDefinition 'qcd'\.extra: the notes must be JSON values"),
    ({"extra": {"xsec_pb": math.inf}}, r"SampleDefinition 'qcd'\.extra: the notes must be JSON values"),
    ({"extra": ["a note"]}, r"SampleDefinition 'qcd'\.extra: expected a mapping of notes"),
])
def test_custom_definitions_are_checked_like_options(change, match, tmp_path):
    # before: events_per_batch=0 ended in awkward's "AttributeError: no field named 'p'", pt_min=nan ran
    # 50 000 events for nothing, kind="boost" silently labelled every jet 0, and a non-string setting
    # was a pybind TypeError inside the workers
    custom = dataclasses.replace(SAMPLES.get("qcd"), **change)
    with pytest.raises(ConfigError, match=match):
        resolve_options(custom)
    with pytest.raises(ConfigError, match=match):
        generate(custom, 5, out=tmp_path / "c.root", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def started_workers(monkeypatch):
    """Names of the generator worker processes started (the spawn context is wrapped to count them)."""
    names: list[str] = []
    real = multiprocessing.get_context

    def counting(method=None):
        ctx = real(method)

        def process(*args, **kwargs):
            names.append(kwargs["name"])
            return ctx.Process(*args, **kwargs)

        return SimpleNamespace(Queue=ctx.Queue, Process=process)

    monkeypatch.setattr(multiprocessing, "get_context", counting)
    return names


def _first_jet(seed, worker, jobs):
    chunk = next(produce(resolve_options("qcd"), 1, seed, worker, jobs))
    return chunk["jet"]["pt"][0], chunk["event_number"][0]


@pytest.mark.parametrize("n_jets, jobs", [(2, 3), (1, 4)])
def test_more_jobs_than_jets_starts_only_the_workers_with_jets(n_jets, jobs, started_workers, tmp_path):
    # before: --jobs 3 for 2 jets started 3 processes (each importing hepnn and initialising Pythia),
    # --jobs 64 for 5 jets 64 of them; the file is the same without the idle ones
    path = generate("qcd", n_jets, seed=7, jobs=jobs, out=tmp_path / "q.root", progress=False)
    assert started_workers == ([f"hepnn-generate-worker-{k}" for k in range(n_jets)] if n_jets > 1 else [])
    tree = uproot.open(path)["jets"]
    pt = tree["jet_pt"].array(library="np")
    events = tree["event_number"].array(library="np")
    expected = [_first_jet(7, k, jobs) for k in range(n_jets)]  # worker k's first jet, numbered for `jobs`
    np.testing.assert_array_equal(pt, np.array([e[0] for e in expected], dtype=np.float32))
    np.testing.assert_array_equal(events, [e[1] for e in expected])
    assert list(events % jobs) == list(range(n_jets))  # event numbers of a run of `jobs` workers


def test_a_custom_definitions_notes_travel_in_the_provenance(tmp_path):
    # before: SampleDefinition.extra was accepted and dropped (neither used nor recorded)
    notes = {"xsec_pb": 812.5, "reference": "arXiv:1902.09914", "tags": ["truth", "no MPI"]}
    custom = dataclasses.replace(SAMPLES.get("qcd"), extra=notes)
    path = generate(custom, 3, seed=5, out=tmp_path / "c.root", progress=False)
    assert read_provenance(path)["extra"] == notes
    plain = generate("qcd", 3, seed=5, out=tmp_path / "q.root", progress=False)
    assert "extra" not in read_provenance(plain)  # the registered samples' provenance as before
