"""``hepnn convert CONFIG --out DIR [--set k=v]``."""

from __future__ import annotations

from ..cli import add_set_option
from ..config import load_config
from .convert import convert

__all__ = ["add_commands"]


def _cmd_convert(args) -> int:
    config = load_config(args.config, args.overrides)
    counts = convert(config, args.out, force=args.force)
    total = sum(counts.values())
    parts = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"converted {total} jets to {args.out} ({parts})")
    return 0


def add_commands(subparsers) -> None:
    """Add the ``convert`` sub-command."""
    p = subparsers.add_parser("convert", help="read ROOT files once into train/val/test .npz files")
    p.add_argument("config", help="config file with a data section")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder that holds files hepnn did not write")
    add_set_option(p)
    p.set_defaults(func=_cmd_convert)
