"""The generated reference pages: committed copies are current, and they say what the code does."""

from __future__ import annotations

import io
import re
import tokenize
from datetime import timedelta
from pathlib import Path

import pytest

from gati_cli.main import COMMANDS, main
from gati_cli.reference import duration_text, reference_files
from gati_contracts.durations import parse_duration
from gati_contracts.subjects import METRICS_STREAM
from gati_runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
GATI_NAME = re.compile(r"\bGATI_[A-Z0-9_]*")


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return reference_files()


@pytest.mark.parametrize("name", ["crds.md", "cli.md", "settings.md"])
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


def test_settings_page_shows_each_variable_with_type_default_and_bounds(
    pages: dict[str, str],
) -> None:
    settings = pages["settings.md"]
    assert "| `GATI_STREAM_MAX_AGE` | duration | `168h` |" in settings
    assert "| `GATI_STREAM_MAX_BYTES` | byte size | `-1` | ≥ -1 |" in settings
    assert "| `GATI_DECOMMISSIONED_RETENTION` | integer | `20` | ≥ 0 |" in settings
    assert "| `GATI_LOG_LEVEL` | string | `info` | one of `debug`, `info`" in settings
    assert "| `GATI_REDACT_FIELDS` | field paths | `metadata.annotations[" in settings
    # Per-service options carry their own attribute docstrings.
    assert "| `GATI_SCALER_TICK_SECONDS` | seconds | `1.0` | > 0 | How often held" in settings
    assert "| `GATI_RECONCILER_TARGET` | string | `kubernetes` | one of `kubernetes`" in settings


def test_every_setting_says_what_it_is_for() -> None:
    missing = [f.alias for f in Settings.model_fields.values() if not f.description]
    assert not missing, f"add description= to these Settings fields: {missing}"


@pytest.fixture(scope="module")
def names_in_code() -> dict[str, str]:
    """Every `GATI_*` word in the strings and comments of libs/ and services/ (where variable
    names are written), by name, with one file using it. Words that are also Python names
    (`GATI_HANDLER`, which an f-string's expression shows as text) are not variables."""
    found: dict[str, str] = {}
    python_names: set[str] = set()
    for top in ("libs", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            source = io.StringIO(path.read_text(encoding="utf-8")).readline
            for token in tokenize.generate_tokens(source):
                if token.type == tokenize.NAME:
                    python_names.add(token.string)
                elif token.type in (tokenize.STRING, tokenize.COMMENT):
                    for name in GATI_NAME.findall(token.string):
                        found.setdefault(name, str(path.relative_to(ROOT)))
    return {name: path for name, path in found.items() if name not in python_names}


def _undocumented(names: dict[str, str], page: str) -> dict[str, str]:
    documented = set(re.findall(r"^\| `(GATI_[A-Z0-9_]+)` \|", page, re.M))
    return {
        name: path
        for name, path in names.items()
        if name not in documented
        and name != METRICS_STREAM  # a stream's name, not a variable
        # A prefix (`GATI_SCALER_*`) is documented when a variable carries it.
        and not (name.endswith("_") and any(d.startswith(name) for d in documented))
    }


def test_every_gati_variable_in_the_code_is_documented(
    pages: dict[str, str], names_in_code: dict[str, str]
) -> None:
    undocumented = _undocumented(names_in_code, pages["settings.md"])
    assert not undocumented, (
        "GATI_* names in the code but not in docs/reference/settings.md; add them to Settings "
        f"or to reference.service_settings, then run `make docs`: {undocumented}"
    )


def test_the_scan_finds_variables_services_read_themselves(
    pages: dict[str, str], names_in_code: dict[str, str]
) -> None:
    assert {"GATI_WATCH_CAPACITY", "GATI_GITOPS_TREE", "GATI_REDACT_FIELDS"} <= set(names_in_code)
    assert "GATI_HANDLER" not in names_in_code
    without = "\n".join(
        line for line in pages["settings.md"].splitlines() if "`GATI_WATCH_CAPACITY`" not in line
    )
    assert set(_undocumented(names_in_code, without)) == {"GATI_WATCH_CAPACITY"}


def test_deploy_settings_comment_the_code_defaults(pages: dict[str, str]) -> None:
    """`# GATI_X=value` in settings.env tells an operator the default: it must be the code's."""
    settings_env = (ROOT / "deploy" / "operator" / "settings.env").read_text(encoding="utf-8")
    commented = re.findall(r"^# (GATI_[A-Z0-9_]+)=(.*)$", settings_env, re.M)
    assert commented, "settings.env should show the per-service defaults it does not set"
    for name, value in commented:
        assert f"| `{name}` | " in pages["settings.md"], f"{name} is not a variable"
        assert re.search(
            rf"^\| `{name}` \| [^|]+ \| `{re.escape(value)}` \|", pages["settings.md"], re.M
        ), f"settings.env comments {name}={value}, but the code's default differs"


@pytest.mark.parametrize(
    "value", [timedelta(days=7), timedelta(minutes=2), timedelta(seconds=90.5), timedelta(0)]
)
def test_duration_text_reads_back_as_the_same_duration(value: timedelta) -> None:
    assert parse_duration(duration_text(value)) == value
