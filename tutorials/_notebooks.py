"""Write each tutorial script as a Jupyter notebook (``make notebooks``), or check they agree.

The scripts (``tutorials/NN_*.py``, jupytext percent format: ``# %%`` cells) are the source;
``tutorials/NN_*.ipynb`` are generated from them with jupytext, without outputs, so
JupyterHub users can open them directly. ``tests/test_tutorials.py`` regenerates every
notebook in memory and fails when a checked-in one differs from its script.

Usage::

    python tutorials/_notebooks.py           # rewrite the notebooks
    python tutorials/_notebooks.py --check   # exit 1 when a notebook is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def scripts() -> list[Path]:
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def notebook_text(script: Path) -> str:
    """The ``.ipynb`` text jupytext makes of ``script`` (no outputs, python3 kernel)."""
    import jupytext

    from nbformat.v4 import new_markdown_cell

    notebook = jupytext.read(script, fmt="py:percent")
    notebook.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    first = notebook.cells[0] if notebook.cells else None
    if first is not None and first.cell_type == "code" and first.source.startswith('"""'):
        # the module docstring reads better as the notebook's title text
        title, _, rest = first.source.strip().strip('"').strip().partition("\n")
        notebook.cells[0] = new_markdown_cell(f"# {title}\n{rest}".rstrip())
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{script.stem[:2]}-{i:03d}"  # stable ids: the same script gives the same file
    return jupytext.writes(notebook, fmt="ipynb")


def stale() -> list[Path]:
    """Notebooks missing or different from what their script gives."""
    out = []
    for script in scripts():
        target = script.with_suffix(".ipynb")
        if not target.is_file() or target.read_text() != notebook_text(script):
            out.append(target)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when a notebook is out of date")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"{path.name} is out of date: run `make notebooks`")
        return 1 if bad else 0
    for script in scripts():
        script.with_suffix(".ipynb").write_text(notebook_text(script))
        print(f"wrote {script.with_suffix('.ipynb').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
