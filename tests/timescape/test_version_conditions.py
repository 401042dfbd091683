"""A version's Ready, Progressing and Degraded conditions through its rollout."""

from __future__ import annotations

from dataclasses import replace

from gati_contracts.conditions import Condition, ConditionStatus, find_condition
from gati_contracts.version import VersionPhase
from gati_timescape.state import VersionState
from gati_timescape.version_conditions import version_conditions
from timescape.helpers import at

P = VersionPhase
STEP_2 = VersionState(phase=P.PROGRESSING, current_step=1, current_weight=50, reason="StepStarted")


def summary(conditions: list[Condition]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in conditions}


def test_a_rollout_in_progress_is_progressing_not_ready_not_degraded() -> None:
    conditions = version_conditions(STEP_2, [], generation=3, now=at(0))
    assert summary(conditions) == {
        "Ready": ("False", "Progressing"),
        "Progressing": ("True", "StepStarted"),
        "Degraded": ("False", "Healthy"),
    }
    assert {c.observed_generation for c in conditions} == {3}
    assert find_condition(conditions, "Progressing") == Condition(
        type="Progressing",
        status=ConditionStatus.TRUE,
        last_transition_time=at(0),
        reason="StepStarted",
        message="step 2 at 50 %",
        observed_generation=3,
    )


def test_a_pause_makes_progress_unknown_and_a_failed_check_degrades() -> None:
    paused = version_conditions(replace(STEP_2, paused=True), [], generation=1, now=at(0))
    assert summary(paused)["Progressing"] == ("Unknown", "Paused")
    failing = version_conditions(replace(STEP_2, failed_checks=1), [], generation=1, now=at(0))
    assert summary(failing)["Degraded"] == ("True", "HealthCheckFailed")


def test_completion_makes_the_version_ready_and_moves_only_changed_transitions() -> None:
    before = version_conditions(STEP_2, [], generation=1, now=at(0))
    active = VersionState(phase=P.ACTIVE, current_weight=100, reason="RolloutComplete")
    after = version_conditions(active, before, generation=1, now=at(60))
    assert summary(after) == {
        "Ready": ("True", "RolloutComplete"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "Healthy"),
    }
    times = {c.type: c.last_transition_time for c in after}
    assert times == {"Ready": at(60), "Progressing": at(60), "Degraded": at(0)}


def test_a_rollback_degrades_with_the_failed_gates_reason() -> None:
    rolled = VersionState(phase=P.ROLLED_BACK, reason="LowSuccessRate")
    conditions = version_conditions(rolled, [], generation=2, now=at(0))
    assert summary(conditions) == {
        "Ready": ("False", "RolledBack"),
        "Progressing": ("False", "LowSuccessRate"),
        "Degraded": ("True", "LowSuccessRate"),
    }
    retried = replace(rolled, phase=P.PENDING, reason="Retried")
    again = version_conditions(retried, conditions, generation=2, now=at(5))
    assert summary(again)["Degraded"] == ("False", "Healthy")
    assert summary(again)["Progressing"] == ("True", "Retried")


def test_a_pass_that_changed_no_phase_keeps_the_reasons_it_found() -> None:
    rolled = VersionState(phase=P.ROLLED_BACK, reason="HighLatency")
    written = version_conditions(rolled, [], generation=2, now=at(0))
    # Read back after a restart: status carries no reason, the conditions do.
    reread = version_conditions(replace(rolled, reason=""), written, generation=3, now=at(9))
    assert summary(reread) == summary(written)
    assert [c.last_transition_time for c in reread] == [at(0)] * 3
    assert {c.observed_generation for c in reread} == {3}
