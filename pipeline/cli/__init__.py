"""``python -m pipeline <command>``: one command line for data, training, evaluation, prediction.

Each command group lives in its own ``*_commands`` module exposing ``register(subparsers)``;
this file only wires them together, so adding a group is one line in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.errors import BusiError

COMMAND_MODULES = [
    "pipeline.cli.data",
    "pipeline.cli.models",
    "pipeline.cli.backbone",
    "pipeline.cli.clinics",
    "pipeline.cli.scope",
    "pipeline.cli.serve",
    "pipeline.cli.idc",
    "pipeline.cli.shift",
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command group."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen command; user errors print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except BusiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
