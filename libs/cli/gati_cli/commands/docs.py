"""`gati-operator docs`: the generated reference pages (CRD fields, command line, settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gati_cli.commands.crds import add_generator


def register(subparsers: Any) -> None:
    add_generator(
        subparsers,
        "docs",
        help="print the CRD, CLI and settings reference pages, or write them to --out",
        description=(
            "Generate docs/reference/crds.md from the CustomResourceDefinitions (themselves "
            "generated from the contract models), docs/reference/cli.md from this command's "
            "own parser and docs/reference/settings.md from the GATI_* settings the services "
            "read, so none can drift from the code."
        ),
        files=_reference_files,
    )


def _reference_files() -> Mapping[str, str]:
    from gati_cli.reference import reference_files

    return reference_files()
