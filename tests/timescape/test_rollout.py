"""Every transition of the rollout state machine, its action contract and its timing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.events import OutcomeResult
from gati_contracts.rollout import RolloutAnalysis, RolloutSpec, RolloutStep
from gati_contracts.version import VersionPhase
from gati_timescape.actions import ActionAnnotationError, ActionRequest, RolloutAction
from gati_timescape.health import HealthReading
from gati_timescape.rollout import evaluate, refuse_action, step_deadline
from gati_timescape.state import Decision, VersionState
from timescape.helpers import FAILING, HEALTHY, T0, UNREADY, at

P = VersionPhase
A = RolloutAction
DEFAULT = RolloutSpec()  # 10 % 5m, 50 % 10m, 100 %; checks every 1m; threshold 1
MANUAL = RolloutSpec(steps=[RolloutStep(weight=20), RolloutStep(weight=100)])
PATIENT = RolloutSpec(analysis=RolloutAnalysis(failure_threshold=3))

PENDING = VersionState()
WAITING = VersionState(last_check_at=T0)
"""Pending since T0: the first gate's checks fall due at T0+1m, T0+2m…"""


def step(index: int, weight: int, since: float = 0, **changes: object) -> VersionState:
    state = VersionState(
        phase=P.PROGRESSING,
        current_step=index,
        current_weight=weight,
        step_started_at=at(since),
        last_check_at=at(since),
    )
    return replace(state, **changes)  # type: ignore[arg-type]


ROLLED_BACK = replace(step(1, 50), phase=P.ROLLED_BACK, current_weight=0, reason="NotReady")
ACTIVE = VersionState(phase=P.ACTIVE, current_step=2, current_weight=100, activated_at=T0)


@dataclass(frozen=True)
class Case:
    name: str
    state: VersionState
    now: float
    health: HealthReading = HEALTHY
    action: RolloutAction | None = None
    spec: RolloutSpec = field(default_factory=lambda: DEFAULT)
    has_stable: bool = True
    # expected
    phase: VersionPhase = P.PROGRESSING
    weight: int | None = None
    current_step: int | None = None
    reasons: tuple[str, ...] = ()
    wake: float | None = None
    started: float | None = None


CASES = [
    Case("gate passes: first step", PENDING, 0, phase=P.PROGRESSING, weight=10, current_step=0,
         reasons=("StepStarted",), wake=60, started=0),
    Case("first version goes straight to 100", PENDING, 0, has_stable=False, phase=P.ACTIVE,
         weight=100, current_step=2, reasons=("FirstVersion",), started=0),
    Case("pods starting: wait for the gate", PENDING, 0, UNREADY, phase=P.PENDING, weight=0,
         wake=60),
    Case("pods ready before the first check", WAITING, 30, phase=P.PROGRESSING, weight=10,
         reasons=("StepStarted",), started=30, wake=90),
    Case("pods never ready: rolled back at the first check", WAITING, 60, UNREADY,
         phase=P.ROLLED_BACK, weight=0, reasons=("NotReady",)),
    Case("step 1 within its pause", step(0, 10), 240, weight=10, current_step=0, wake=300),
    Case("step 1 pause over", step(0, 10), 300, weight=50, current_step=1,
         reasons=("StepStarted",), started=300, wake=360),
    Case("step 2 pause over: complete", step(1, 50, 300), 900, phase=P.ACTIVE, weight=100,
         current_step=2, reasons=("RolloutComplete",), started=900),
    Case("late evaluation keeps the schedule", step(0, 10), 420, weight=50, started=300,
         reasons=("StepStarted",), wake=480),
    Case("fails in step 1", step(0, 10), 60, FAILING, phase=P.ROLLED_BACK, weight=0,
         current_step=0, reasons=("LowSuccessRate",)),
    Case("fails in step 2", step(1, 50, 300), 360, UNREADY, phase=P.ROLLED_BACK, weight=0,
         current_step=1, reasons=("NotReady",)),
    Case("failure not yet due is not counted", step(0, 10), 59, FAILING, weight=10, wake=60),
    Case("threshold 3: first failure", step(0, 10), 60, FAILING, spec=PATIENT, weight=10,
         reasons=("LowSuccessRate",), wake=120),
    Case("threshold 3: third failure", step(0, 10, failed_checks=2), 60, FAILING, spec=PATIENT,
         phase=P.ROLLED_BACK, weight=0, reasons=("LowSuccessRate",)),
    Case("failing at the deadline holds the step", step(0, 10), 300, FAILING, spec=PATIENT,
         weight=10, current_step=0, reasons=("LowSuccessRate",), wake=360),
    Case("healthy after a failure past the deadline: next step starts now",
         step(0, 10, last_check_at=at(300), failed_checks=1), 330, spec=PATIENT, weight=50,
         reasons=("StepStarted",), started=330, wake=390),
    Case("step without pause waits", step(0, 20), 10**6, spec=MANUAL, weight=20, current_step=0,
         wake=10**6 - 10**6 % 60 + 60),
    Case("promote ends a step without pause", step(0, 20), 90, action=A.PROMOTE, spec=MANUAL,
         phase=P.ACTIVE, weight=100, reasons=("Promoted", "RolloutComplete"), started=90),
    Case("promote ends a pause early", step(0, 10), 90, action=A.PROMOTE, weight=50,
         current_step=1, reasons=("Promoted", "StepStarted"), started=90, wake=150),
    Case("promote while unhealthy is refused", step(0, 10), 30, FAILING, action=A.PROMOTE,
         weight=10, current_step=0, reasons=("Promoted", "PromoteRefused"), wake=60),
    Case("promote lifts a pause", step(0, 10, paused=True), 90, action=A.PROMOTE, weight=50,
         reasons=("Promoted", "StepStarted"), wake=150),
    Case("pause holds past the deadline", step(0, 10), 120, action=A.PAUSE, weight=10,
         reasons=("Paused",), wake=180),
    Case("paused past the deadline", step(0, 10, paused=True), 900, weight=10, wake=960),
    Case("paused and failing still rolls back", step(0, 10, paused=True), 60, UNREADY,
         phase=P.ROLLED_BACK, weight=0, reasons=("NotReady",)),
    Case("resume restarts the pause", step(0, 10, paused=True), 900, action=A.RESUME, weight=10,
         reasons=("Resumed",), started=900, wake=960),
    Case("resume when not paused", step(0, 10), 30, action=A.RESUME, weight=10,
         reasons=("ActionNotApplicable",), wake=60),
    Case("pause twice", step(0, 10, paused=True), 30, action=A.PAUSE, weight=10,
         reasons=("ActionNotApplicable",), wake=60),
    Case("abort in step 1", step(0, 10), 30, action=A.ABORT, phase=P.ROLLED_BACK, weight=0,
         reasons=("Aborted",)),
    Case("abort before the first step", WAITING, 30, UNREADY, action=A.ABORT,
         phase=P.ROLLED_BACK, weight=0, reasons=("Aborted",)),
    Case("abort an active version", ACTIVE, 30, action=A.ABORT, phase=P.ACTIVE, weight=100,
         reasons=("ActionNotApplicable",)),
    Case("retry a rolled-back version", ROLLED_BACK, 30, action=A.RETRY, weight=10,
         current_step=0, reasons=("Retried", "StepStarted"), started=30, wake=90),
    Case("retry while pods still fail", ROLLED_BACK, 30, UNREADY, action=A.RETRY,
         phase=P.PENDING, weight=0, reasons=("Retried",), wake=90),
    Case("retry an in-flight version", step(0, 10), 30, action=A.RETRY, weight=10,
         reasons=("ActionNotApplicable",), wake=60),
    Case("rolled back stays so", ROLLED_BACK, 10**5, phase=P.ROLLED_BACK, weight=0),
    Case("active stays so", ACTIVE, 10**5, phase=P.ACTIVE, weight=100),
    Case("stable version deleted mid-rollout", step(0, 10), 30, has_stable=False,
         phase=P.ACTIVE, weight=100, reasons=("StableVersionGone",), started=30),
    Case("steps shortened mid-rollout", step(3, 70), 30, phase=P.ACTIVE, weight=100,
         reasons=("RolloutComplete",)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_transition(case: Case) -> None:
    action = None if case.action is None else ActionRequest(case.action, "nonce-1")
    decision = evaluate(
        case.state, case.spec, case.health, at(case.now), has_stable=case.has_stable,
        action=action,
    )  # fmt: skip
    state = decision.state
    assert state.phase is case.phase
    if case.weight is not None:
        assert state.current_weight == case.weight
    if case.current_step is not None:
        assert state.current_step == case.current_step
    assert tuple(o.reason for o in decision.outcomes) == case.reasons
    assert decision.wake_at == (None if case.wake is None else at(case.wake))
    if case.started is not None:
        assert state.step_started_at == at(case.started)
        if state.phase is P.ACTIVE:
            assert state.activated_at == at(case.started)
    if case.action is not None:
        assert state.handled_action == "nonce-1"
    if state.phase is P.ROLLED_BACK and case.state.phase is not P.ROLLED_BACK:
        assert decision.outcomes[-1].action == "rolled-back"
        assert state.reason == decision.outcomes[-1].reason


def test_an_action_is_taken_once_per_nonce() -> None:
    promote = ActionRequest(A.PROMOTE, "n1")
    first = evaluate(step(0, 10), DEFAULT, HEALTHY, at(10), has_stable=True, action=promote)
    again = evaluate(first.state, DEFAULT, HEALTHY, at(20), has_stable=True, action=promote)
    assert (first.state.current_step, again.state.current_step) == (1, 1)
    assert again.outcomes == ()
    other = replace(promote, nonce="n2")
    third = evaluate(again.state, DEFAULT, HEALTHY, at(30), has_stable=True, action=other)
    assert third.state.phase is P.ACTIVE


def test_a_refused_action_is_recorded_once() -> None:
    decision = refuse_action(step(0, 10), ActionAnnotationError("bad action", "n9"))
    assert decision.state.handled_action == "n9"
    assert [(o.result, o.reason) for o in decision.outcomes] == [
        (OutcomeResult.FAILED, "InvalidRolloutAction")
    ]


def test_failure_threshold_counts_consecutive_checks_only() -> None:
    state = step(0, 10)
    for second, health in [(60, FAILING), (120, FAILING), (180, HEALTHY), (240, FAILING)]:
        state = evaluate(state, PATIENT, health, at(second), has_stable=True).state
    assert (state.phase, state.failed_checks) == (P.PROGRESSING, 1)


def test_many_evaluations_within_an_interval_count_one_failure() -> None:
    state = step(0, 10)
    for second in range(60, 120, 7):
        state = evaluate(state, PATIENT, FAILING, at(second), has_stable=True).state
    assert (state.failed_checks, state.last_check_at) == (1, at(60))


def test_deadline_is_the_step_start_plus_its_pause() -> None:
    assert step_deadline(step(1, 50, 300), DEFAULT) == at(900)
    assert step_deadline(step(0, 20), MANUAL) is None
    assert step_deadline(WAITING, DEFAULT) is None


def serve(
    state: VersionState,
    horizon: datetime,
    *,
    extra: list[datetime],
    down: tuple[datetime, datetime] | None = None,
) -> VersionState:
    """What a service does: evaluate at every wake-up and at `extra` times (other events),
    except while it is down; a wake-up missed while down happens at the restart."""
    pending = sorted(extra)
    wake: datetime | None = T0
    clock = T0
    while True:
        candidates = [t for t in (wake, *pending[:1]) if t is not None and t <= horizon]
        if not candidates:
            return state
        now = clock = max(clock, min(candidates))
        while pending and pending[0] <= now:
            pending.pop(0)
        if down is not None and down[0] <= now < down[1]:
            now = clock = down[1]
            pending = [t for t in pending if t > now]
        decision: Decision = evaluate(state, DEFAULT, HEALTHY, now, has_stable=True)
        state, wake = decision.state, decision.wake_at


offsets = st.integers(min_value=1, max_value=40 * 60).map(lambda s: at(s))
"""From 1 s: the service saw the version at T0, so any outage is a restart mid-rollout."""


@given(
    extra=st.lists(offsets, max_size=20),
    down_start=offsets,
    down_for=st.integers(min_value=1, max_value=30 * 60),
)
def test_restart_mid_pause_finishes_on_time(
    extra: list[datetime], down_start: datetime, down_for: int
) -> None:
    horizon = at(3600)
    on_time = serve(PENDING, horizon, extra=[])
    assert (on_time.phase, on_time.activated_at) == (P.ACTIVE, at(900))
    down = (down_start, down_start + timedelta(seconds=down_for))
    assert serve(PENDING, horizon, extra=extra, down=down) == on_time


def test_evaluated_once_late_or_at_every_wake_up_gives_the_same_schedule() -> None:
    started = evaluate(PENDING, DEFAULT, HEALTHY, T0, has_stable=True).state
    late = evaluate(started, DEFAULT, HEALTHY, at(700), has_stable=True)
    timely = serve(PENDING, at(700), extra=[])
    assert late.state == timely
    assert late.state.step_started_at == at(300)


@pytest.mark.parametrize("interval", ["0", "0.5s", "100ms"])
def test_an_interval_under_a_second_is_refused_by_field(interval: str) -> None:
    spec = RolloutSpec(analysis=RolloutAnalysis(interval=interval))
    with pytest.raises(ValueError, match=r"rollout\.analysis\.interval must be at least 1s"):
        evaluate(step(0, 10), spec, HEALTHY, at(10), has_stable=True)
