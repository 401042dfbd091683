"""The samples `make dev` applies are what newcomers copy first: they must pass the contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gati_contracts.objects import parse_object

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GATI_DOCS = [
    pytest.param(doc, id=f"{path.name}:{doc['metadata']['name']}")
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc["apiVersion"].startswith("gati.dev/")
]


def test_there_are_gati_examples() -> None:
    kinds = {param.values[0]["kind"] for param in GATI_DOCS}  # type: ignore[index]
    assert {"GatiHandler", "GatiModule"} <= kinds


@pytest.mark.parametrize("doc", GATI_DOCS)
def test_example_is_valid(doc: dict[str, object]) -> None:
    parse_object(doc)
