"""`import hepnn` (and the light stage packages and the CLI parser) must not import heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "shap", "matplotlib", "pythia8mc", "fastjet", "sklearn")


def imported_after(code: str) -> list[str]:
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_hepnn_is_light():
    assert imported_after("import hepnn") == []


def test_stage_packages_and_cli_parser_are_light():
    code = (
        "import hepnn, hepnn.config, hepnn.models, hepnn.io, hepnn.preprocessing, hepnn.training, "
        "hepnn.explain, hepnn.metrics, hepnn.plotting, hepnn.plotting.report, hepnn.datasets, hepnn.plugins, hepnn.run\n"
        "from hepnn.cli import build_parser\nbuild_parser()"
    )
    assert imported_after(code) == []


def test_public_surface():
    import hepnn

    for name in hepnn.__all__:
        if name != "Tagger":
            assert hasattr(hepnn, name), name
    assert hepnn.__version__.count(".") == 2


def test_readme_python_example_names_exist():
    """Every `from X import Y` of the README's Python example resolves."""
    import importlib
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```python", 1)[1].split("```", 1)[0]
    imports = re.findall(r"^from ([\w.]+) import ([\w, ]+)$", block, flags=re.M)
    assert imports
    for module, names in imports:
        mod = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(mod, name.strip()), f"{module}.{name.strip()}"
    assert "hepnn.Tagger.load" in block
