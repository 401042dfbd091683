"""The status a handler or module shows, decided from its Deployment's status alone.

Pure, so every reading of a Deployment (`kubectl rollout status`'s rules) is table-tested without
a server. The rules, in order: a Deployment whose controller has not yet seen the latest spec is
Progressing whatever its counts say (they describe the previous spec); a `Progressing=False`
condition with `ProgressDeadlineExceeded` means pods fail to come up, so Degraded; fewer updated
or available replicas than wanted, or old replicas still around, is Progressing; else Running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from gati_contracts.conditions import Condition, ConditionStatus, set_condition
from gati_contracts.workload import WorkloadPhase, WorkloadStatus

READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
# The status fields this module decides; any other field belongs to another writer (the
# scaler's `lastScaling`) and is carried through a rewrite untouched.
_OWN_FIELDS: Final = frozenset(
    field.alias or name for name, field in WorkloadStatus.model_fields.items()
)


@dataclass(frozen=True)
class Verdict:
    """One reading of the workload: its phase, and the reason and message its conditions carry."""

    phase: WorkloadPhase
    reason: str
    message: str
    replicas: int = 0
    ready_replicas: int = 0


def _int(status: Mapping[str, Any], key: str) -> int:
    value = status.get(key, 0)
    return value if isinstance(value, int) else 0


def read_deployment(deployment: Mapping[str, Any]) -> Verdict:
    """Phase of the workload behind `deployment` (an object as the API server returns it)."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = metadata.get("name", "?")
    wanted = spec.get("replicas", 1)
    wanted = wanted if isinstance(wanted, int) else 1
    replicas, ready = _int(status, "replicas"), _int(status, "readyReplicas")
    counts = {"replicas": replicas, "ready_replicas": ready}
    seen = status.get("observedGeneration")
    if not isinstance(seen, int) or seen < metadata.get("generation", 0):
        return Verdict(
            WorkloadPhase.PROGRESSING,
            "DeploymentPending",
            f"Deployment {name}: the controller has not yet observed the latest spec",
            **counts,
        )
    for condition in status.get("conditions") or []:
        if condition.get("type") == PROGRESSING and condition.get("reason") == DEADLINE_EXCEEDED:
            return Verdict(
                WorkloadPhase.DEGRADED,
                DEADLINE_EXCEEDED,
                f"Deployment {name}: {condition.get('message') or 'pods do not become ready'}",
                **counts,
            )
    updated, available = _int(status, "updatedReplicas"), _int(status, "availableReplicas")
    if updated < wanted or replicas > updated or available < updated:
        return Verdict(
            WorkloadPhase.PROGRESSING,
            "RollingOut",
            f"Deployment {name}: {available} of {wanted} replicas available, {updated} updated",
            **counts,
        )
    return Verdict(
        WorkloadPhase.RUNNING,
        "DeploymentAvailable",
        f"Deployment {name}: {available} of {wanted} replicas available",
        **counts,
    )


def failed(reason: str, message: str) -> Verdict:
    """The operator cannot realize the resource; `message` names the field and the fix."""
    return Verdict(WorkloadPhase.FAILED, reason, message)


def next_status(
    current: Mapping[str, Any] | None,
    verdict: Verdict,
    *,
    generation: int,
    selector: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """The status to write, or None when `current` already says the same.

    Returning None for an unchanged status is what makes a repeated or stale event a no-op
    on the API server: no write, no new resourceVersion, no watch event looping back to us.
    """
    before = WorkloadStatus.model_validate(current or {})
    conditions = before.conditions
    for ctype, holds in (
        (READY, verdict.phase is WorkloadPhase.RUNNING),
        (PROGRESSING, verdict.phase is WorkloadPhase.PROGRESSING),
        (DEGRADED, verdict.phase in (WorkloadPhase.DEGRADED, WorkloadPhase.FAILED)),
    ):
        conditions = set_condition(
            conditions,
            Condition(
                type=ctype,
                status=ConditionStatus.TRUE if holds else ConditionStatus.FALSE,
                last_transition_time=now,
                reason=verdict.reason,
                message=verdict.message,
                observed_generation=generation,
            ),
        )
    after = WorkloadStatus(
        phase=verdict.phase,
        replicas=verdict.replicas,
        ready_replicas=verdict.ready_replicas,
        selector=selector,
        observed_generation=generation,
        conditions=conditions,
        last_updated=before.last_updated,
    )
    if after == before:
        return None
    others = {key: value for key, value in (current or {}).items() if key not in _OWN_FIELDS}
    return {**others, **after.model_copy(update={"last_updated": now}).to_wire()}
