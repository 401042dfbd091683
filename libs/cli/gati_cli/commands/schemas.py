"""`gati-operator schemas`: JSON Schemas and AsyncAPI of the bus, for tools outside Python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gati_cli.commands.crds import add_generator


def register(subparsers: Any) -> None:
    add_generator(
        subparsers,
        "schemas",
        help="print the JSON Schemas and AsyncAPI document of the bus, or write them to --out",
        description=(
            "Generate a JSON Schema per event type (change, outcome, traffic, routes) from the "
            "msgspec contracts, named <schema>.v<version>.json, and an AsyncAPI 3.0 document of "
            "every subject, asyncapi.yaml (as committed in docs/schemas)."
        ),
        files=_bus_documents,
    )


def _bus_documents() -> Mapping[str, str]:
    from gati_contracts.asyncapi import bus_documents

    return bus_documents()
