"""hepnn.scale.files: the file drivers of a Tagger sit above the training layer."""

from __future__ import annotations

import ast
from pathlib import Path

import hepnn.scale.files as files


def _hepnn_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = "hepnn.scale" if node.level == 1 else ("hepnn" if node.level == 2 else "")
            module = f"{base}.{node.module}" if node.level and node.module else (base or node.module or "")
            names.add(module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "hepnn" or n.startswith("hepnn.")}


def test_file_drivers_do_not_import_training():
    imported = _hepnn_imports(Path(files.__file__))
    assert imported, "the AST walk found no hepnn import"
    assert not [n for n in imported if n.startswith(("hepnn.training", "hepnn.scale.predict"))], imported


def test_tree_name_prefers_the_config_tree(tmp_path):
    import numpy as np
    import uproot

    from types import SimpleNamespace

    tagger = SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(files=())), layout="per_jet")

    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        f["a"] = {"x": np.arange(3.0)}
        f["b"] = {"x": np.arange(3.0)}
    assert files.tree_name(tagger, path, "b") == "b"
    assert files.tree_name(tagger, path) == "jets"  # two trees and none configured: the layout's default
    single = tmp_path / "one.root"
    with uproot.recreate(single) as f:
        f["only"] = {"x": np.arange(3.0)}
    assert files.tree_name(tagger, single) == "only"
