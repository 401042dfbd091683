"""Where in the stream a command starts or stops: an instant, or a stream sequence.

Users think in times ("what happened ten minutes ago"), scripts in sequences (the `sequence` an
export printed); both are accepted in one argument so `--since` means the same in every command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from gati_contracts.durations import parse_duration

_SEQUENCE = re.compile(r"[0-9]+")
HINT = (
    "must be an RFC 3339 time (2026-11-26T20:00:00Z), a relative age (10m, 1h30m) "
    "or a stream sequence (1234)"
)


@dataclass(frozen=True)
class Position:
    """Exactly one of `sequence` and `time` is set."""

    sequence: int | None = None
    time: datetime | None = None

    def before(self, sequence: int, time: datetime) -> bool:
        """Whether a message at (`sequence`, `time`) comes before this position."""
        if self.sequence is not None:
            return sequence < self.sequence
        assert self.time is not None
        return time < self.time

    def after(self, sequence: int, time: datetime) -> bool:
        """Whether a message at (`sequence`, `time`) lies beyond this (inclusive) end."""
        if self.sequence is not None:
            return sequence > self.sequence
        assert self.time is not None
        return time > self.time


class PositionError(ValueError):
    pass


def parse_position(text: str, *, option: str, now: datetime | None = None) -> Position:
    """Read `--since`/`--until`; `option` names the flag in the error so the user knows which."""
    value = text.strip()
    if _SEQUENCE.fullmatch(value):
        sequence = int(value)
        if sequence < 1:
            raise PositionError(f"{option} {text!r}: stream sequences start at 1")
        return Position(sequence=sequence)
    try:
        age = parse_duration(value)
    except ValueError:
        pass
    else:
        return Position(time=(now or datetime.now(UTC)) - age)
    return Position(time=parse_time(value, option=option))


def parse_time(text: str, *, option: str) -> datetime:
    """An RFC 3339 instant; a time without an offset is refused rather than guessed."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PositionError(f"{option} {text!r} {HINT}") from None
    if when.tzinfo is None:
        raise PositionError(
            f"{option} {text!r} has no UTC offset; add Z or +01:00 so the instant is unambiguous"
        )
    return when
