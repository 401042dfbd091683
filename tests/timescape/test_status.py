"""Every durable field survives a trip through status: a restart resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gati_contracts.version import GatiVersionStatus, VersionPhase
from gati_timescape.state import VersionState
from gati_timescape.status import from_status, to_status

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_every_field_but_reason_round_trips_through_the_wire() -> None:
    state = VersionState(
        phase=VersionPhase.PROGRESSING,
        current_step=2,
        current_weight=50,
        step_started_at=T,
        last_check_at=T,
        failed_checks=1,
        paused=True,
        handled_action="n-1",
        activated_at=T,
        draining_since=T,
        idle_samples=3,
        last_sample_at=T,
        traffic_count=7,
        last_traffic_at=T,
        decommissioned_at=T,
        reason="StepAdvanced",
    )
    status = to_status(state, None, handler_path="/users", generation=4, now=T)
    wired = GatiVersionStatus.from_wire(status.to_wire())
    assert from_status(wired) == replace(state, reason="")
    assert wired.handler_path == "/users"


def test_no_status_is_a_pending_version() -> None:
    assert from_status(None) == VersionState()
