"""Durations as users write them in specs (`30s`, `5m`, `1h30m`), parsed in exactly one place.

The text form is Go's `time.ParseDuration` subset that Kubernetes tools and Flagger users already
know; the wire keeps the user's text so a round trip through the API server changes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Final

# The API server checks the same form, so kubectl rejects a bad duration before any service runs.
DURATION_PATTERN: Final = r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$"
DURATION_HINT: Final = "must be a duration such as 30s, 5m or 1h30m (units ms, s, m, h)"

_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE: Final = re.compile(DURATION_PATTERN)
_UNIT_SECONDS: Final = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}


def parse_duration(text: str) -> timedelta:
    """Return the length of `text`, raising `ValueError` naming the accepted form otherwise."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} {DURATION_HINT}")
    seconds = sum(
        (Decimal(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text)),
        Decimal(0),
    )
    return timedelta(seconds=float(seconds))
