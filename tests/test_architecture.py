"""Shape of the code: short functions in the training layer, no import cycles between its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import hepnn

TRAINING = Path(hepnn.__file__).parent / "training"


def function_lengths(folder: Path) -> dict[str, int]:
    """Lines of every function in ``folder``'s modules, its docstring not counted."""
    lengths = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    body = body[1:] or body
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                docstring = (node.body[0].end_lineno - node.body[0].lineno + 1) if body is not node.body else 0
                lengths[f"{path.name}:{node.name}"] = node.end_lineno - first + 1 - docstring
    return lengths


def test_function_lengths_are_measured():
    lengths = function_lengths(TRAINING)
    assert lengths["splits.py:subset"] == 12  # 13 lines, of which one docstring line


def test_training_functions_are_short():
    lengths = function_lengths(TRAINING)
    longest = max(lengths, key=lengths.get)
    assert lengths[longest] < 80, f"{longest} has {lengths[longest]} lines; split it (see docs/architecture.md)"


def module_imports(folder: Path, package: str) -> dict[str, set[str]]:
    """Sibling modules each module of ``folder`` imports at module level (``from .x import``)."""
    graph = {}
    for path in folder.glob("*.py"):
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
        graph[path.stem] = found
    return graph


def test_no_import_cycles_in_training():
    graph = module_imports(TRAINING, "hepnn.training")
    state: dict[str, int] = {}

    def visit(name, trail):
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
        if state.get(name) == 2 or name not in graph:
            return
        state[name] = 1
        for other in sorted(graph[name]):
            visit(other, trail + [name])
        state[name] = 2

    for module in sorted(graph):
        visit(module, [])
    # the k-fold composites sit between the trainer/evaluation and the single-run modules
    assert "kfold" in graph["trainer"] and "kfold" in graph["evaluate"]
    assert not {"trainer", "evaluate"} & graph["kfold"]
