"""Conditions follow `meta.SetStatusCondition`: the transition time moves only with the status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gati_contracts.conditions import Condition, ConditionStatus, find_condition, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ready(status: ConditionStatus, at: datetime, reason: str = "Reconciled") -> Condition:
    return Condition(type="Ready", status=status, last_transition_time=at, reason=reason)


def test_same_status_keeps_the_transition_time_but_takes_the_new_reason() -> None:
    first = set_condition([], ready(ConditionStatus.TRUE, T0))
    again = set_condition(first, ready(ConditionStatus.TRUE, T0 + timedelta(hours=1), "StillFine"))
    assert again == [ready(ConditionStatus.TRUE, T0, "StillFine")]


def test_new_status_moves_the_transition_time_and_keeps_other_types() -> None:
    progressing = Condition(
        type="Progressing", status=ConditionStatus.FALSE, last_transition_time=T0, reason="Done"
    )
    later = T0 + timedelta(minutes=5)
    result = set_condition(
        [progressing, ready(ConditionStatus.TRUE, T0)], ready(ConditionStatus.FALSE, later)
    )
    assert result == [progressing, ready(ConditionStatus.FALSE, later)]
    assert find_condition(result, "Progressing") == progressing
    assert find_condition(result, "Degraded") is None


def test_times_without_a_zone_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        ready(ConditionStatus.TRUE, datetime(2026, 1, 1))
