"""What the holder of a handler's lease does about it, decided from what it read: no I/O.

The service reads (the handler, its Deployment's `/scale`, the traffic window its tail folds),
calls these functions, and then writes what they return (`/scale`, `status.lastScaling`, the
HPA, outcomes on `gati.status.>`); `replay --service scaler` calls the same functions over what
the stream recorded. So which mode is in effect, when a decision is written and when it is
recorded, and when an HPA is applied, refused or deleted live once, and a replay decides what
the service would have.

Every step returns the `Holding` as it stands once its writes succeeded: the service keeps it
only then, so a failed write is decided again on the next tick or event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from gati_contracts.conditions import VERSION_DECOMMISSIONED
from gati_contracts.events import OutcomeReport, OutcomeResult
from gati_contracts.handler import GatiHandler
from gati_contracts.scaling import ScalingMode, ScalingRecord, ScalingSpec
from gati_scaler.decision import SCALE_UP_PERIOD_SECONDS, decide
from gati_scaler.hpa import HpaError, render_hpa
from gati_scaler.record import ScalingDecision
from gati_scaler.windows import TrafficWindow

SCALED_MODES: Final = frozenset({ScalingMode.HPA, ScalingMode.EVENTS})


@dataclass(frozen=True)
class Holding:
    """What the holder remembers of a handler between decisions; forgotten with the lease."""

    applied: tuple[ScalingDecision, ...] = ()
    """Decisions written to /scale within the scale-up period, for the scale-up policy."""
    recorded: tuple[int, str] | None = None
    """(desired, reason) last recorded, so an unchanged decision is not written again."""
    hpa_generation: int | None = None
    """The generation whose HPA was applied."""
    hpa_name: str | None = None
    """The name of the HPA applied, so a replay can say which one leaving mode hpa deletes."""
    hpa_cleared: bool = False
    """Out of mode hpa and this handler's HPA deleted: nothing to delete until it is back."""
    failed_generation: int | None = None
    """The generation whose HPA was refused as written: refused once, not once per tick."""


def retired(handler: GatiHandler) -> bool:
    """Timescape retired the handler's version (the reconciler says so in its conditions):
    scaling it would bring back replicas a decommission removed."""
    status = handler.status
    return status is not None and any(
        condition.reason == VERSION_DECOMMISSIONED for condition in status.conditions
    )


def scaled(handler: GatiHandler) -> bool:
    """The scaler has something to do for the handler, so a replica takes its lease."""
    return handler.spec.scaling.mode in SCALED_MODES and not retired(handler)


def seed(last: ScalingRecord | None) -> Holding:
    """A new holder starts from the predecessor's last write, so the scale-up policy still
    counts it after a takeover."""
    if last is None or last.desired_replicas == last.current_replicas:
        return Holding()
    return Holding(applied=(ScalingDecision.from_json(last.to_wire()),))


@dataclass(frozen=True)
class ModePlan:
    mode: ScalingMode
    """The mode in effect: `none` for a retired handler, whose Deployment stays as timescape
    left it."""
    clear_hpa: bool
    """Delete the HPA the handler owns (it left mode hpa)."""
    holding: Holding


def plan_mode(handler: GatiHandler, holding: Holding) -> ModePlan:
    mode = ScalingMode.NONE if retired(handler) else handler.spec.scaling.mode
    if mode is ScalingMode.HPA:
        return ModePlan(mode, False, replace(holding, hpa_cleared=False))
    if holding.hpa_cleared:
        return ModePlan(mode, False, holding)
    cleared = replace(holding, hpa_cleared=True, hpa_generation=None, hpa_name=None)
    return ModePlan(mode, True, cleared)


def hpa_deleted(handler: GatiHandler, name: str) -> OutcomeReport:
    return OutcomeReport(
        "hpa-deleted",
        OutcomeResult.SUCCEEDED,
        "HpaDeleted",
        f"spec.scaling.mode is {handler.spec.scaling.mode.value}",
        {"hpa": name},
    )


def hpa_due(handler: GatiHandler, holding: Holding) -> bool:
    """The handler's generation has neither an HPA applied nor one refused yet."""
    return handler.metadata.generation not in (holding.hpa_generation, holding.failed_generation)


@dataclass(frozen=True)
class HpaPlan:
    body: dict[str, Any] | None
    """The apply body; None when the spec cannot have an HPA (`report` says why)."""
    report: OutcomeReport
    """Published once the apply succeeded, or the refusal."""
    holding: Holding


def plan_hpa(handler: GatiHandler, deployment: str, holding: Holding) -> HpaPlan:
    """The HPA scaling the handler's Deployment `deployment`, named after it."""
    generation = handler.metadata.generation
    try:
        body = render_hpa(handler, deployment)
    except HpaError as error:
        report = OutcomeReport("hpa", OutcomeResult.FAILED, "InvalidSpec", str(error))
        return HpaPlan(None, report, replace(holding, failed_generation=generation))
    report = OutcomeReport(
        "hpa-applied",
        OutcomeResult.SUCCEEDED,
        "HpaApplied",
        f"HorizontalPodAutoscaler {deployment} follows spec.scaling",
        {"hpa": deployment},
    )
    return HpaPlan(body, report, replace(holding, hpa_generation=generation, hpa_name=deployment))


def hpa_rejected(handler: GatiHandler, holding: Holding, error: str) -> HpaPlan:
    """The API server refused the HPA as written (422, 403): reported once per generation."""
    report = OutcomeReport("hpa", OutcomeResult.FAILED, "HpaRejected", error)
    return HpaPlan(None, report, replace(holding, failed_generation=handler.metadata.generation))


@dataclass(frozen=True)
class ScalePlan:
    decision: ScalingDecision
    write: bool
    """Write `decision.desired_replicas` to the Deployment's /scale."""
    report: OutcomeReport | None
    """Record the decision in `status.lastScaling` (`report.details`) and publish it: when it
    wrote, or its replicas or reason changed since the last one recorded."""
    holding: Holding


def plan_scale(
    spec: ScalingSpec, current: int, window: TrafficWindow, now: datetime, holding: Holding
) -> ScalePlan:
    """Raises `ValueError` naming the field when the spec cannot be decided on (`decide`)."""
    horizon = now - timedelta(seconds=SCALE_UP_PERIOD_SECONDS)
    applied = tuple(d for d in holding.applied if d.decided_at > horizon)
    decision = decide(spec, current, window, now, applied)
    changed = decision.changed
    if changed:
        applied += (decision,)
    recorded = (decision.desired_replicas, decision.reason.value)
    if not changed and recorded == holding.recorded:
        return ScalePlan(decision, False, None, replace(holding, applied=applied))
    report = OutcomeReport(
        "scaled" if changed else "scale-decided",
        OutcomeResult.SUCCEEDED if changed else OutcomeResult.SKIPPED,
        decision.reason.value,
        decision.message,
        decision.to_json(),
    )
    recording = replace(holding, applied=applied, recorded=recorded)
    return ScalePlan(decision, changed, report, recording)
