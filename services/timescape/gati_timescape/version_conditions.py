"""The conditions of a `GatiVersion`, as a pure function of its rollout state.

Three types, in the style of a Deployment's and of Flagger's canary status, so `kubectl wait
--for=condition=Ready gv/orders-v2` waits for a finished rollout and an alert can watch Degraded:
- `Ready`: the version is the one serving its path in full (`Active`).
- `Progressing`: a rollout of this version is under way (`Pending` at the gate, `Progressing`
  at a step); `Unknown` while it is held by `pause`, as a paused Deployment reports.
- `Degraded`: the version was taken out of service by a failure (`RolledBack` after failed
  health checks or an abort, `Failed`), or, while in flight, its last health check failed.
Reasons are CamelCase. `VersionState.reason` names the change a pass made; a pass that changed
no phase (a traffic sample counted, a restart) has no reason of its own, so a condition whose
status holds keeps the reason and message it had. `lastTransitionTime` moves only with the
status (`set_condition`), and every condition records the generation it was decided for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gati_contracts.conditions import Condition, ConditionStatus, find_condition, set_condition
from gati_contracts.version import VersionPhase
from gati_timescape.state import IN_FLIGHT, VersionState

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

P = VersionPhase
S = ConditionStatus


@dataclass(frozen=True)
class _Reading:
    status: ConditionStatus
    reason: str
    message: str


def version_conditions(
    state: VersionState,
    previous: Sequence[Condition],
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    conditions = list(previous)
    for condition_type, reading in (
        (READY, _ready(state)),
        (PROGRESSING, _progressing(state)),
        (DEGRADED, _degraded(state)),
    ):
        current = find_condition(conditions, condition_type)
        keep = current is not None and current.status == reading.status and not state.reason
        update = Condition(
            type=condition_type,
            status=reading.status,
            last_transition_time=now,
            reason=current.reason if keep and current else reading.reason,
            message=current.message if keep and current else reading.message,
            observed_generation=generation,
        )
        conditions = set_condition(conditions, update)
    return conditions


def _ready(state: VersionState) -> _Reading:
    if state.phase is P.ACTIVE:
        return _Reading(S.TRUE, state.reason or "Active", f"serving {state.current_weight} %")
    message = f"{state.phase.value}, serving {state.current_weight} %"
    return _Reading(S.FALSE, state.phase.value, message)


def _progressing(state: VersionState) -> _Reading:
    if state.phase in IN_FLIGHT and state.paused:
        return _Reading(S.UNKNOWN, "Paused", "held by rollout pause until resume or promote")
    if state.phase is P.PENDING:
        return _Reading(S.TRUE, state.reason or "AwaitingHealthGate", "waiting for a passing check")
    if state.phase is P.PROGRESSING:
        message = f"step {state.current_step + 1} at {state.current_weight} %"
        return _Reading(S.TRUE, state.reason or "StepStarted", message)
    return _Reading(S.FALSE, state.reason or state.phase.value, f"rollout ended: {state.phase}")


def _degraded(state: VersionState) -> _Reading:
    if state.phase in {P.ROLLED_BACK, P.FAILED}:
        reason = state.reason or state.phase.value
        return _Reading(S.TRUE, reason, f"{state.phase.value}: {reason}")
    if state.phase in IN_FLIGHT and state.failed_checks > 0:
        message = f"{state.failed_checks} consecutive failed health checks"
        return _Reading(S.TRUE, "HealthCheckFailed", message)
    return _Reading(S.FALSE, "Healthy", "no failure recorded")
