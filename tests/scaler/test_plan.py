"""What the lease holder does about a handler, without servers: the mode in effect, when a
decision is written and recorded, and an HPA applied, refused or deleted once per generation.
The service and `replay --service scaler` both act on these plans."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from contracts.samples import handler
from gati_contracts.conditions import VERSION_DECOMMISSIONED
from gati_contracts.events import OutcomeResult
from gati_contracts.handler import GatiHandler
from gati_contracts.scaling import ScalingMode
from gati_scaler.plan import (
    Holding,
    hpa_deleted,
    hpa_due,
    hpa_rejected,
    plan_hpa,
    plan_mode,
    plan_scale,
    scaled,
)
from scaler.test_hpa import CPU, UID
from scaler.traffic import at, events, steady, window_of

HPA = {"mode": "hpa", "minReplicas": 2, "maxReplicas": 5}


def gh(scaling: dict[str, Any], *, generation: int = 1, retired: bool = False) -> GatiHandler:
    raw = handler(scaling=scaling, resources=CPU)
    raw["metadata"] |= {"uid": UID, "generation": generation}
    if retired:
        condition = {
            "type": "Ready",
            "status": "False",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": VERSION_DECOMMISSIONED,
        }
        raw["status"] = {"conditions": [condition]}
    return GatiHandler.model_validate(raw)


def test_a_retired_handler_is_in_mode_none_and_needs_no_scaler() -> None:
    assert scaled(gh(HPA))
    assert scaled(gh({"mode": "events", "targetRequestsPerReplica": 5}))
    assert not scaled(gh({"mode": "none"}))
    retired = gh(HPA, retired=True)
    assert not scaled(retired)
    assert plan_mode(retired, Holding()).mode is ScalingMode.NONE


def test_leaving_mode_hpa_clears_the_hpa_once_and_coming_back_arms_it_again() -> None:
    applied = Holding(hpa_generation=1, hpa_name="users-v2")
    left = plan_mode(gh({"mode": "none"}), applied)
    assert left.clear_hpa
    assert (left.holding.hpa_generation, left.holding.hpa_name) == (None, None)
    assert not plan_mode(gh({"mode": "none"}), left.holding).clear_hpa
    back = plan_mode(gh(HPA), left.holding)
    assert (back.mode, back.clear_hpa, back.holding.hpa_cleared) == (ScalingMode.HPA, False, False)
    report = hpa_deleted(gh({"mode": "none"}), "users-v2")
    assert (report.action, report.message, report.details) == (
        "hpa-deleted",
        "spec.scaling.mode is none",
        {"hpa": "users-v2"},
    )


def test_an_hpa_is_applied_once_per_generation() -> None:
    plan = plan_hpa(gh(HPA), "users-v2", Holding())
    assert plan.body is not None
    assert plan.body["metadata"]["name"] == "users-v2"
    assert (plan.report.action, plan.report.details) == ("hpa-applied", {"hpa": "users-v2"})
    assert not hpa_due(gh(HPA), plan.holding)
    assert hpa_due(gh(HPA, generation=2), plan.holding)


def test_an_hpa_refused_as_written_is_reported_once_per_generation() -> None:
    no_request = gh(HPA).model_copy(deep=True)
    no_request.spec.resources = no_request.spec.resources.model_copy(update={"requests": {}})
    refused = plan_hpa(no_request, "users-v2", Holding())
    assert refused.body is None
    assert (refused.report.action, refused.report.result) == ("hpa", OutcomeResult.FAILED)
    assert refused.report.reason == "InvalidSpec"
    assert "spec.resources" in refused.report.message
    assert not hpa_due(no_request, refused.holding)
    rejected = hpa_rejected(gh(HPA, generation=3), Holding(), "422: maxReplicas too large")
    assert (rejected.report.reason, rejected.holding.failed_generation) == ("HpaRejected", 3)


def test_a_write_is_recorded_and_an_unchanged_decision_is_not_recorded_again() -> None:
    window = window_of(steady(0, 60, 50))  # 50 req/s at 10 per replica: 5 replicas
    first = plan_scale(events(), 1, window, at(60), Holding())
    assert first.write
    assert first.decision.desired_replicas == 5
    assert first.report is not None
    assert (first.report.action, first.report.result) == ("scaled", OutcomeResult.SUCCEEDED)
    assert first.report.details == first.decision.to_json()
    assert first.holding.applied == (first.decision,)
    assert first.holding.recorded == (5, "ScaledUp")
    same = plan_scale(events(), 5, window, at(60), first.holding)
    assert not same.write
    assert same.report is not None, "a new reason is recorded"
    assert (same.report.action, same.report.result) == ("scale-decided", OutcomeResult.SKIPPED)
    again = plan_scale(events(), 5, window, at(60), same.holding)
    assert (again.write, again.report) == (False, None)
    assert again.holding == same.holding
    # Another status writer dropped the record: the next decision is recorded again.
    forgotten = plan_scale(events(), 5, window, at(60), replace(same.holding, recorded=None))
    assert forgotten.report is not None


def test_writes_older_than_the_scale_up_period_leave_the_holding() -> None:
    window = window_of(steady(0, 60, 50))
    first = plan_scale(events(), 1, window, at(60), Holding())
    later = plan_scale(events(), 5, window, at(90), first.holding)
    assert later.holding.applied == ()
