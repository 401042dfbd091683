"""The one place `VersionState` meets `GatiVersionStatus`, so a field added to either side is
mapped (or knowingly left out) here and nowhere else.

Status is the durable home of the state machine: whatever `to_status` drops is lost at the next
restart, so every `VersionState` field except `reason` has a status field of its own. `reason`
only names the latest change, for the outcome event and the conditions written with it.
"""

from __future__ import annotations

from datetime import datetime

from gati_contracts.version import GatiVersionStatus
from gati_timescape.state import VersionState
from gati_timescape.version_conditions import version_conditions


def from_status(status: GatiVersionStatus | None) -> VersionState:
    if status is None:
        return VersionState()
    return VersionState(
        phase=status.phase,
        current_step=status.current_step,
        current_weight=status.current_weight,
        step_started_at=status.step_started_at,
        last_check_at=status.last_check_at,
        failed_checks=status.failed_checks,
        paused=status.paused,
        handled_action=status.last_rollout_action,
        activated_at=status.activated_at,
        draining_since=status.draining_since,
        idle_samples=status.idle_samples,
        last_sample_at=status.last_sample_at,
        traffic_count=status.traffic_count,
        last_traffic_at=status.last_traffic_timestamp,
        decommissioned_at=status.decommissioned_at,
    )


def to_status(
    state: VersionState,
    previous: GatiVersionStatus | None,
    *,
    handler_path: str,
    generation: int | None,
    now: datetime,
) -> GatiVersionStatus:
    """`generation`: the object's `metadata.generation` the state was decided from."""
    base = previous or GatiVersionStatus()
    conditions = version_conditions(state, base.conditions, generation=generation, now=now)
    return base.model_copy(
        update={
            "observed_generation": generation,
            "conditions": conditions,
            "phase": state.phase,
            "handler_path": handler_path,
            "current_weight": state.current_weight,
            "current_step": state.current_step,
            "step_started_at": state.step_started_at,
            "last_check_at": state.last_check_at,
            "failed_checks": state.failed_checks,
            "paused": state.paused,
            "last_rollout_action": state.handled_action,
            "activated_at": state.activated_at,
            "draining_since": state.draining_since,
            "idle_samples": state.idle_samples,
            "last_sample_at": state.last_sample_at,
            "traffic_count": state.traffic_count,
            "last_traffic_timestamp": state.last_traffic_at,
            "decommissioned_at": state.decommissioned_at,
        }
    )
