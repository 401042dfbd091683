"""When a draining version goes, when it stays, and how many records are kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from gati_contracts.events import TrafficSample
from gati_contracts.version import DecommissionAction, DecommissionSpec, VersionPhase
from gati_timescape.decommission import observe_traffic, records_to_delete
from gati_timescape.state import Decision, VersionState
from timescape.helpers import at, traffic

P = VersionPhase
SPEC = DecommissionSpec(grace_seconds=300, idle_samples=3, action=DecommissionAction.SCALE_TO_ZERO)
DRAINING = VersionState(phase=P.DRAINING, draining_since=at(0))


def observe(
    samples: Sequence[TrafficSample],
    now: float,
    state: VersionState = DRAINING,
    unavailable: int = 0,
) -> Decision:
    return observe_traffic(state, SPEC, samples, unavailable_replicas=unavailable, now=at(now))


IDLE = [traffic(10, 0), traffic(20, 0), traffic(30, 0)]


def test_idle_for_the_samples_and_the_grace_is_decommissioned() -> None:
    decision = observe(IDLE, 300)
    assert (decision.state.phase, decision.state.decommissioned_at) == (P.DECOMMISSIONED, at(300))
    [outcome] = decision.outcomes
    assert (outcome.reason, outcome.details) == ("Idle", {"action": "scaleToZero"})


@pytest.mark.parametrize(
    ("samples", "now", "unavailable", "wake"),
    [
        (IDLE, 299, 0, 300),  # grace not over: wake when it is
        (IDLE[:2], 10**4, 0, None),  # too few idle samples
        (IDLE, 10**4, 1, None),  # a pod is unavailable
        ([traffic(10, 0), traffic(20, 0, source="r2"), traffic(25, 1)], 10**4, 0, None),
    ],
)
def test_not_yet(
    samples: list[TrafficSample], now: float, unavailable: int, wake: float | None
) -> None:
    decision = observe(samples, now, unavailable=unavailable)
    assert decision.state.phase is P.DRAINING
    assert decision.wake_at == (None if wake is None else at(wake))


def test_traffic_resuming_while_draining_cancels_the_countdown() -> None:
    first = observe(IDLE[:2], 100)
    assert first.state.idle_samples == 2
    resumed = observe([traffic(40, 7)], 100, first.state)
    state = resumed.state
    assert (state.idle_samples, state.traffic_count, state.last_traffic_at) == (0, 7, at(40))
    assert [o.reason for o in resumed.outcomes] == ["TrafficResumed"]
    quiet = [traffic(50, 0), traffic(60, 0), traffic(70, 0)]
    assert observe(quiet, 300, state).wake_at == at(340)  # grace restarted at the last request
    assert observe(quiet, 340, state).state.phase is P.DECOMMISSIONED


def test_a_redelivered_sample_is_counted_once() -> None:
    once = observe([*IDLE[:2], traffic(25, 4)], 1000)
    again = observe([*IDLE[:2], traffic(25, 4)], 1000, once.state)
    assert (again.state.idle_samples, again.state.traffic_count) == (0, 4)
    idle = observe(IDLE[:2], 1000)
    assert observe(IDLE[:2], 1000, idle.state).state.idle_samples == 2


def test_another_routers_busy_sample_at_the_same_time_still_cancels() -> None:
    idle = observe(IDLE, 100)
    busy = observe([traffic(30, 2, source="r2")], 100, idle.state)
    assert (busy.state.idle_samples, busy.state.last_traffic_at) == (0, at(30))


def test_only_a_draining_version_at_weight_0_goes() -> None:
    active = VersionState(phase=P.ACTIVE, current_weight=100)
    decision = observe(IDLE, 10**4, active)
    assert (decision.state.phase, decision.state.idle_samples) == (P.ACTIVE, 3)
    held = replace(DRAINING, current_weight=5)
    assert observe(IDLE, 10**4, held).state.phase is P.DRAINING


def test_draining_without_a_start_starts_its_grace_now() -> None:
    decision = observe(IDLE, 1000, replace(DRAINING, draining_since=None))
    assert (decision.state.draining_since, decision.wake_at) == (at(1000), at(1300))


def test_retention_keeps_the_newest_records() -> None:
    records = [("v1", at(10)), ("v3", at(30)), ("v2", at(20)), ("v4", at(30))]
    assert records_to_delete(records, keep=2) == ["v1", "v2"]
    assert records_to_delete(records, keep=10) == []
    assert records_to_delete(records, keep=0) == ["v1", "v2", "v3", "v4"]
    # A record whose handler still exists counts, but stays.
    assert records_to_delete(records, keep=2, in_use={"v1"}) == ["v2"]
    assert records_to_delete(records, keep=0, in_use={"v4"}) == ["v1", "v2", "v3"]
    with pytest.raises(ValueError, match="retention"):
        records_to_delete(records, keep=-1)
