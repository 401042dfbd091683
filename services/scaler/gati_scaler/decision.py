"""How many replicas a handler in mode `events` should run: the HPA algorithm over request rates,
with Knative-style scale to zero and activation.

`decide` is a pure function of the spec, the current replica count, the traffic window, the
recent decisions that were applied and `now`, so two replicas given the same inputs decide the
same, and the whole table of behaviours is unit-tested without servers. In order:

1. No fresh samples: keep the current replicas (only the min/max bounds apply). Missing data
   never scales to zero; a router has to say "0 requests" for that.
2. `scaleToZero` and no requests nor in-flight ones for `idleSeconds`: zero. This wins over the
   stabilization window and over `minReplicas` (the floor while serving), as the spec says
   "remove every replica": nothing is left to serve.
3. At zero: stay while idle; on the first active sample wake to what the rate needs (at least
   one), within the scale-up policy.
4. Otherwise desired = ceil(current * (rate / current) / target) = ceil(rate / target), unless
   |rate / (current * target) - 1| ≤ 10 % (then no change, as the HPA's tolerance).
   Up: at most the scale-up policy allows (the HPA default: +4 pods or +100 % per 15 s, the
   larger). Down: not below the highest recommendation within
   `scaleDownStabilizationSeconds`.
5. Clamp to [max(1, minReplicas), maxReplicas]: the bounds override the policy, as the HPA's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import msgspec

from gati_contracts.scaling import ScalingMode, ScalingSpec
from gati_scaler.record import DecisionInputs, ScalingDecision, ScalingReason
from gati_scaler.windows import DEFAULT_WINDOW_SECONDS, TrafficWindow

TOLERANCE: Final = 0.1
SCALE_UP_PODS: Final = 4
SCALE_UP_PERCENT: Final = 100
SCALE_UP_PERIOD_SECONDS: Final = 15
_CEIL_SLACK: Final = 1e-9
"""So that 3 * 50 req/s / 50 is 3 replicas, not 4 through float rounding."""
_SATURATED: Final = 2**31 - 1
"""The largest replica count the scale subresource takes (int32)."""


def decide(
    spec: ScalingSpec,
    current: int,
    window: TrafficWindow,
    now: datetime,
    applied: Sequence[ScalingDecision] = (),
) -> ScalingDecision:
    """The replicas to run now; `applied` are recent decisions that were written to `/scale`
    (the service's own, or replayed from `gati.status`), which bound the scale-up rate.

    Raises `ValueError` naming the field when the spec is not in mode `events`.
    """
    if spec.mode is not ScalingMode.EVENTS or spec.target_requests_per_replica is None:
        raise ValueError(
            "spec.scaling.mode must be events with targetRequestsPerReplica set for the scaler "
            f"to decide replicas (mode is {spec.mode.value})"
        )
    if current < 0:
        raise ValueError(f"current replicas must not be negative, not {current}")
    target = spec.target_requests_per_replica
    floor, ceiling = max(1, spec.min_replicas), spec.max_replicas
    rate, in_flight = window.rate(now), window.in_flight(now)
    samples, idle = window.sample_count(now), window.idle_seconds(now)
    inputs = DecisionInputs(
        request_rate=rate,
        in_flight=in_flight,
        samples=samples,
        window_seconds=window.window_seconds,
        idle_seconds=idle,
        target_requests_per_replica=target,
        min_replicas=spec.min_replicas,
        max_replicas=ceiling,
        scale_to_zero=spec.scale_to_zero,
    )

    def result(
        desired: int, reason: ScalingReason, message: str, **more: int | float
    ) -> ScalingDecision:
        bounded = min(max(desired, floor), ceiling)
        if bounded != desired:
            at_min = bounded > desired
            reason = ScalingReason.AT_MINIMUM if at_min else ScalingReason.AT_MAXIMUM
            bound = "minReplicas" if at_min else "maxReplicas"
            message = f"{message}; held at {bound} {bounded}"
        return ScalingDecision(
            decided_at=now,
            current_replicas=current,
            desired_replicas=bounded,
            reason=reason,
            message=message,
            inputs=_with(inputs, **more),
        )

    if samples == 0:
        if current == 0 and spec.scale_to_zero:
            return _at_zero(
                now, inputs, ScalingReason.NO_FRESH_SAMPLES, "no samples; stays at zero"
            )
        return result(
            current, ScalingReason.NO_FRESH_SAMPLES, "no samples in the window; keeping replicas"
        )
    active = rate > 0 or in_flight > 0
    if spec.scale_to_zero and not active and idle >= spec.idle_seconds:
        reason = ScalingReason.IDLE if current == 0 else ScalingReason.IDLE_SCALED_TO_ZERO
        return _at_zero(now, inputs, reason, f"no requests for {idle:.0f}s", current)
    recommendation = _replicas_for(rate / target)
    if current == 0:
        if not active:
            if spec.scale_to_zero:
                return _at_zero(now, inputs, ScalingReason.IDLE, "no requests; stays at zero")
            return result(0, ScalingReason.AT_MINIMUM, "at zero without scaleToZero")
        limit = scale_up_limit(0, applied, now)
        return result(
            max(1, min(recommendation, limit)),
            ScalingReason.ACTIVATED,
            f"{rate:.3g} req/s and {in_flight} in flight woke the handler",
            recommendation=recommendation,
            scale_up_limit=limit,
        )
    ratio = rate / (current * target)
    if abs(ratio - 1) <= TOLERANCE:
        return result(
            current,
            ScalingReason.WITHIN_TOLERANCE,
            f"load {ratio:.0%} of target is within tolerance",
            ratio=ratio,
            recommendation=recommendation,
        )
    if recommendation == current:
        return result(
            current,
            ScalingReason.STEADY,
            f"{rate:.3g} req/s needs the current {current} replicas",
            ratio=ratio,
            recommendation=recommendation,
        )
    if recommendation > current:
        limit = scale_up_limit(current, applied, now)
        limited = recommendation > limit
        return result(
            min(recommendation, limit),
            ScalingReason.SCALE_UP_LIMITED if limited else ScalingReason.SCALED_UP,
            f"{rate:.3g} req/s needs {recommendation} replicas"
            + (f"; the scale-up policy allows {limit} now" if limited else ""),
            ratio=ratio,
            recommendation=recommendation,
            scale_up_limit=limit,
        )
    since = now - timedelta(seconds=spec.scale_down_stabilization_seconds)
    peak = _replicas_for(window.peak_rate(since, now) / target)
    stabilized = min(current, max(recommendation, peak))
    held = stabilized > recommendation
    return result(
        stabilized,
        ScalingReason.SCALE_DOWN_STABILIZED if held else ScalingReason.SCALED_DOWN,
        f"{rate:.3g} req/s needs {recommendation} replicas"
        + (
            f"; {spec.scale_down_stabilization_seconds}s stabilization holds {stabilized}"
            if held
            else ""
        ),
        ratio=ratio,
        recommendation=recommendation,
        stabilized=stabilized,
    )


def replay_seconds(spec: ScalingSpec, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> float:
    """How far back a replica taking over must replay samples to decide as its predecessor.

    The stabilization window reaches back `scaleDownStabilizationSeconds`, the rate in effect
    at its start came from samples up to two rate windows older, and idleness needs
    `idleSeconds` of history to be recognised.
    """
    stabilization = spec.scale_down_stabilization_seconds + 2 * window_seconds
    return float(max(stabilization, spec.idle_seconds + window_seconds))


def scale_up_limit(current: int, applied: Sequence[ScalingDecision], now: datetime) -> int:
    """The most replicas allowed now: from the count at the start of the policy period, +4 pods
    or +100 %, whichever is larger (the HPA's default `behavior.scaleUp`)."""
    period = timedelta(seconds=SCALE_UP_PERIOD_SECONDS)
    added = sum(
        max(0, d.desired_replicas - d.current_replicas)
        for d in applied
        if timedelta(0) <= now - d.decided_at < period
    )
    start = max(0, current - added)
    return start + max(SCALE_UP_PODS, math.ceil(start * SCALE_UP_PERCENT / 100))


def _replicas_for(load: float) -> int:
    """ceil(load), saturating: an absurd sample (a tiny `windowSeconds`) must not overflow."""
    if not math.isfinite(load) or load > _SATURATED:
        return _SATURATED
    return max(0, math.ceil(load - _CEIL_SLACK))


def _at_zero(
    now: datetime, inputs: DecisionInputs, reason: ScalingReason, message: str, current: int = 0
) -> ScalingDecision:
    return ScalingDecision(
        decided_at=now,
        current_replicas=current,
        desired_replicas=0,
        reason=reason,
        message=message,
        inputs=inputs,
    )


def _with(inputs: DecisionInputs, **more: int | float) -> DecisionInputs:
    return msgspec.structs.replace(inputs, **more)
