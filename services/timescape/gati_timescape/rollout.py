"""The progressive rollout of one version, as a pure state machine over `VersionState`.

    evaluate(state, spec, health, now, has_stable=…, action=…) -> Decision

Phases of the target: `Pending` (deployed, waiting for the health gate before the first step)
→ `Progressing` (step `current_step` at its weight) → `Active` on reaching the last step, or
`RolledBack` after `failureThreshold` consecutive failed checks or an `abort`. A first version
of a path (`has_stable=False`) has nobody to share traffic with, so it goes from the gate
straight to 100 %, as Flagger does on a first deployment; so does a target whose stable version
was deleted mid-rollout, rather than serve its step's share of a path nobody else serves.

Timing is data, never a clock read or a sleep:
- A step ends at `step_started_at + pause` (the durable deadline: a restarted service finishes
  on time). A step without pause waits for `promote`. A step ends only with a passing check:
  that is the gate "before each step".
- Checks fall due every analysis interval, counted from the start of the step
  (`last_check_at` holds the last boundary counted), so a failure is counted once per interval
  however often the service evaluates. A passing reading may end a step at any evaluation.
- A step that ends late (the service was down at its deadline) starts the next one at the
  deadline, unless a check failed since: so evaluating once late or at every wake-up gives the
  same schedule. Each evaluation takes at most one step; `wake_at` in the past means "again".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from gati_contracts.durations import parse_duration
from gati_contracts.events import OutcomeReport, OutcomeResult
from gati_contracts.rollout import RolloutSpec
from gati_contracts.version import VersionPhase
from gati_timescape.actions import ActionAnnotationError, ActionRequest, RolloutAction
from gati_timescape.health import HealthReading, judge
from gati_timescape.state import IN_FLIGHT, Decision, VersionState

Phase = VersionPhase
Result = OutcomeResult


def evaluate(
    state: VersionState,
    spec: RolloutSpec,
    health: HealthReading,
    now: datetime,
    *,
    has_stable: bool,
    action: ActionRequest | None = None,
) -> Decision:
    """Take `action` if it is new, then move the rollout as far as `now` and `health` allow."""
    outcomes: list[OutcomeReport] = []
    promoted = False
    if action is not None and action.nonce != state.handled_action:
        state, outcome = _take(state, action, now)
        outcomes.append(outcome)
        promoted = action.action is RolloutAction.PROMOTE and outcome.result is Result.SUCCEEDED
    if state.phase not in IN_FLIGHT:
        return Decision(state, tuple(outcomes))
    decision = _gate(state, spec, health, now, has_stable=has_stable, promoted=promoted)
    return replace(decision, outcomes=(*outcomes, *decision.outcomes))


def refuse_action(state: VersionState, error: ActionAnnotationError) -> Decision:
    """Record a malformed request as handled, so it is reported once and not on every event."""
    outcome = OutcomeReport("rollout-action", Result.FAILED, "InvalidRolloutAction", str(error))
    return Decision(replace(state, handled_action=error.nonce), (outcome,))


def rollback(state: VersionState, reason: str, message: str) -> Decision:
    """Weight 0 for the version; the routing table gives the stable version the rest."""
    rolled = replace(state, phase=Phase.ROLLED_BACK, current_weight=0, paused=False, reason=reason)
    return Decision(rolled, (OutcomeReport("rolled-back", Result.SUCCEEDED, reason, message),))


def step_deadline(state: VersionState, spec: RolloutSpec) -> datetime | None:
    """When the current step's pause ends; None before the first step or when it waits for
    `promote`. A step beyond the last (steps edited mid-rollout) ends at once: it completes."""
    if state.phase is not Phase.PROGRESSING or state.step_started_at is None:
        return None
    if state.current_step >= len(spec.steps) - 1:
        return state.step_started_at
    pause = spec.steps[state.current_step].pause
    return None if pause is None else state.step_started_at + parse_duration(pause)


MIN_INTERVAL: Final = timedelta(seconds=1)


def check_interval(spec: RolloutSpec) -> timedelta:
    """The analysis interval, refused below a second: the schema admits `0`, but checks due
    continuously would count every evaluation as a failed check."""
    interval = parse_duration(spec.analysis.interval)
    if interval < MIN_INTERVAL:
        raise ValueError(
            f"rollout.analysis.interval must be at least 1s, such as 30s or 1m "
            f"(got {spec.analysis.interval!r})"
        )
    return interval


def _take(
    state: VersionState, request: ActionRequest, now: datetime
) -> tuple[VersionState, OutcomeReport]:
    state = replace(state, handled_action=request.nonce)
    action, in_flight = request.action, state.phase in IN_FLIGHT
    if action is RolloutAction.PROMOTE and in_flight:
        return replace(state, paused=False), _done("Promoted", "promote requested")
    if action is RolloutAction.PAUSE and in_flight and not state.paused:
        return replace(state, paused=True), _done("Paused", "held until resume or promote")
    if action is RolloutAction.RESUME and in_flight and state.paused:
        started = None if state.step_started_at is None else now
        resumed = replace(state, paused=False, step_started_at=started)
        return resumed, _done("Resumed", "the current step's pause starts over")
    if action is RolloutAction.ABORT and in_flight:
        decision = rollback(state, "Aborted", "aborted by the operator")
        return decision.state, decision.outcomes[0]
    if action is RolloutAction.RETRY and state.phase in {Phase.ROLLED_BACK, Phase.FAILED}:
        restarted = replace(
            state,
            phase=Phase.PENDING,
            current_step=0,
            current_weight=0,
            step_started_at=None,
            last_check_at=None,
            failed_checks=0,
            paused=False,
            reason="Retried",
        )
        return restarted, _done("Retried", "the rollout starts again from the first gate")
    state_text = f"{state.phase.value}{' and paused' if state.paused else ''}"
    return state, OutcomeReport(
        "rollout-action",
        Result.SKIPPED,
        "ActionNotApplicable",
        f"{action.value} does not apply to a version that is {state_text}",
    )


def _done(reason: str, message: str) -> OutcomeReport:
    return OutcomeReport("rollout-action", Result.SUCCEEDED, reason, message)


def _gate(
    state: VersionState,
    spec: RolloutSpec,
    health: HealthReading,
    now: datetime,
    *,
    has_stable: bool,
    promoted: bool,
) -> Decision:
    analysis = spec.analysis
    interval = check_interval(spec)
    last_check = state.last_check_at or now
    state = replace(state, last_check_at=last_check)
    verdict = judge(health, analysis)
    deadline = step_deadline(state, spec)
    time_is_up = (
        state.phase is Phase.PENDING or not has_stable or (deadline is not None and now >= deadline)
    )
    if verdict.healthy and (promoted or (time_is_up and not state.paused)):
        failed_since_deadline = (
            state.failed_checks > 0 and deadline is not None and last_check >= deadline
        )
        late = deadline is not None and deadline <= now and not promoted
        start = deadline if late and deadline is not None and not failed_since_deadline else now
        return _advance(state, spec, start, now, has_stable=has_stable)
    outcomes: list[OutcomeReport] = []
    if promoted:
        outcomes.append(
            OutcomeReport("rollout-action", Result.FAILED, "PromoteRefused", verdict.message)
        )
    if now >= last_check + interval:
        boundary = last_check + interval * ((now - last_check) // interval)
        failed = 0 if verdict.healthy else state.failed_checks + 1
        state = replace(state, last_check_at=boundary, failed_checks=failed)
        if not verdict.healthy:
            threshold = analysis.failure_threshold
            message = f"{verdict.message} (failed check {failed} of {threshold})"
            if failed >= threshold:
                rolled = rollback(state, verdict.reason, message)
                return replace(rolled, outcomes=(*outcomes, *rolled.outcomes))
            outcomes.append(OutcomeReport("health-check", Result.FAILED, verdict.reason, message))
    return Decision(state, tuple(outcomes), _wake(state, deadline, interval, now))


def _wake(
    state: VersionState, deadline: datetime | None, interval: timedelta, now: datetime
) -> datetime:
    """The next check, or the deadline if it comes first and is still ahead (a deadline already
    passed is waiting on a check, not on time). A time in the past asks to evaluate again."""
    assert state.last_check_at is not None  # set by every in-flight evaluation
    next_check = state.last_check_at + interval
    if deadline is None or state.paused or deadline <= now:
        return next_check
    return min(next_check, deadline)


def _advance(
    state: VersionState, spec: RolloutSpec, start: datetime, now: datetime, *, has_stable: bool
) -> Decision:
    """Enter the next step at `start`; this evaluation's passing reading counts as the check at
    the step's latest interval boundary, so one late evaluation equals many timely ones."""
    last = len(spec.steps) - 1
    step = 0 if state.phase is Phase.PENDING else state.current_step + 1
    if step >= last or not has_stable:
        active = replace(
            state,
            phase=Phase.ACTIVE,
            current_step=last,
            current_weight=100,
            step_started_at=start,
            last_check_at=start,
            failed_checks=0,
            paused=False,
            activated_at=start,
            reason=_completion(state, has_stable),
        )
        message = "serving 100 %" + ("" if has_stable else "; no active version to share with")
        return Decision(
            active, (OutcomeReport("activated", Result.SUCCEEDED, active.reason, message),)
        )
    weight = spec.steps[step].weight
    interval = check_interval(spec)
    progressing = replace(
        state,
        phase=Phase.PROGRESSING,
        current_step=step,
        current_weight=weight,
        step_started_at=start,
        last_check_at=start + interval * ((now - start) // interval),
        failed_checks=0,
        reason="StepStarted",
    )
    outcome = OutcomeReport(
        "rollout-step",
        Result.SUCCEEDED,
        "StepStarted",
        f"step {step + 1} of {last + 1}: weight {weight} %",
        {"step": step, "weight": weight},
    )
    deadline = step_deadline(progressing, spec)
    wake = start + interval * ((now - start) // interval + 1)
    return Decision(progressing, (outcome,), wake if deadline is None else min(wake, deadline))


def _completion(state: VersionState, has_stable: bool) -> str:
    if has_stable:
        return "RolloutComplete"
    return "FirstVersion" if state.phase is Phase.PENDING else "StableVersionGone"
