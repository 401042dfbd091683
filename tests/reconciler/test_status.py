"""How a Deployment's status reads as a workload phase, and when status needs no write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.conditions import Condition, ConditionStatus, set_condition
from gati_contracts.workload import WorkloadPhase, WorkloadStatus
from gati_reconciler.status import (
    DEPLOYMENT_READING,
    Verdict,
    failed,
    next_status,
    read_deployment,
)

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


_ANY_VALUE = st.none() | st.integers(-1, 3) | st.sampled_from(["x", "users"])
_SOME_DICT = st.dictionaries(
    st.sampled_from(["name", "generation", "replicas", "managedFields", "uid"]), _ANY_VALUE
)


@given(
    metadata=st.none() | _SOME_DICT,
    spec=st.none() | _SOME_DICT,
    status=st.none()
    | st.dictionaries(
        st.sampled_from(
            [
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "availableReplicas",
                "readyReplicas",
            ]
        ),
        _ANY_VALUE,
    ).map(lambda status: status | {"conditions": [DEADLINE]} if len(status) == 3 else status),
    drop=st.sets(st.sampled_from(["metadata", "spec", "status"])),
)
def test_an_apply_answer_read_in_part_reads_as_the_whole_object(
    metadata: dict[str, Any] | None,
    spec: dict[str, Any] | None,
    status: dict[str, Any] | None,
    drop: set[str],
) -> None:
    """The reconciler decodes only what `read_deployment` reads of an apply's answer: the same
    verdict, or the same error, as from the whole object, for fields left out, null or odd."""
    whole: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment"}
    whole |= {"metadata": metadata, "spec": spec, "status": status}
    for key in drop:
        del whole[key]
    part = DEPLOYMENT_READING.decode(msgspec.json.encode(whole)).as_object()
    try:
        expected: Verdict | type[Exception] = read_deployment(whole)
    except Exception as error:
        expected = type(error)
    try:
        got: Verdict | type[Exception] = read_deployment(part)
    except Exception as error:
        got = type(error)
    assert got == expected


def test_the_partial_reading_of_a_deployment_keeps_its_conditions() -> None:
    answer = deployment(**READY, conditions=[DEADLINE]) | {"apiVersion": "apps/v1"}
    part = DEPLOYMENT_READING.decode(msgspec.json.encode(answer)).as_object()
    assert read_deployment(part) == read_deployment(answer)
    assert read_deployment(part).phase is WorkloadPhase.DEGRADED


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


def test_a_message_longer_than_the_schema_takes_is_cut_not_refused() -> None:
    status = next_status(
        None, failed("ApiRejected", "x" * 40_000), generation=1, selector=None, now=NOW
    )
    assert status is not None
    assert {len(c["message"]) for c in status["conditions"]} == {32768}
    assert "selector" not in status


@pytest.mark.parametrize(
    "garbage",
    ["Running", [], {"conditions": "Ready"}, {"conditions": [None, 3, {"type": "Ready"}]}],
)
def test_a_status_of_any_shape_is_replaced_not_a_crash(garbage: Any) -> None:
    verdict = read_deployment(deployment(**READY, readyReplicas=2))
    status = next_status(garbage, verdict, generation=2, selector="s", now=NOW)
    assert status is not None
    assert status["phase"] == "Running"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Progressing", "Degraded"]


def _model_status(
    current: dict[str, Any] | None, verdict: Verdict, generation: int, now: datetime
) -> dict[str, Any] | None:
    """`next_status` as the first releases computed it, through `WorkloadStatus` models: the
    oracle its wire-form build is held to."""
    before = WorkloadStatus.model_validate(current or {})
    conditions = before.conditions
    for ctype, holds in (
        ("Ready", verdict.phase is WorkloadPhase.RUNNING),
        ("Progressing", verdict.phase is WorkloadPhase.PROGRESSING),
        ("Degraded", verdict.phase in (WorkloadPhase.DEGRADED, WorkloadPhase.FAILED)),
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
        selector="s",
        observed_generation=generation,
        conditions=conditions,
        last_updated=before.last_updated,
    )
    if after == before:
        return None
    others = {key: value for key, value in (current or {}).items() if key == "lastScaling"}
    return {**others, **after.model_copy(update={"last_updated": now}).to_wire()}


_VERDICTS = st.builds(
    Verdict,
    phase=st.sampled_from(WorkloadPhase),
    reason=st.sampled_from(["DeploymentPending", "RollingOut", "DeploymentAvailable"]),
    message=st.sampled_from(["", "Deployment users: 1 of 2 replicas available"]),
    replicas=st.integers(0, 3),
    ready_replicas=st.integers(0, 3),
)


@given(
    steps=st.lists(
        st.tuples(
            _VERDICTS,
            st.integers(1, 3),
            st.integers(0, 10**6).map(lambda us: NOW + timedelta(seconds=us / 7)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_wire_build_writes_what_the_models_wrote(
    steps: list[tuple[Verdict, int, datetime]],
) -> None:
    """Over any run of verdicts, each fed the status the previous write left, the same
    writes, the same skipped ones, and transition times that move with the status alone."""
    current: dict[str, Any] | None = {"lastScaling": {"result": 2}}
    for verdict, generation, now in steps:
        written = next_status(current, verdict, generation=generation, selector="s", now=now)
        assert written == _model_status(current, verdict, generation, now)
        current = written or current
