"""The generated reference pages: committed copies are current, and they say what the code does."""

from __future__ import annotations

from pathlib import Path

import pytest

from gati_cli.main import COMMANDS, main
from gati_cli.reference import reference_files

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return reference_files()


@pytest.mark.parametrize("name", ["crds.md", "cli.md"])
def test_committed_reference_is_current(pages: dict[str, str], name: str) -> None:
    committed = (REFERENCE / name).read_text(encoding="utf-8")
    assert committed == pages[name], f"docs/reference/{name} is stale; run `make docs`"


def test_crd_page_shows_each_field_with_default_bounds_and_owner_text(
    pages: dict[str, str],
) -> None:
    crds = pages["crds.md"]
    for kind in ("GatiHandler", "GatiModule", "GatiVersion"):
        assert f"## {kind}\n" in crds
        assert f"### {kind}.spec\n" in crds
    assert "| `spec.port` | integer | `8080` | ≥ 1; ≤ 65535 |" in crds
    assert "| `spec.handlerPath` (required) | string |" in crds
    assert "`spec.timescape.rollout.steps[].pause`" in crds
    assert "one of `none`, `hpa`, `events`" in crds


def test_cli_page_has_every_command_and_option(pages: dict[str, str]) -> None:
    cli = pages["cli.md"]
    for command in COMMANDS:
        assert f"## gati-operator {command}\n" in cli
    service = "| `--service SERVICE` |  | whose decisions to replay (one of reconciler, scaler, "
    assert service in cli
    assert "/work/" not in cli, "path defaults must not name the checkout"


def test_docs_command_writes_the_pages(tmp_path: Path, pages: dict[str, str]) -> None:
    assert main(["docs", "--out", str(tmp_path)]) == 0
    assert {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()} == pages
