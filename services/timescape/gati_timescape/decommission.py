"""When a draining version is removed, and how many removed records are kept.

A `Draining` version (weight 0) is decommissioned when all of these hold:
- its last `idleSamples` traffic samples, counted in `observedAt` order, showed no requests and
  nothing in flight;
- `graceSeconds` have passed since it started draining and since its last request;
- no pod is unavailable: a Deployment mid-rollout or crash-looping is not judged idle on the
  word of routers that could not reach it.
A request during `Draining` cancels the countdown: the idle count and the grace start over.
Samples before the newest one counted (`last_sample_at`) are late, and idle ones at that same
time redeliveries, and are ignored, so at-least-once delivery never counts a sample twice; a busy
one at that time (another router's) still cancels the countdown. No sample is no evidence: as for
the scaler, a router must report a zero-request window for a version to count as idle, so a
router that died does not get the versions it served removed.
`observe_traffic` counts every version's samples (traffic count, last traffic time), whatever
its phase; only a draining one can be decommissioned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from gati_contracts.events import OutcomeReport, OutcomeResult, TrafficSample
from gati_contracts.version import DecommissionSpec, VersionPhase
from gati_timescape.state import Decision, VersionState


def observe_traffic(
    state: VersionState,
    spec: DecommissionSpec,
    samples: Iterable[TrafficSample],
    *,
    unavailable_replicas: int,
    now: datetime,
) -> Decision:
    """Count `samples` (this version's, any order) and decide whether the version goes."""
    outcomes: list[OutcomeReport] = []
    for sample in sorted(samples, key=lambda s: s.observed_at):
        last = state.last_sample_at
        if last is not None and sample.observed_at <= last and _idle(sample):
            continue
        if last is not None and sample.observed_at < last:
            continue
        state, cancelled = _count(state, sample, fresh=last is None or sample.observed_at > last)
        if cancelled:
            outcomes.append(
                OutcomeReport(
                    "decommission",
                    OutcomeResult.SKIPPED,
                    "TrafficResumed",
                    f"{sample.requests} requests at {sample.observed_at.isoformat()}; the idle "
                    "count and grace start over",
                )
            )
    if state.phase is not VersionPhase.DRAINING or state.current_weight != 0:
        return Decision(state, tuple(outcomes))
    if state.draining_since is None:
        state = replace(state, draining_since=now)  # drained by an older build; grace from now
    assert state.draining_since is not None
    since = max(state.draining_since, state.last_traffic_at or state.draining_since)
    grace_ends = since + timedelta(seconds=spec.grace_seconds)
    if state.idle_samples < spec.idle_samples or unavailable_replicas > 0:
        return Decision(state, tuple(outcomes))
    if now < grace_ends:
        return Decision(state, tuple(outcomes), grace_ends)
    gone = replace(
        state,
        phase=VersionPhase.DECOMMISSIONED,
        decommissioned_at=now,
        reason="Idle",
    )
    message = (
        f"no requests in {state.idle_samples} samples and since {since.isoformat()}; "
        f"action {spec.action.value}"
    )
    outcome = OutcomeReport(
        "decommissioned", OutcomeResult.SUCCEEDED, "Idle", message, {"action": spec.action.value}
    )
    return Decision(gone, (*outcomes, outcome))


def _idle(sample: TrafficSample) -> bool:
    return sample.requests == 0 and sample.in_flight == 0


def _count(state: VersionState, sample: TrafficSample, *, fresh: bool) -> tuple[VersionState, bool]:
    """A busy sample as old as the newest counted may be another router's, or a redelivery: it
    still holds off decommission (the safe side) but adds to the traffic count only if fresh."""
    if _idle(sample):
        return replace(
            state, idle_samples=state.idle_samples + 1, last_sample_at=sample.observed_at
        ), False
    cancelled = state.phase is VersionPhase.DRAINING and state.idle_samples > 0
    busy = replace(
        state,
        idle_samples=0,
        last_sample_at=sample.observed_at,
        traffic_count=state.traffic_count + (sample.requests if fresh else 0),
        last_traffic_at=sample.observed_at,
    )
    return busy, cancelled


def records_to_delete(
    decommissioned: Sequence[tuple[str, datetime]], keep: int, in_use: Collection[str] = ()
) -> list[str]:
    """Names of the decommissioned records beyond the newest `keep`, as Knative bounds
    non-active revisions: the history stays readable without growing forever.

    A record `in_use` (its GatiHandler still exists) counts toward `keep` but is never deleted,
    as Knative never deletes a revision a route still names: it is what tells the reconciler
    not to deploy that handler again, and without it timescape would take the handler for a
    new version and roll it out.
    """
    if keep < 0:
        raise ValueError(f"retention must keep 0 or more decommissioned versions, got {keep}")
    newest_first = sorted(decommissioned, key=lambda r: (r[1], r[0]), reverse=True)
    return sorted(name for name, _ in newest_first[keep:] if name not in in_use)
