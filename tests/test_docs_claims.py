"""What README.md, docs/*.md, tutorials/README.md and the analyses' READMEs claim holds.

* the lecture table of ``tutorials/README.md``: each idea's config key exists, is documented, is
  checked by a test that exists, and is used in its tutorial;
* every ``hepnn`` and ``python bench/gpu.py`` command of the docs parses, the README's command
  synopsis names only existing flags, and ``--set`` overrides name existing keys;
* figures and sizes quoted from configs (quick and default sizes, the settings under each results
  block, the option table of ``docs/gpu.md``) are those of the configs and parsers today;
* the README's Python example runs as written, on real CMS NanoAOD jets.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import re
import shlex
import shutil
import typing
from pathlib import Path

import pytest

import hepnn.models  # noqa: F401  (registers the model builders)
from hepnn.cli import build_parser
from hepnn.config import load_config, quick
from hepnn.config import schema
from hepnn.explain import EXPLAINERS
from hepnn.models.registry import MODELS
from hepnn.plugins import load_analysis

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted([ROOT / "README.md", ROOT / "tutorials" / "README.md",
                    *(p for p in (ROOT / "docs").glob("*.md") if p.name != "scale-out.md"),
                    *(ROOT / "analyses").glob("*/README.md")])

LECTURE_IDEAS = ("neurons", "activations", "initialisation", "SGD with momentum", "adaptive optimisers", "losses",
                 "regularisation", "dropout", "early stopping", "batch normalisation", "residual connections", "CNNs",
                 "autoencoders", "LSTM and GRU", "explainability")


# --- the lecture table of tutorials/README.md -----------------------------------------------------


def lecture_table() -> list[dict]:
    text = (ROOT / "tutorials" / "README.md").read_text()
    section = text.split("## The lecture's ideas", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header == ["idea", "config key", "documented in", "test that checks it takes effect", "tutorial"]
    table = []
    for line in rows[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        row = dict(zip(header, cells))
        row["keys"] = re.findall(r"`([^`]+)`", row["config key"])
        row["docs"] = re.findall(r"`([^`]+)`", row["documented in"])
        row["tests"] = re.findall(r"`([^`]+)`", row["test that checks it takes effect"])
        row["tutorials"] = re.findall(r"`([^`]+)`", row["tutorial"])
        table.append(row)
    return table


TABLE = lecture_table()


def _dataclass_options(tp) -> list[type]:
    """The dataclasses a field of type ``tp`` may hold (through Optional, Union, dict and tuple values)."""
    if dataclasses.is_dataclass(tp):
        return [tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict:
        return _dataclass_options(args[1])
    return [c for a in args for c in _dataclass_options(a)]


def _allowed_values(tp) -> set | None:
    """The values a Literal (or a tuple or Optional of one) allows; None when any value of its type goes."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return set(args)
    found = [v for a in args for v in (_allowed_values(a) or ())]
    return set(found) or None


def _schema_field(parts: list[str]) -> list[tuple[dataclasses.Field, typing.Any]]:
    """The schema fields a dotted key can be, with their types (``NAME`` stands for any key of a mapping
    such as ``data.inputs``; an input's keys are those of any input kind)."""
    candidates: list[type] = [schema.Config]
    i = 0
    while True:
        owners = [c for c in candidates if parts[i] in {f.name for f in dataclasses.fields(c)}]
        assert owners, f"{'.'.join(parts)}: no key {parts[i]!r} in {[c.__name__ for c in candidates]}"
        found = [(next(f for f in dataclasses.fields(c) if f.name == parts[i]), typing.get_type_hints(c)[parts[i]])
                 for c in owners]
        i += 1
        if i == len(parts):
            return found
        if typing.get_origin(_strip_optional(found[0][1])) is dict:
            i += 1  # the mapping's own key (data.inputs.NAME)
            if i == len(parts):
                return found
        candidates = [c for _, hint in found for c in _dataclass_options(hint)]
        assert candidates, f"{'.'.join(parts)}: {parts[i - 1]!r} has no keys below it"


def _strip_optional(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) is typing.Union and len(args) == 1 else tp


def _row_models(row: dict) -> list[str]:
    named = [key.split(":", 1)[1].strip() for key in row["keys"] if key.startswith("model.name:")]
    return [*named, "dense"]  # a config without model.name builds the dense model


def _builder_options(model: str) -> set[str]:
    import inspect

    return set(inspect.signature(MODELS.get(model)).parameters)


def _check_key(entry: str, row: dict) -> None:
    key, _, value = (part.strip() for part in entry.partition(":"))
    parts = key.split(".")
    model_fields = {f.name for f in dataclasses.fields(schema.ModelConfig)} - {"params"}
    if parts[0] == "model" and parts[1] not in model_fields:
        accepted = [m for m in _row_models(row) if parts[1] in _builder_options(m)]
        assert accepted, f"{entry}: option {parts[1]!r} is taken by none of the models {_row_models(row)}"
        return
    found = _schema_field(parts)
    if not value:
        return
    if key == "model.name":
        assert value in MODELS.names(), f"{entry}: no model {value!r}"
    elif key == "explain.methods":
        assert value in EXPLAINERS.names(), f"{entry}: no explainer {value!r}"
    else:
        allowed = {v for _, hint in found for v in (_allowed_values(hint) or ())}
        assert value in allowed, f"{entry}: {value!r} is not one of {sorted(allowed)}"


def test_every_idea_of_the_lecture_has_a_row():
    ideas = [row["idea"] for row in TABLE]
    for idea in LECTURE_IDEAS:
        assert any(i.startswith(idea) for i in ideas), f"tutorials/README.md: no row for {idea!r}"


@pytest.mark.parametrize("row", TABLE, ids=[row["idea"] for row in TABLE])
def test_config_keys_of_the_lecture_table_exist(row):
    assert row["keys"], row["idea"]
    for entry in row["keys"]:
        _check_key(entry, row)


@pytest.mark.parametrize("row", TABLE, ids=[row["idea"] for row in TABLE])
def test_lecture_table_keys_are_documented_where_it_says(row):
    import importlib

    api = (ROOT / "docs" / "api.md").read_text()
    docstrings = []
    for name in row["docs"]:
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        assert f"::: {name}\n" in api, f"docs/api.md does not render {name}"
        docstrings.append(obj.__doc__ or "")
    assert docstrings or "configuration reference" in row["documented in"], row["idea"]
    for entry in row["keys"]:
        key = entry.partition(":")[0].strip()
        parts = key.split(".")
        if parts[0] == "model" and parts[1] not in ("name", "inputs"):
            documented = [d for d in docstrings if re.search(rf"^\s*(\w+, )*{parts[1]}\b[\w, ]* :", d, re.M)]
            assert documented, f"{key}: not a documented parameter of {row['docs']}"
        else:
            # the configuration reference shows a field's doc, a section's own table, or a Literal's values
            assert any(field.metadata.get("doc") or _dataclass_options(hint) or _allowed_values(hint)
                       for field, hint in _schema_field(parts)), f"{key}: no doc in hepnn/config/schema.py"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


@pytest.mark.parametrize("row", TABLE, ids=[row["idea"] for row in TABLE])
def test_lecture_table_names_tests_that_exist(row):
    assert row["tests"], row["idea"]
    for ref in row["tests"]:
        file, _, name = ref.partition("::")
        assert (ROOT / file).is_file(), ref
        assert name in _test_names(ROOT / file), f"{ref}: no such test"


@pytest.mark.parametrize("row", TABLE, ids=[row["idea"] for row in TABLE])
def test_lecture_table_tutorial_uses_the_first_key(row):
    key, _, value = (part.strip() for part in row["keys"][0].partition(":"))
    word = value or key.split(".")[-1]
    for tutorial in row["tutorials"]:
        text = (ROOT / "tutorials" / tutorial).read_text()
        assert word in text, f"tutorials/{tutorial} never mentions {word!r} ({row['idea']})"


def test_configured_loss_is_the_loss_the_model_trains_with(tmp_path):
    """``training.loss`` reaches the compiled model and changes the training loss (the lecture's losses)."""
    import numpy as np

    from hepnn.training import Trainer

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    data = {"jet": (rng.normal(size=(300, 2)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(300, "float32"), "split": rng.choice([0, 1, 2], 300, p=[0.7, 0.15, 0.15]).astype("int8")}
    losses = {}
    for loss in ("binary_crossentropy", "binary_focal_crossentropy"):
        config = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b"]}}},
                  "model": {"name": "dense", "units": [4], "dropout": 0.0},
                  "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "loss": loss}}
        trainer = Trainer(config, log=lambda *a, **k: None).fit(tmp_path / loss, data=data)
        assert trainer.model_.loss == loss
        losses[loss] = trainer.history_[0]["loss"]
    # the same weights and batches: the focal loss down-weights easy jets, so it is the smaller one
    assert losses["binary_focal_crossentropy"] < 0.5 * losses["binary_crossentropy"]


# --- commands -------------------------------------------------------------------------------------


def _code_blocks(text: str, languages=("bash", "console", "sh", "")) -> list[str]:
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S) if lang in languages]


def doc_commands(prefix: str) -> list[tuple[str, str]]:
    """``(file, command)`` for every line of a shell block of the docs that starts with ``prefix``."""
    found = []
    for path in DOC_FILES:
        for block in _code_blocks(path.read_text(), ("bash", "console", "sh")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line.startswith(prefix):
                    found.append((str(path.relative_to(ROOT)), line))
    return found


HEPNN_COMMANDS = doc_commands("hepnn ")


def _subparser(parser: argparse.ArgumentParser, words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of the (sub)command at the start of ``words`` and the words after it."""
    while words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
        if not subs or words[0] not in subs[0].choices:
            break
        parser, words = subs[0].choices[words[0]], words[1:]
    return parser, words


def test_the_docs_have_hepnn_commands():
    files = {file for file, _ in HEPNN_COMMANDS}
    assert len(HEPNN_COMMANDS) > 10 and "docs/deploy.md" in files and "analyses/top_tagging/README.md" in files


@pytest.mark.parametrize(("file", "command"), HEPNN_COMMANDS, ids=[f"{f}:{c[:60]}" for f, c in HEPNN_COMMANDS])
def test_documented_hepnn_commands_parse(file, command):
    words = shlex.split(command, comments=True)[1:]
    try:
        args = build_parser().parse_args(words)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{file}: `{command}` does not parse (exit {exc.code})")
    if args.command == "run" and (ROOT / args.analysis / "config.yaml").is_file():
        # the overrides name existing keys of that analysis (and survive its quick overlay)
        analysis = load_analysis(ROOT / args.analysis, args.overrides)
        if args.quick:
            quick(analysis.config)


def test_readme_command_synopsis_names_only_existing_flags_and_choices():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The command line", 1)[1].split("```", 2)[1]
    lines = [line.strip() for line in block.splitlines() if line.strip().startswith("hepnn")]
    assert len(lines) >= 14
    parser = build_parser()
    for line in lines:
        for part in re.split(r"#\s*(?=hepnn )", line):  # a comment may name another form of the command
            words = part.split("#", 1)[0].split()[1:]
            sub, rest = _subparser(parser, [w for w in words if re.fullmatch(r"[a-z-]+", w)][:2])
            options = {s for a in sub._actions for s in a.option_strings}  # noqa: SLF001
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", part.split("#", 1)[0]):
                assert flag in options, f"README: `{line}`: {flag} is not an option of {sub.prog}"
            for choices in re.findall(r"\{([\w,-]+)\}", part.split("#", 1)[0]):
                positional = [a for a in sub._actions if a.choices and not a.option_strings]  # noqa: SLF001
                valid = [set(a.choices) for a in positional] + [set(a.choices) for a in sub._actions if a.choices]  # noqa: SLF001
                assert set(choices.split(",")) in valid, f"README: `{line}`: {{{choices}}} are not the choices of {sub.prog}"


def test_readme_says_which_commands_take_set_and_debug():
    parser = build_parser()
    readme = " ".join((ROOT / "README.md").read_text().split())
    listed = re.search(r"These are the main flags: (.*?) also take `--set KEY=VALUE`", readme).group(1)
    named = re.findall(r"`(\w+)`", listed)
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices  # noqa: SLF001
    for name, sub in subs.items():
        options = {s for a in sub._actions for s in a.option_strings}  # noqa: SLF001
        assert "--debug" in options or name == "config", f"hepnn {name} has no --debug"
        if name in named:
            assert "--set" in options, f"README says hepnn {name} takes --set"


def test_documented_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    for path in DOC_FILES:
        for block in _code_blocks(path.read_text(), ("bash", "console", "sh")):
            for target in re.findall(r"^\s*make ([\w-]+)", block, flags=re.M):
                assert target in targets, f"{path.relative_to(ROOT)}: `make {target}` is no Makefile target"
    demo = re.search(r"^demo:.*\n\t(.*)$", makefile, flags=re.M).group(1)
    assert "hepnn run analyses/top_tagging --quick --jobs auto --out $(DEMO_OUT)" in demo
    assert "`make demo` runs `hepnn run analyses/top_tagging --quick --jobs auto --out demo_run`" in (
        ROOT / "README.md").read_text()
    assert re.search(r"^DEMO_OUT \?= demo_run$", makefile, flags=re.M)


# --- bench/gpu.py ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("hepnn_bench_gpu_docs", ROOT / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documented_gpu_bench_commands_parse(gpu_bench):
    commands = [c for _, c in doc_commands("python bench/gpu.py")]
    assert len(commands) >= 3
    for command in commands:
        args = gpu_bench.parse_args(shlex.split(command, comments=True)[2:])
        assert args.out


def test_gpu_bench_option_table_gives_the_parsers_defaults(gpu_bench):
    text = (ROOT / "docs" / "gpu.md").read_text()
    rows = re.findall(r"^\| `(--[\w-]+)` \| ([^|]+) \| ([^|]+) \|$", text, flags=re.M)
    assert len(rows) >= 9
    defaults = vars(gpu_bench.parse_args([]))
    for flag, default, meaning in rows:
        value = defaults[flag[2:].replace("-", "_")]
        default = default.strip()
        if default == "all":
            listed = [name.strip() for name in re.search(r"`([\w, ]+)`", meaning).group(1).split(",")]
            if flag == "--sections":
                assert list(value) == listed == list(gpu_bench.SECTIONS)
            else:
                assert value == "all"
                assert set(listed) == set(gpu_bench.FAMILIES)
        elif default == "off":
            assert value is False
        else:
            assert str(value) == default or float(value) == float(default), f"docs/gpu.md {flag}: {default} vs {value}"


# --- numbers quoted from the analyses' configs ----------------------------------------------------


def _analysis(name: str, quick_mode: bool = False):
    config = load_analysis(ROOT / "analyses" / name).config
    return quick(config) if quick_mode else config


def _n_jets(config) -> dict[str, int]:
    return {name: s.n_jets for name, s in config.generate.samples.items()}


@pytest.mark.parametrize(("name", "claim", "n_jets", "epochs"), [
    ("anomaly_detection", "--quick --out /tmp/anomaly_detection    # 1500 + 1500 jets, 3 epochs", [1500, 1500], 3),
    ("flavour_tagging", "--quick --out /tmp/flavour_tagging   # 2000 jets, 15 epochs", [2000], 15),
    ("top_tagging", "--quick --out /tmp/top_tagging   # 2000 + 2000 jets", [2000, 2000], None),
])
def test_quick_sizes_in_the_analysis_readmes_are_those_of_the_quick_overlay(name, claim, n_jets, epochs):
    assert claim in (ROOT / "analyses" / name / "README.md").read_text()
    config = _analysis(name, quick_mode=True)
    assert sorted(_n_jets(config).values()) == n_jets
    if epochs is not None:
        assert config.training.epochs == epochs


@pytest.mark.parametrize("name", ["anomaly_detection", "flavour_tagging", "top_tagging"])
def test_results_blocks_were_produced_with_the_settings_of_the_config_today(name):
    """The settings printed under each README's results block are those of `hepnn run analyses/NAME`."""
    text = (ROOT / "analyses" / name / "README.md").read_text()
    block = text.split("<!-- hepnn:results:begin -->", 1)[1].split("<!-- hepnn:results:end -->", 1)[0]
    assert f"Produced by `hepnn run analyses/{name}`." in block
    config = _analysis(name)
    for index, (sample, spec) in enumerate(config.generate.samples.items()):
        seed = spec.seed if spec.seed is not None else config.generate.seed + index
        match = re.search(rf"`{re.escape(sample)}` (\d+) \w+ jets \(seed (\d+)", block)
        assert match, f"{name}: no {sample} in the results block"
        assert (int(match.group(1)), int(match.group(2))) == (spec.n_jets, seed), f"{name}: {sample}"
    t = config.training
    assert f"up to {t.epochs} epochs, batch {t.batch_size}, {t.optimizer.name} (learning rate {t.optimizer.learning_rate:g})" in block
    assert f"early stopping (patience {t.early_stopping.patience})" in block
    s = config.data.split
    assert f"split train/val/test {s.train:g}/{s.val:g}/{s.test:g} (seed {s.seed})" in block


def _paragraphs(path: Path) -> list[str]:
    text = re.sub(r"<!-- hepnn:results:begin -->.*?<!-- hepnn:results:end -->", "", path.read_text(), flags=re.S)
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_every_quoted_auc_names_the_command_that_produced_it(path):
    """An AUC quoted outside a generated results block stands in a paragraph (or a table introduced by
    one) that names the command or benchmark it came from, or is marked as a historical note."""
    paragraphs = _paragraphs(path)
    for i, paragraph in enumerate(paragraphs):
        if not re.search(r"AUC (about |of |≈ ?)?\d?\.\d+", paragraph):
            continue
        context = " ".join(paragraphs[max(0, i - 3):i + 2])
        sourced = re.search(r"hepnn (run|evaluate)|bench/|make demo|Historical note", context)
        assert sourced, f"{path.relative_to(ROOT)}: an AUC without the command that produced it:\n{paragraph[:300]}"


def test_figures_no_configuration_reproduces_are_gone():
    """The anomaly README's "AUC 0.15" and top tagging's linear-intensity autoencoder "AUC about 0.2" came
    from configurations that no longer exist: with today's quick settings, linear intensities give 0.92."""
    anomaly = (ROOT / "analyses" / "anomaly_detection" / "README.md").read_text()
    top = (ROOT / "analyses" / "top_tagging" / "README.md").read_text()
    assert "AUC 0.15" not in anomaly
    assert "AUC about 0.2" not in top
    assert "Historical note" in top.split("AUC 0.82", 1)[0].rsplit("\n\n", 1)[-1]


# --- the README's Python example ------------------------------------------------------------------


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's example, verbatim, on the CMS NanoAOD file of tests/data (b vs light jets)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## In Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    data = ROOT / "tests" / "data"
    shutil.copy(data / "nanoAOD_2015_CMS_Open_Data_ttbar.root", tmp_path / "nanoAOD_2015_CMS_Open_Data_ttbar.root")
    shutil.copy(data / "nanoAOD_2015_CMS_Open_Data_ttbar.root", tmp_path / "ttbar.root")
    config = (data / "nanoaod_btag.yaml").read_text() + "training: {batch_size: 64, verbose: 0}\nexplain: {n_jets: 50}\n"
    (tmp_path / "my_config.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert load_config("my_config.yaml", overrides=["training.epochs=5"]).training.epochs == 5
    import awkward as ak
    import numpy as np

    scores, events = namespace["scores"], namespace["events"]
    assert len(scores) == len(events) and ak.all(ak.num(scores) == ak.num(events.Jet_pt))  # one score per jet
    flat = ak.to_numpy(ak.flatten(scores))
    assert np.all((flat >= 0) & (flat <= 1))
    assert (tmp_path / "runs" / "dense" / "report" / "index.html").is_file()
    assert (tmp_path / "runs" / "dense" / "explain" / "permutation" / "values.npz").is_file()
    # the files and fields the docs name: provenance.json (docs/reliability.md), history.csv (docs/gpu.md)
    import csv
    import json

    provenance = json.loads((tmp_path / "runs" / "dense" / "provenance.json").read_text())
    assert provenance["host"]["tensorflow_threads"] >= 1 and "dropped_labels" in provenance
    with open(tmp_path / "runs" / "dense" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    assert {"input_wait_share", "peak_memory_mb"} <= set(rows[0])
    import tensorflow as tf

    assert ("gpu_peak_memory_mb" in rows[0]) == bool(tf.config.list_physical_devices("GPU"))


# --- docs/deploy.md: the metadata an exported model carries ---------------------------------------


def _deploy_table() -> dict[str, str]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    return dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", text, flags=re.M))


@pytest.mark.parametrize("config_file", ["nanoaod_btag.yaml", "physlite_tracks.yaml", "image"])
def test_deploy_metadata_table_lists_every_key_the_export_writes(config_file, tmp_path):
    from hepnn.training.onnx_deploy import deploy_metadata

    if config_file == "image":
        (tmp_path / "c.yaml").write_text("data:\n  inputs:\n    image: {kind: image, pixels: 9}\n")
        config = load_config(tmp_path / "c.yaml")
    else:
        config = load_config(ROOT / "tests" / "data" / config_file)
    names = list(config.data.inputs)
    meta = deploy_metadata(config, names, ["light", "b"], "binary", {n: [None, 1] for n in names}, True)
    table = _deploy_table()
    documented = set(table) | set(re.findall(r"`(\w+)`: the jet collection", table["layout"]))
    assert set(meta) == documented, f"docs/deploy.md: {sorted(documented ^ set(meta))}"
    described = set(re.findall(r"`(\w+)`", table["inputs"]))
    for name, entry in meta["inputs"].items():
        missing = set(entry) - described
        assert not missing, f"docs/deploy.md: keys {sorted(missing)} of a {entry['kind']} input are not described"


# --- names the docs point at ----------------------------------------------------------------------


def _resolve(name: str):
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(name)


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_python_names_and_paths_in_the_docs_exist(path):
    text = path.read_text()
    for name in sorted(set(re.findall(r"`(hepnn(?:\.\w+)+)", text)) - {"hepnn.analyses"}):  # an entry-point group
        try:
            _resolve(name)
        except (ImportError, AttributeError) as err:
            pytest.fail(f"{path.relative_to(ROOT)}: `{name}` does not exist ({err})")
    for ref in re.findall(r"`((?:hepnn|bench|tests|tutorials|analyses|docs|notes)/[\w./-]+)`", text):
        assert (ROOT / ref).exists(), f"{path.relative_to(ROOT)}: `{ref}` does not exist"


@functools.cache
def _all_test_names() -> dict[str, set[str]]:
    return {p.name: _test_names(p) for p in (ROOT / "tests").glob("test_*.py")}


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_tests_named_in_the_docs_exist(path):
    import fnmatch

    tests = _all_test_names()
    everywhere = set().union(*tests.values())
    last = None
    for match in re.finditer(r"`((?:tests/)?(test_\w+\.py)?(?:::)?(test_[\w*]+)?)`", path.read_text()):
        ref, file, name = match.groups()
        if file:
            assert file in tests, f"{path.relative_to(ROOT)}: `{ref}`: no such test file"
            last = file
        pool = tests[last] if (file or ref.startswith("::")) and last else everywhere
        if name:
            assert any(fnmatch.fnmatch(n, name) for n in pool), f"{path.relative_to(ROOT)}: `{ref}`: no such test"


def test_readme_counts_the_tutorials():
    scripts = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    words = {10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen"}
    assert f"{words[len(scripts)]} hackathon tutorials" in (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `(\d\d_\w+\.py)` \|", (ROOT / "tutorials" / "README.md").read_text(), flags=re.M)
    assert listed == [p.name for p in scripts]
    for script in scripts:
        assert script.with_suffix(".ipynb").is_file(), f"{script.name} has no notebook"


def test_architecture_layers_are_the_import_linter_contract():
    """docs/architecture.md draws the layers in the order `lint-imports` enforces (setup.cfg)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    contract = [line.strip() for line in cfg["importlinter:contract:layers"]["layers"].strip().splitlines()]
    enforced = [sorted(name.strip().removeprefix("hepnn.") for name in layer.split(":")) for layer in reversed(contract)]
    text = (ROOT / "docs" / "architecture.md").read_text()
    diagram = text.split("## The layers", 1)[1].split("```", 2)[1].strip().splitlines()[0]
    drawn = [sorted(n.strip() for n in layer.strip(" {}").split(",")) for layer in diagram.split("->")]
    assert drawn == enforced, f"docs/architecture.md draws {drawn}, setup.cfg enforces {enforced}"


def test_documented_tutorial_commands_use_existing_scripts_and_options():
    """The tutorials ignore unknown options (a Jupyter kernel adds its own): a misspelt one in the docs
    would be silently dropped, so the docs' options are checked against tutorials/_common.py."""
    options = set(re.findall(r'add_argument\("(--[\w-]+)"', (ROOT / "tutorials" / "_common.py").read_text()))
    commands = [c for _, c in doc_commands(".venv/bin/python tutorials/")]
    assert commands
    for command in commands:
        words = shlex.split(command, comments=True)
        assert (ROOT / words[1]).is_file(), command
        for word in words[2:]:
            assert not word.startswith("--") or word in options, f"`{command}`: {word} is not one of {sorted(options)}"


def test_documented_extras_exist_and_the_gpu_extra_keeps_tensorflows_bound():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = set(cfg["options.extras_require"])
    for path in DOC_FILES:
        for group in re.findall(r"(?:hepnn|\.)\[([\w,-]+)\]", path.read_text()):
            for extra in group.split(","):
                assert extra in extras, f"{path.relative_to(ROOT)}: no extra {extra!r} (setup.cfg has {sorted(extras)})"
    requires = cfg["options"]["install_requires"]
    bound = re.search(r"^tensorflow(>=[\d.]+)", requires, flags=re.M).group(1)
    assert f"tensorflow[and-cuda]{bound}" in cfg["options.extras_require"]["gpu"]


def test_gpu_page_python_example_builds_its_model(monkeypatch):
    """docs/gpu.md's backend example, as written (Keras is already imported here, so the backend line
    changes nothing in this process; the builder call and its options are what is checked)."""
    import os

    import keras  # noqa: F401  (imported with this process' backend before the example sets another)

    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    block = _code_blocks((ROOT / "docs" / "gpu.md").read_text(), ("python",))
    assert len(block) == 1
    namespace: dict = {}
    exec(compile(block[0], "docs/gpu.md", "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    assert model.output_shape == (None, 1) and [tuple(i.shape) for i in model.inputs] == [(None, 50, 7)]


def test_deploy_page_fold_rule_gives_the_folds_hepnn_assigns():
    """docs/deploy.md's splitmix64, followed literally in Python integers, picks each event's fold."""
    import numpy as np

    from hepnn.io.split import assign_fold, event_fold_key, event_salt

    text = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    add = int(re.search(r"`splitmix64` adds `(0x[0-9A-F]+)`", text).group(1), 16)
    steps = re.search(r"then `(x \^= x >> \d+;.*?x \^= x >> \d+)`", text).group(1).split(";")
    assert "splitmix64(event ^ event_salt) % K" in text

    def splitmix64(x: int) -> int:
        x = (x + add) % 2**64
        for step in steps:
            scope = {"x": x}
            exec(step.strip(), scope)  # noqa: S102  (the page's own statements)
            x = scope["x"] % 2**64
        return x

    events = np.random.default_rng(5).integers(0, 2**40, 200)
    seed, k = 42, 5
    expected = assign_fold(event_fold_key(events, seed), k)
    salt = int(event_salt(seed))
    assert [splitmix64(int(e) ^ salt) % k for e in events] == expected.tolist()


def test_environment_variables_in_the_docs_are_read_by_the_code():
    sources = "\n".join(p.read_text() for folder in ("hepnn", "tutorials", "bench") for p in (ROOT / folder).rglob("*.py"))
    for path in DOC_FILES:
        for name in sorted(set(re.findall(r"\bHEPNN_[A-Z_]+[A-Z]\b", path.read_text()))):
            assert f'"{name}"' in sources or f"'{name}'" in sources, f"{path.relative_to(ROOT)}: nothing reads ${name}"


MODEL_METHODS = {"predict", "fit", "keras", "onnx"}  # `model.predict`, `model.keras`: Keras and file names


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_config_keys_named_in_the_docs_exist(path):
    import inspect

    options = set().union(*(set(inspect.signature(MODELS.get(n)).parameters) for n in MODELS.names()))
    sections = "|".join(f.name for f in dataclasses.fields(schema.Config) if dataclasses.is_dataclass(
        _strip_optional(typing.get_type_hints(schema.Config)[f.name])))
    for raw in sorted(set(re.findall(rf"`((?:{sections})\.[\w.<>]+)", path.read_text()))):
        parts = re.sub(r"<\w+>", "NAME", raw).rstrip(".").split(".")
        if parts[0] == "model" and parts[1] not in ("name", "inputs"):
            assert parts[1] in options | MODEL_METHODS, f"{path.relative_to(ROOT)}: `{raw}`: no model takes {parts[1]!r}"
        else:
            _schema_field(parts)


def test_gpu_page_configuration_loads(tmp_path):
    import yaml

    block = _code_blocks((ROOT / "docs" / "gpu.md").read_text(), ("yaml",))
    assert len(block) == 1
    config = yaml.safe_load(block[0])
    config["data"] = {"inputs": {"tracks": {"kind": "sequence", "variables": ["a", "b"]}}}
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump(config))
    loaded = load_config(tmp_path / "gpu.yaml")
    assert loaded.training.mixed_precision and loaded.model.params["cudnn"] is True


def test_defaults_and_thresholds_quoted_in_the_docs_are_the_codes():
    import inspect

    from hepnn.training.diagnostics import INPUT_BOUND_SHARE
    from hepnn.training.export import export_onnx

    gpu = " ".join((ROOT / "docs" / "gpu.md").read_text().split())
    deploy = " ".join((ROOT / "docs" / "deploy.md").read_text().split())
    assert f"the trainer warns above {INPUT_BOUND_SHARE:.0%}".replace("%", " %") in gpu
    assert f"CPU-sized default `batch_size: {schema.TrainingConfig().batch_size}`" in gpu
    tolerance = inspect.signature(export_onnx).parameters["tolerance"].default
    assert f"by hepnn within `{tolerance:.0e}`".replace("e-0", "e-") in deploy


@pytest.mark.slow
def test_top_tagging_readme_autoencoder_intensities_reproduce(tmp_path):
    """The top tagging README's command for linear against square-root pixel intensities gives its AUCs
    (2-3 minutes on 2 cores, generation included)."""
    import json

    from hepnn.cli import main

    text = (ROOT / "analyses" / "top_tagging" / "README.md").read_text()
    claim = re.search(r"AUC (0\.\d{4})\s+against (0\.\d{4}) with linear intensities", text)
    block = text[claim.end():].split("```bash\n", 1)[1].split("```", 1)[0]
    words = shlex.split(block.replace("\\\n", " "))
    words[words.index("--out") + 1] = str(tmp_path / "ae")
    words[2] = str(ROOT / "analyses" / "top_tagging")
    assert main([*words[1:], "--quiet"]) == 0
    aucs = {v: json.loads((tmp_path / "ae" / v / "metrics.json").read_text())["auc"] for v in ("sqrt", "linear")}
    assert aucs["sqrt"] == pytest.approx(float(claim.group(1)), abs=2e-3)
    assert aucs["linear"] == pytest.approx(float(claim.group(2)), abs=2e-3)


def test_architecture_report_figure_example_uses_existing_names():
    """docs/architecture.md's "add a plot" example: its decorator options, ReportFigure fields and the
    run attributes it reads exist (it draws with a plot function of the reader's own, so it is not run)."""
    import inspect

    from hepnn.plotting import report

    blocks = _code_blocks((ROOT / "docs" / "architecture.md").read_text(), ("python",))
    block = next(b for b in blocks if "report_figure" in b)
    tree = ast.parse(block)
    calls = {node.func.id if isinstance(node.func, ast.Name) else node.func.attr: node
             for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))}
    accepted = set(inspect.signature(report.report_figure).parameters)
    assert {k.arg for k in calls["report_figure"].keywords} <= accepted
    assert {k.arg for k in calls["ReportFigure"].keywords} <= {f.name for f in dataclasses.fields(report.ReportFigure)}
    assert hasattr(report.ReportContext, "finish")
    run_fields = {f.name for f in dataclasses.fields(report.ReportRun)}
    item_fields = {f.name for f in dataclasses.fields(report.FigureItem)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "run":
            assert node.attr in run_fields, f"docs/architecture.md: item.run.{node.attr} does not exist"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "item":
            assert node.attr in item_fields, f"docs/architecture.md: item.{node.attr} does not exist"
