"""`gati-operator crds`: the CustomResourceDefinitions, generated from the contract models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="print the gati.dev CRDs as YAML, or write them to a directory",
        description=(
            "Generate the apiextensions.k8s.io/v1 CustomResourceDefinitions of GatiHandler, "
            "GatiModule and GatiVersion. Pipe into `kubectl apply -f -`, or write one file per "
            "CRD with --out (as committed in deploy/crds)."
        ),
    )
    parser.add_argument("--out", help="write <plural>.gati.dev.yaml files into this directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_contracts.crds import crd_files

    return emit(crd_files(), args.out)


def emit(files: Mapping[str, str], out: str | None) -> int:
    """Print generated files one after another, or write each into `out`; the names go to stderr
    so stdout stays pipeable."""
    if out is None:
        sys.stdout.write("".join(files.values()))
        return 0
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
        print(f"wrote {directory / name}", file=sys.stderr)
    return 0
