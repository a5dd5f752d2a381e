"""Analyses as plugins: by path, by entry point of an installed distribution, and broken ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hepnn import Analysis
from hepnn.exceptions import ConfigError, UnknownNameError
from hepnn.plugins import PluginError, find_analyses, load_analysis, load_analysis_class

ANALYSIS_PY = '''
import numpy as np
from hepnn import Analysis

class HighPt(Analysis):
    def select(self, jets):
        return np.asarray(jets["jet_pt"]) > 600
'''


def make_analysis(root: Path, name: str = "my_ana", script: str | None = ANALYSIS_PY) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("training: {epochs: 2}\n")
    if script is not None:
        (folder / "analysis.py").write_text(script)
    return folder


def test_by_path_with_hooks(tmp_path):
    analysis = load_analysis(make_analysis(tmp_path), overrides=["training.batch_size=8"])
    assert type(analysis).__name__ == "HighPt"
    assert analysis.name == "my_ana"
    assert analysis.config.training.epochs == 2 and analysis.config.training.batch_size == 8
    assert analysis.select({"jet_pt": [550.0, 650.0]}).tolist() == [False, True]
    assert analysis.labels({}) is None and analysis.build_model(None, {}, 1) is None


def test_by_path_without_script_uses_the_base_class(tmp_path):
    analysis = load_analysis(make_analysis(tmp_path, script=None))
    assert type(analysis) is Analysis
    assert analysis.select({}) is None


def test_by_config_file(tmp_path):
    folder = make_analysis(tmp_path, script=None)
    assert load_analysis(folder / "config.yaml").config.training.epochs == 2


def test_broken_script_names_the_plugin(tmp_path):
    folder = make_analysis(tmp_path, script="import not_a_real_module_xyz\n")
    with pytest.raises(PluginError, match=r"analysis\.py failed to import: ModuleNotFoundError"):
        load_analysis(folder)


def test_script_needs_exactly_one_subclass(tmp_path):
    script = ANALYSIS_PY + "\nclass Other(Analysis):\n    pass\n"
    with pytest.raises(PluginError, match="expected exactly one hepnn.Analysis subclass, found HighPt, Other"):
        load_analysis(make_analysis(tmp_path, script=script))


def test_folder_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.yaml"):
        load_analysis(tmp_path / "empty")


def test_bad_config_in_analysis_names_the_key(tmp_path):
    folder = make_analysis(tmp_path, script=None)
    (folder / "config.yaml").write_text("training: {epocs: 2}\n")
    with pytest.raises(ConfigError, match="training.epocs: unknown key 'epocs'; did you mean 'epochs'"):
        load_analysis(folder)


def write_dist(site: Path, package: str, dist: str, entry: str, body: str) -> None:
    """A real installed distribution: a package plus its dist-info with entry_points.txt."""
    pkg = site / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    (pkg / "config.yaml").write_text("training: {epochs: 4}\n")
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hepnn.analyses]\n{entry}\n")
    (info / "RECORD").write_text("")


def test_entry_point_discovery(tmp_path, monkeypatch):
    body = "from hepnn import Analysis\n\nclass Tagging(Analysis):\n    name = 'ep_tagging'\n"
    write_dist(tmp_path, "ep_tagging_pkg", "ep-tagging", "ep_tagging = ep_tagging_pkg:Tagging", body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HEPNN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    found = find_analyses()
    assert "ep_tagging" in found and "ep-tagging 0.1" in found["ep_tagging"]
    analysis = load_analysis("ep_tagging")
    assert type(analysis).__name__ == "Tagging"
    assert analysis.config.training.epochs == 4
    assert analysis.directory == (tmp_path / "ep_tagging_pkg").resolve()

    monkeypatch.setenv("HEPNN_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "ep_tagging" not in find_analyses()
    with pytest.raises(ConfigError, match="HEPNN_DISABLE_PLUGIN_AUTOLOAD"):
        load_analysis("ep_tagging")


def test_broken_entry_point_names_plugin_and_package(tmp_path, monkeypatch):
    write_dist(tmp_path, "broken_pkg", "broken-ana", "broken = broken_pkg:Tagging", "raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HEPNN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    with pytest.raises(PluginError, match=r"analysis plugin 'broken' \(package broken-ana 0.1, broken_pkg:Tagging\) failed to load: RuntimeError: boom"):
        load_analysis("broken")


def test_unknown_name_lists_what_exists(monkeypatch):
    monkeypatch.delenv("HEPNN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    with pytest.raises(UnknownNameError, match="unknown analysis"):
        load_analysis_class("surely_not_an_analysis_xyz")


def test_pip_installed_distribution_is_discovered(tmp_path):
    """Build and install a tiny real package with pip into a target folder, then discover it."""
    src = tmp_path / "src"
    (src / "tiny_ana").mkdir(parents=True)
    (src / "tiny_ana" / "__init__.py").write_text("from hepnn import Analysis\n\nclass Tiny(Analysis):\n    pass\n")
    (src / "tiny_ana" / "config.yaml").write_text("training: {epochs: 5}\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    (src / "setup.cfg").write_text(textwrap.dedent("""
        [metadata]
        name = tiny-ana
        version = 0.2
        [options]
        packages = tiny_ana
        [options.package_data]
        tiny_ana = config.yaml
        [options.entry_points]
        hepnn.analyses =
            tiny = tiny_ana:Tiny
    """))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(src)],
        check=True, capture_output=True,
    )
    code = (
        "from hepnn.plugins import load_analysis, find_analyses\n"
        "a = load_analysis('tiny')\n"
        "print(type(a).__name__, a.config.training.epochs, 'tiny-ana 0.2' in find_analyses()['tiny'])"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    env.pop("HEPNN_DISABLE_PLUGIN_AUTOLOAD", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Tiny", "5", "True"]
