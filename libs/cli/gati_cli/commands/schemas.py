"""`gati-operator schemas`: JSON Schemas of every event on the bus, for tools outside Python."""

from __future__ import annotations

import argparse
from typing import Any

from gati_cli.commands.crds import emit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="print the JSON Schemas of the bus events, or write them to a directory",
        description=(
            "Generate a JSON Schema per event type (change, outcome, traffic, routes) from the "
            "msgspec contracts, named <schema>.v<version>.json (as committed in docs/schemas)."
        ),
    )
    parser.add_argument("--out", help="write the .json files into this directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_contracts.events import schema_files

    return emit(schema_files(), args.out)
