"""`gati-operator crds`: the CustomResourceDefinitions, generated from the contract models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

GeneratedFiles = Callable[[], Mapping[str, str]]


def register(subparsers: Any) -> None:
    add_generator(
        subparsers,
        "crds",
        help="print the gati.dev CRDs as YAML, or write them to --out",
        description=(
            "Generate the apiextensions.k8s.io/v1 CustomResourceDefinitions of GatiHandler, "
            "GatiModule and GatiVersion. Pipe into `kubectl apply -f -`, or write one file per "
            "CRD, <plural>.gati.dev.yaml, with --out (as committed in deploy/crds)."
        ),
        files=_crd_files,
    )


def _crd_files() -> Mapping[str, str]:
    from gati_contracts.crds import crd_files

    return crd_files()


def add_generator(
    subparsers: Any, name: str, *, help: str, description: str, files: GeneratedFiles
) -> None:
    """A command that prints generated files, or writes them into `--out DIR`."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument("--out", metavar="DIR", help="write the files into this directory")

    def run(args: argparse.Namespace) -> int:
        return emit(files(), args.out)

    parser.set_defaults(func=run)


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
