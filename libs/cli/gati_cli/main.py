"""Entry point of `gati-operator`.

Each subcommand lives in its own module under `gati_cli.commands` and exposes
`register(subparsers)`; the module imports its heavy dependencies inside the command
function, so `gati-operator --help` stays fast and one broken command never hides the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order `--help` lists them in.
COMMANDS: tuple[str, ...] = (
    "nats",
    "run",
    "dev",
    "crds",
    "schemas",
    "kubesim",
    "verify",
    "history",
    "tail",
    "export",
    "routes",
    "rollout",
    "replay",
    "docs",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gati-operator",
        description="Event-sourced Kubernetes operator for Gati applications.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"gati_cli.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
