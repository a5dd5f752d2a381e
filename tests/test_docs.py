"""The documentation site builds with warnings as errors and carries the generated references."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return out


def _text(html: Path) -> str:
    return re.sub(r"<[^>]+>", " ", html.read_text())


def test_configuration_reference_lists_every_schema_field(site):
    import dataclasses

    from hepnn.config import schema

    text = _text(site / "configuration" / "index.html")
    for cls in (schema.Config, schema.TrainingConfig, schema.SequenceInput):
        assert cls.__name__ in text
        for field in dataclasses.fields(cls):
            assert f" {field.name} " in text, f"{cls.__name__}.{field.name} missing from the configuration reference"
    assert "training epochs" in text


def test_cli_reference_has_every_command(site):
    import argparse

    from hepnn.cli import build_parser

    text = _text(site / "cli" / "index.html")
    commands = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)][0].choices
    assert len(commands) > 8
    for name in commands:
        assert f"hepnn {name}" in text, name
    assert "--quiet" in text


def test_user_guide_and_api_reference(site):
    home = _text(site / "index.html")
    assert "hepnn" in home and (site / "images" / "demo_rejection.png").is_file()
    assert (site / "scale-out" / "index.html").is_file()
    api = _text(site / "api" / "index.html")
    for name in ("Tagger", "predict_file", "load_config", "register_model", "Registry"):
        assert name in api, name
    assert "One score per jet" in api  # a docstring's text, rendered
