"""`gati-operator schemas`: JSON Schemas and AsyncAPI of the bus, for tools outside Python."""

from __future__ import annotations

import argparse
from typing import Any

from gati_cli.commands.crds import emit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="print the JSON Schemas and AsyncAPI document of the bus, or write them to --out",
        description=(
            "Generate a JSON Schema per event type (change, outcome, traffic, routes) from the "
            "msgspec contracts, named <schema>.v<version>.json, and an AsyncAPI 3.0 document of "
            "every subject, asyncapi.yaml (as committed in docs/schemas)."
        ),
    )
    parser.add_argument("--out", help="write the .json files into this directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_contracts.asyncapi import bus_documents

    return emit(bus_documents(), args.out)
