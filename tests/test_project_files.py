"""LICENSE, CHANGELOG.md, CITATION.cff and CONTRIBUTING.md exist and agree with the package."""

from __future__ import annotations

import configparser
import datetime
import re
from pathlib import Path

import yaml

import hepnn

ROOT = Path(__file__).resolve().parents[1]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_license_is_the_bsd_3_clause_text_setup_cfg_declares():
    assert _setup_cfg()["metadata"]["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "the hepnn developers" in text
    assert len(re.findall(r"^[123]\. ", text, flags=re.M)) == 3


def test_citation_cff_has_the_required_keys_and_the_package_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # required by the CFF 1.2.0 schema
    for key in ("cff-version", "message", "title", "authors"):
        assert cff.get(key), key
    assert cff["cff-version"] == "1.2.0"
    assert all(isinstance(a, dict) and ("name" in a or "family-names" in a) for a in cff["authors"])
    assert cff["version"] == hepnn.__version__
    assert cff["license"] == _setup_cfg()["metadata"]["license"]
    datetime.date.fromisoformat(str(cff["date-released"]))


def test_changelog_follows_keep_a_changelog_and_lists_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, flags=re.M)
    assert versions and versions[0][0] == hepnn.__version__
    sections = set(re.findall(r"^### (\w+)$", text, flags=re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_contributing_names_only_files_and_registries_that_exist():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    for heading in ("## Add a model", "## Add an input kind", "## Add a plot", "## Add an analysis plugin"):
        assert heading in text
    paths = set(re.findall(r"`((?:hepnn|tests|analyses|notes)/[\w/.<>-]+)`", text))
    assert len(paths) > 15
    missing = [p for p in paths if "<" not in p and not (ROOT / p).exists()]
    assert not missing, f"CONTRIBUTING.md names files that do not exist: {missing}"
    from hepnn.explain.registry import EXPLAINERS
    from hepnn.io.derived import DERIVED, register_derived  # noqa: F401
    from hepnn.io.representations import REPRESENTATIONS
    from hepnn.models.registry import MODELS, register_model  # noqa: F401
    from hepnn.plotting.common import PLOTS

    for registry in (EXPLAINERS, DERIVED, REPRESENTATIONS, MODELS, PLOTS):
        assert registry.names()
    assert "hepnn.analyses" in text and "HEPNN_DISABLE_PLUGIN_AUTOLOAD" in text
