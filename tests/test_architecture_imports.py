"""hepnn-internal imports sit at module top level, so that a file's header says what it depends on.

A module may keep a function-level (lazy) hepnn import only when it is on the allowlist below, with the
reason: (b) keeping ``import hepnn``, the config loader, ``import hepnn.models`` or the CLI parser free of
heavy packages, or (c) an import cycle. Each such import carries a ``# lazy: ...`` comment where it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hepnn

PACKAGE = Path(hepnn.__file__).parent

# module -> why its remaining internal imports stay inside functions
ALLOWED_LAZY = {
    "hepnn/config/schema.py": "config loading must stay light: models.registry/explain import numpy (and cycle)",
    "hepnn/io/hypot.py": "io._hypot_kernel imports numba (half a second): only large arrays use the compiled loop",
    "hepnn/io/libm.py": "io._libm_kernel imports numba (half a second): only large arrays use the compiled loops",
    "hepnn/io/images.py": "io._image_kernels imports numba (half a second), which only jet images need",
    "hepnn/io/representations.py": "io._element_kernels imports numba (half a second): only large padded inputs",
    "hepnn/preprocessing/preprocessor.py": "preprocessing._kernels imports numba (half a second): only large fits",
    "hepnn/models/__init__.py": "the custom layers need Keras; `import hepnn.models` does not import Keras",
    "hepnn/models/autoencoder.py": "models.layers imports Keras; builders import it when they build",
    "hepnn/models/blocks.py": "models.layers imports Keras; builders import it when they build",
    "hepnn/models/efn.py": "models.particle_layers imports Keras; builders import it when they build",
    "hepnn/models/particlenet.py": "models.layers/particle_layers import Keras; imported when building",
    "hepnn/models/transformer.py": "models.layers/particle_layers import Keras; imported when building",
    "hepnn/run.py": "keeps the CLI parser (`import hepnn.cli`) free of numpy and the plotting stack",
    "hepnn/training/cli.py": "keeps the CLI parser free of the trainer, evaluation and export stacks",
    "hepnn/training/decorrelate.py": "cycle: training.decorrelate_layers imports training.decorrelate (and Keras)",
    "hepnn/training/feeds.py": "training.batches imports Keras at module level",
    "hepnn/training/step.py": "keeps `import hepnn.explain.step` / `hepnn.plotting.step` free of Keras",
    "hepnn/training/tagger.py": "cycles: training.kfold and scale.predict import training.tagger",
    "hepnn/tune/objective.py": "training.callbacks (via the trainer) imports Keras at module level",
    "hepnn/tune/space.py": "`import hepnn.tune` stays light; the builders register when a space is checked",
    "hepnn/tune/study.py": "keeps `import hepnn.tune` (and `hepnn tune --help`) free of numpy and the plots",
}


def _is_internal(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "hepnn"
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "hepnn" for alias in node.names)
    return False


def lazy_internal_imports(source: str) -> list[int]:
    """Line numbers of hepnn-internal imports placed inside a function."""
    found = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and _is_internal(child):
                found.append(child.lineno)
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    walk(ast.parse(source), False)
    return found


def lazy_counts() -> dict[str, int]:
    counts = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = lazy_internal_imports(path.read_text())
        if lines:
            counts[f"hepnn/{path.relative_to(PACKAGE).as_posix()}"] = len(lines)
    return counts


def test_counter_finds_function_level_internal_imports():
    source = (
        "from . import a\nimport numpy\n\n"
        "def f():\n    from .b import c\n    import os\n    import hepnn.io\n\n"
        "    def g():\n        from hepnn.x import y\n    return c\n\n"
        "class K:\n    def m(self):\n        from ..z import w\n"
    )
    assert lazy_internal_imports(source) == [5, 7, 10, 15]


def test_internal_imports_are_at_module_top():
    offenders = {module: n for module, n in lazy_counts().items() if module not in ALLOWED_LAZY}
    assert not offenders, (
        f"function-level hepnn imports in {offenders}: move them to the module top, or, if that would import "
        "a heavy package on a light path or make a cycle, add the module to ALLOWED_LAZY with the reason "
        "and a `# lazy: ...` comment at the import"
    )


def test_allowlist_is_current():
    stale = sorted(set(ALLOWED_LAZY) - set(lazy_counts()))
    assert not stale, f"{stale} have no lazy internal import left; remove them from ALLOWED_LAZY"


def test_lazy_imports_say_why():
    """Each block of remaining lazy imports is preceded by a `# lazy:` comment."""
    missing = []
    for module in ALLOWED_LAZY:
        path = PACKAGE.parent / module
        lines = path.read_text().splitlines()
        for lineno in lazy_internal_imports(path.read_text()):
            above = lineno - 2
            while above >= 0 and lines[above].lstrip().startswith(("from ", "import ")):
                above -= 1
            if not lines[above].lstrip().startswith("# lazy:"):
                missing.append(f"{module}:{lineno}")
    assert not missing, f"lazy internal imports without a `# lazy: reason` comment: {missing}"
