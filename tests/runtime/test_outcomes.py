"""From a handler's verdict to ack, delayed nak or term: pure, so every case is checked here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_runtime.outcomes import DONE, Ack, Backoff, Done, Fail, Nak, Retry, Term, settle

BACKOFF = Backoff(base=timedelta(seconds=1), cap=timedelta(seconds=30))


@pytest.mark.parametrize(
    ("outcome", "attempt", "expected"),
    [
        (DONE, 1, Ack()),
        (DONE, 5, Ack()),
        (Fail("bad spec"), 1, Term("bad spec")),
        (Retry("busy"), 1, Nak(timedelta(seconds=1), "busy")),
        (Retry("busy"), 3, Nak(timedelta(seconds=4), "busy")),
        (Retry("busy", after=timedelta(seconds=7)), 2, Nak(timedelta(seconds=7), "busy")),
        (Retry("busy"), 5, Term("gave up after 5 deliveries: busy")),
        (Retry("busy", after=timedelta(0)), 5, Term("gave up after 5 deliveries: busy")),
    ],
)
def test_settle(outcome: Done | Retry | Fail, attempt: int, expected: Ack | Nak | Term) -> None:
    assert settle(outcome, attempt=attempt, max_deliver=5, backoff=BACKOFF) == expected


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_grows_and_stays_within_cap(attempt: int) -> None:
    delay = BACKOFF.delay(attempt)
    assert BACKOFF.base <= delay <= BACKOFF.cap
    assert BACKOFF.delay(attempt + 1) >= delay


def test_backoff_reaches_cap() -> None:
    assert [BACKOFF.delay(n).total_seconds() for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
