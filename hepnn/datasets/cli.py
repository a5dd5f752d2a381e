"""``hepnn generate``: the command-line front end of :func:`hepnn.datasets.generate`.

Examples
--------
.. code-block:: console

    $ hepnn generate top --n-jets 1000 --seed 1 --jobs 2 --out top.root
    $ hepnn generate ttbar --n-jets 500 --layout per_event --out ttbar.root --option mpi=true
"""

from __future__ import annotations

import argparse

from ..config.loader import safe_load_yaml, short_repr
from ..exceptions import ConfigError
from .generator import generate

__all__ = ["add_commands"]

_SAMPLE_NAMES = ("top", "qcd", "w", "ttbar")
_LAYOUTS = ("per_jet", "per_event")


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        msg = f"--option: expected KEY=VALUE, received {short_repr(text)}"
        raise ConfigError(msg)
    key, value = text.split("=", 1)
    return key.strip(), safe_load_yaml(f"--option {key.strip()}", text=value)


def _parse_options(texts: list[str]) -> dict[str, object]:
    """The ``--option`` values as a dict; a key given twice is an error (which one would win is a guess)."""
    options: dict[str, object] = {}
    for text in texts:
        key, value = _parse_option(text)
        if key in options:
            msg = (f"--option {key}: given twice ({short_repr(options[key])} and {short_repr(value)}); "
                   "pass each option once")
            raise ConfigError(msg)
        options[key] = value
    return options


def _cmd_generate(args) -> int:
    if args.n_jets < 1:
        msg = f"--n-jets: expected a positive int, received {args.n_jets}"
        raise ConfigError(msg)
    if args.seed < 0:
        msg = f"--seed: expected a non-negative int, received {args.seed}"
        raise ConfigError(msg)
    if args.jobs < 1:
        msg = f"--jobs: expected a positive int, received {args.jobs}"
        raise ConfigError(msg)
    options = _parse_options(args.options)
    out = generate(args.sample, n_jets=args.n_jets, seed=args.seed, out=args.out, jobs=args.jobs,
                   layout=args.layout, options=options, progress=not args.quiet, force=args.force)
    print(f"wrote {args.n_jets} {args.sample} jets to {out}")
    return 0


def add_commands(subparsers) -> None:
    """Add the ``generate`` sub-command to the ``hepnn`` parser."""
    p = subparsers.add_parser(
        "generate", help="generate a jet sample (Pythia 8 + FastJet) into a ROOT file",
        description="Generate top, qcd, w or ttbar jets with Pythia 8 and FastJet and write a ROOT ntuple.",
    )
    p.add_argument("sample", choices=_SAMPLE_NAMES, help="sample to generate")
    p.add_argument("--n-jets", type=int, required=True, help="number of jets to write")
    p.add_argument("--seed", type=int, default=1, help="base random seed (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--layout", choices=_LAYOUTS, default="per_jet", help="output layout (default per_jet)")
    p.add_argument("--out", default=None, help="output ROOT file (default <sample>.root)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out file that is not a hepnn-generated sample of the same name")
    p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="generator option, e.g. --option mpi=true --option pt_min=500 (repeatable, each key once)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_generate)


# argparse is imported for type checkers and readers of this module
_ = argparse
