"""The wheel carries the package data (default config, sample settings)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_package_data_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("hepnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hepnn/config/default.yaml" in names
    assert "hepnn/py.typed" in names
    assert not any(name.startswith(("tests/", "analyses/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hepnn = hepnn.cli:main" in text
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    for requirement in ("uproot", "awkward", "tensorflow", "shap", "mplhep", "pyyaml", "tqdm"):
        assert requirement in metadata.lower()
    assert "pythia8mc==8.317.2" in metadata
