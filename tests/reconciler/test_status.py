"""How a Deployment's status reads as a workload phase, and when status needs no write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gati_contracts.workload import WorkloadPhase
from gati_reconciler.status import failed, next_status, read_deployment

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def deployment(generation: int = 2, replicas: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "users", "generation": generation},
        "spec": {"replicas": replicas},
        "status": status,
    }


READY = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


@pytest.mark.parametrize(
    ("obj", "phase", "reason"),
    [
        (deployment(**READY, readyReplicas=2), WorkloadPhase.RUNNING, "DeploymentAvailable"),
        (
            deployment(**(READY | {"observedGeneration": 1})),
            WorkloadPhase.PROGRESSING,
            "DeploymentPending",
        ),
        (deployment(), WorkloadPhase.PROGRESSING, "DeploymentPending"),
        (deployment(**(READY | {"availableReplicas": 1})), WorkloadPhase.PROGRESSING, "RollingOut"),
        (deployment(**(READY | {"replicas": 3})), WorkloadPhase.PROGRESSING, "RollingOut"),
        (
            deployment(**READY, conditions=[DEADLINE]),
            WorkloadPhase.DEGRADED,
            "ProgressDeadlineExceeded",
        ),
        (
            deployment(replicas=0, observedGeneration=2),
            WorkloadPhase.RUNNING,
            "DeploymentAvailable",
        ),
    ],
)
def test_read_deployment(obj: dict[str, Any], phase: WorkloadPhase, reason: str) -> None:
    verdict = read_deployment(obj)
    assert (verdict.phase, verdict.reason) == (phase, reason)


def test_garbage_status_reads_as_progressing_not_a_crash() -> None:
    verdict = read_deployment(
        {"metadata": {}, "spec": {"replicas": "x"}, "status": {"replicas": "y"}}
    )
    assert verdict.phase is WorkloadPhase.PROGRESSING


def test_conditions_and_counts() -> None:
    status = next_status(
        None,
        read_deployment(deployment(**READY, readyReplicas=2)),
        generation=4,
        selector="s",
        now=NOW,
    )
    assert status is not None
    assert status["phase"] == "Running"
    assert status["observedGeneration"] == 4
    assert status["readyReplicas"] == 2
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Progressing"]["status"] == "False"
    assert by_type["Degraded"]["status"] == "False"


def test_unchanged_status_is_not_rewritten_and_transitions_keep_their_time() -> None:
    verdict = read_deployment(deployment(**READY, readyReplicas=2))
    first = next_status(None, verdict, generation=2, selector="s", now=NOW)
    later = NOW + timedelta(minutes=5)
    assert next_status(first, verdict, generation=2, selector="s", now=later) is None
    degraded = next_status(
        first, failed("InvalidSpec", "spec.port: too big"), generation=3, selector="s", now=later
    )
    assert degraded is not None
    by_type = {c["type"]: c for c in degraded["conditions"]}
    assert degraded["phase"] == "Failed"
    assert by_type["Degraded"]["message"] == "spec.port: too big"
    assert by_type["Degraded"]["lastTransitionTime"] == later.isoformat().replace("+00:00", "Z")
    assert first is not None
    assert degraded["lastUpdated"] != first["lastUpdated"]


def test_fields_of_other_writers_survive_a_rewrite() -> None:
    """The scaler's `lastScaling` lives in the same status; rebuilding ours must not drop it."""
    last_scaling = {"result": 3, "reason": "ScaleUp"}
    first = next_status(
        None,
        read_deployment(deployment(**READY, readyReplicas=2)),
        generation=1,
        selector="s",
        now=NOW,
    )
    assert first is not None
    rewritten = next_status(
        {**first, "lastScaling": last_scaling},
        failed("InvalidSpec", "spec.port: too big"),
        generation=2,
        selector="s",
        now=NOW + timedelta(minutes=1),
    )
    assert rewritten is not None
    assert rewritten["lastScaling"] == last_scaling
    assert rewritten["phase"] == "Failed"
