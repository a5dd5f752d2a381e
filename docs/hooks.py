"""MkDocs hook: pages generated from the code at build time (nothing is written to docs/).

* ``index.md``: the README (links to files outside ``docs/`` become plain paths);
* ``configuration.md``: every config key from :mod:`hepnn.config.schema` (type, default, doc);
* ``cli.md``: the ``--help`` of every ``hepnn`` command, from :func:`hepnn.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def readme_page() -> str:
    text = (ROOT / "README.md").read_text()

    def link(match: re.Match) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            return match.group(0)
        path = target.split("#")[0]
        if path.startswith("docs/") and (ROOT / path).exists():
            return f"[{label}]({target[len('docs/'):]})"
        return label if label.strip("`") == path.rstrip("/") else f"{label} (`{path}`)"

    text = re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", link, text)
    return re.sub(r"!\[([^\]]*)\]\(docs/", r"![\1](", text)


def _type(tp: typing.Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`" for a in args)
    if origin is typing.Union or (origin is not None and origin.__name__ == "UnionType"):
        return " or ".join(_type(a) for a in args if a is not type(None)) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type(args[1])}" if len(args) == 2 else "mapping"
    if dataclasses.is_dataclass(tp):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return getattr(tp, "__name__", str(tp))


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
    else:
        return "**required**"
    from hepnn.config.loader import to_dict

    return f"`{to_dict(value)!r}`".replace("|", "\\|")


def _dataclasses(tp: typing.Any) -> list[type]:
    if dataclasses.is_dataclass(tp):
        return [tp]
    return [c for a in typing.get_args(tp) for c in _dataclasses(a)]


def config_page() -> str:
    from hepnn.config import schema

    lines = ["# Configuration reference", "",
             "Every key of a hepnn config file, generated from `hepnn/config/schema.py`. Unknown keys",
             "are errors; `hepnn config show` prints the defaults, `hepnn config check FILE` validates a file.", ""]
    seen: set = set()
    queue = [(schema.Config, "")]
    while queue:
        cls, path = queue.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        lines += [f"## {cls.__name__}", "", f"`{path or '(top level)'}`: {(cls.__doc__ or '').strip().splitlines()[0]}", "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        for field in dataclasses.fields(cls):
            doc = field.metadata.get("doc", "").replace("|", "\\|")
            lines.append(f"| `{field.name}` | {_type(hints[field.name])} | {_default(field)} | {doc} |")
            for sub in _dataclasses(hints[field.name]):
                queue.append((sub, f"{path}.{field.name}" if path else field.name))
        lines.append("")
    return "\n".join(lines)


def cli_page() -> str:
    from hepnn.cli import build_parser

    lines = ["# Command-line reference", "", "Generated from the `hepnn` argument parser.", ""]

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        lines.extend([f"## `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""])
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")

    parser = build_parser()
    parser.prog = "hepnn"
    walk(parser, "hepnn")
    return "\n".join(lines)


def on_files(files, config):
    for name, content in {"index.md": readme_page(), "configuration.md": config_page(), "cli.md": cli_page()}.items():
        files.append(File.generated(config, name, content=content))
    return files
