"""No hepnn module imports a private name (``_x``) from another hepnn module.

Private modules (``hepnn/_fileio.py``, ``hepnn/models/_options.py``) are package helpers
and may be imported whole; what they, or any module, name with a leading underscore is
private to the module that defines it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hepnn

PACKAGE = Path(hepnn.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    base = PACKAGE / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def private_imports(path: Path, text: str | None = None) -> list[str]:
    """Every private name ``path`` (or ``text`` read as that file) imports from another hepnn module."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if source != "hepnn" and not source.startswith("hepnn."):
            continue
        for alias in node.names:
            name = alias.name
            if not name.startswith("_") or name.startswith("__"):
                continue
            if _is_module(f"{source}.{name}"):
                continue  # a private helper module of the package, imported whole
            if source == module:
                continue
            found.append(f"{module}:{node.lineno} imports {name} from {source}")
    return found


def test_private_imports_are_found():
    text = "from .trainer import _mask_value, model_inputs\nfrom . import _nothing_here\nfrom .._fileio import atomic_path\n" \
           "from . import _options\nfrom hepnn.io.chunks import _finite\n"
    found = private_imports(PACKAGE / "models" / "dense.py", text)
    assert found == [
        "hepnn.models.dense:1 imports _mask_value from hepnn.models.trainer",
        "hepnn.models.dense:2 imports _nothing_here from hepnn.models",
        "hepnn.models.dense:5 imports _finite from hepnn.io.chunks",
    ]


def test_no_private_cross_module_imports():
    found = [f for path in sorted(PACKAGE.rglob("*.py")) for f in private_imports(path)]
    assert not found, "hepnn modules import private names of other modules (make them public or move them):\n" + "\n".join(found)
