"""The wheel carries the package data (default config, sample settings).

Each test builds from its own copy of the source tree: pip builds in the source's ``build/`` and
``*.egg-info`` folders, and two builds of one tree at once (these tests on two xdist workers) broke
each other ("Egg metadata expected at build/bdist... but not found").
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _source(tmp_path: Path) -> Path:
    """A copy of the checkout without its environment, caches and earlier build output."""
    import shutil

    copy = tmp_path / "source"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*cache*", ".hypothesis", "notes"))
    return copy


def test_wheel_contains_package_data_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(tmp_path), str(_source(tmp_path))],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("hepnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hepnn/config/default.yaml" in names
    assert "hepnn/py.typed" in names
    assert "hepnn/plotting/templates/report.html" in names
    assert not any(name.startswith(("tests/", "analyses/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hepnn = hepnn.cli:main" in text
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    for requirement in ("uproot", "awkward", "tensorflow", "shap", "mplhep", "pyyaml", "tqdm"):
        assert requirement in metadata.lower()
    assert "pythia8mc==8.317.2" in metadata


def test_pip_install_into_a_new_venv_then_hepnn_list(tmp_path):
    """A non-editable `pip install .` into a fresh venv gives a working `hepnn` command.

    The dependencies are borrowed from the test environment through PYTHONPATH (installing
    TensorFlow again would take minutes); hepnn itself comes from the new venv.
    """
    import os
    import sysconfig
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", site, str(_source(tmp_path))],
        check=True, capture_output=True,
    )
    deps = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": deps}
    code = "import hepnn, sys; print(hepnn.__file__); from hepnn.cli import main; sys.exit(main(['list']))"
    out = subprocess.run([str(env_dir / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first, *rest = out.stdout.splitlines()
    assert first.startswith(site), "hepnn must come from the new venv, not the source tree"
    listing = "\n".join(rest)
    for name in ("dense", "cnn", "rnn", "deepsets", "autoencoder", "permutation", "shap"):
        assert name in listing
    assert (Path(site) / "hepnn" / "config" / "default.yaml").is_file()
