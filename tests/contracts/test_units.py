"""Durations and quantities: the two text forms other services turn into numbers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from gati_contracts.durations import parse_duration
from gati_contracts.quantities import parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s500ms", timedelta(seconds=90.5)),
        ("0", timedelta(0)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 m", "-5s", "1d", "m", "1.h", "5M"])
def test_bad_durations_name_the_accepted_form(text: str) -> None:
    with pytest.raises(ValueError, match="such as 30s, 5m or 1h30m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", Decimal("0.5")),
        ("128Mi", Decimal(128 * 2**20)),
        ("1.5", Decimal("1.5")),
        ("2Gi", Decimal(2 * 2**30)),
        ("1k", Decimal(1000)),
        ("1E", Decimal(10**18)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        (".5", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        ("-2", Decimal(-2)),
    ],
)
def test_quantities_parse_exactly(text: str, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "12x", "1 Gi", "Mi", "1.2.3", "1Ki1", "0x10", "1e"])
def test_bad_quantities_name_the_accepted_form(text: str) -> None:
    with pytest.raises(ValueError, match="such as 128Mi or 500m"):
        parse_quantity(text)
