"""The replica decision of mode `events` against a table of cases, and its invariants."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gati_contracts.events import TrafficSample
from gati_contracts.scaling import ScalingSpec
from gati_scaler.decision import decide, replay_seconds, scale_up_limit
from gati_scaler.record import ScalingDecision, ScalingReason
from scaler.traffic import at, events, sample, steady, window_of

R = ScalingReason


@dataclass(frozen=True)
class Case:
    name: str
    current: int
    samples: list[TrafficSample]
    now: float
    desired: int
    reason: ScalingReason
    scaling: dict[str, Any] = field(default_factory=dict)
    applied: list[tuple[float, int, int]] = field(default_factory=list)
    """Earlier decisions that were applied: (seconds, from, to)."""


CASES = [
    Case("within tolerance above", 4, steady(0, 60, 42), 60, 4, R.WITHIN_TOLERANCE),
    Case("within tolerance below", 4, steady(0, 60, 36), 60, 4, R.WITHIN_TOLERANCE),
    Case("just over tolerance", 4, steady(0, 60, 45), 60, 5, R.SCALED_UP),
    Case("outside tolerance, rounds to current", 3, steady(0, 60, 21), 60, 3, R.STEADY),
    Case("down without history above", 4, steady(0, 60, 20), 60, 2, R.SCALED_DOWN),
    Case(
        "down held by a higher recommendation in the window",
        8,
        steady(0, 30, 80) + steady(100, 160, 20),
        160,
        8,
        R.SCALE_DOWN_STABILIZED,
    ),
    Case(
        "down partly held",
        8,
        steady(0, 30, 50) + steady(100, 160, 20),
        160,
        5,
        R.SCALE_DOWN_STABILIZED,
    ),
    Case(
        "down once the window has passed",
        8,
        steady(0, 30, 80) + steady(300, 400, 20),
        400,
        2,
        R.SCALED_DOWN,
    ),
    Case(
        "shorter stabilization from the spec",
        8,
        steady(0, 30, 80) + steady(100, 160, 20),
        160,
        2,
        R.SCALED_DOWN,
        {"scaleDownStabilizationSeconds": 60},
    ),
    Case("up limited to +4 pods", 2, steady(0, 60, 200), 60, 6, R.SCALE_UP_LIMITED),
    Case("up limited to +100 %", 10, steady(0, 60, 500), 60, 20, R.SCALE_UP_LIMITED),
    Case(
        "up limit counts from the start of the period",
        6,
        steady(0, 60, 200),
        60,
        6,
        R.SCALE_UP_LIMITED,
        applied=[(55, 2, 6)],
    ),
    Case(
        "up limit renews after the period",
        6,
        steady(0, 60, 200),
        60,
        12,
        R.SCALE_UP_LIMITED,
        applied=[(45, 2, 6)],
    ),
    Case("held at max", 8, steady(0, 60, 500), 60, 10, R.AT_MAXIMUM, {"maxReplicas": 10}),
    Case("held at min", 5, steady(0, 60, 0), 60, 3, R.AT_MINIMUM, {"minReplicas": 3}),
    Case(
        "min 0 without scale to zero keeps one",
        2,
        steady(0, 600, 0),
        600,
        1,
        R.AT_MINIMUM,
        {"minReplicas": 0},
    ),
    Case(
        "current above a lowered max",
        15,
        steady(0, 60, 150),
        60,
        10,
        R.AT_MAXIMUM,
        {"maxReplicas": 10},
    ),
    Case("no samples at all", 3, [], 60, 3, R.NO_FRESH_SAMPLES, {"scaleToZero": True}),
    Case(
        "stale samples are no data",
        3,
        steady(0, 60, 0),
        200,
        3,
        R.NO_FRESH_SAMPLES,
        {"scaleToZero": True, "idleSeconds": 30},
    ),
    Case("no data still enforces min", 1, [], 60, 2, R.AT_MINIMUM, {"minReplicas": 2}),
    Case("no data at zero stays at zero", 0, [], 60, 0, R.NO_FRESH_SAMPLES, {"scaleToZero": True}),
    Case(
        "idle to zero",
        2,
        steady(0, 120, 0),
        120,
        0,
        R.IDLE_SCALED_TO_ZERO,
        {"scaleToZero": True, "idleSeconds": 60},
    ),
    Case(
        "idle wins over min",
        2,
        steady(0, 120, 0),
        120,
        0,
        R.IDLE_SCALED_TO_ZERO,
        {"scaleToZero": True, "idleSeconds": 60, "minReplicas": 2},
    ),
    Case(
        "idle wins over stabilization",
        8,
        steady(0, 30, 80) + steady(30, 120, 0),
        120,
        0,
        R.IDLE_SCALED_TO_ZERO,
        {"scaleToZero": True, "idleSeconds": 60},
    ),
    Case(
        "not idle long enough",
        2,
        [*steady(0, 100, 0), sample(110, 1), sample(120, 0)],
        120,
        1,
        R.SCALED_DOWN,
        {"scaleToZero": True, "idleSeconds": 60, "scaleDownStabilizationSeconds": 0},
    ),
    Case(
        "in flight holds off zero",
        2,
        [*steady(0, 110, 0), sample(120, 0, in_flight=1)],
        120,
        1,
        R.AT_MINIMUM,
        {"scaleToZero": True, "idleSeconds": 60},
    ),
    Case("idle without scale to zero keeps min", 2, steady(0, 600, 0), 600, 1, R.AT_MINIMUM),
    Case(
        "at zero and quiet",
        0,
        steady(0, 20, 0),
        20,
        0,
        R.IDLE,
        {"scaleToZero": True, "idleSeconds": 60},
    ),
    Case(
        "at zero and idle",
        0,
        steady(0, 120, 0),
        120,
        0,
        R.IDLE,
        {"scaleToZero": True, "idleSeconds": 60},
    ),
    Case("activated by one request", 0, [sample(10, 1)], 10, 1, R.ACTIVATED, {"scaleToZero": True}),
    Case(
        "activated by in-flight requests",
        0,
        [sample(10, 0, in_flight=3)],
        10,
        1,
        R.ACTIVATED,
        {"scaleToZero": True},
    ),
    Case(
        "activated to what the rate needs",
        0,
        [sample(10, 300)],
        10,
        3,
        R.ACTIVATED,
        {"scaleToZero": True},
    ),
    Case(
        "activation within the scale-up policy",
        0,
        [sample(10, 3000)],
        10,
        4,
        R.ACTIVATED,
        {"scaleToZero": True},
    ),
    Case(
        "activation respects min",
        0,
        [sample(10, 1)],
        10,
        2,
        R.AT_MINIMUM,
        {"scaleToZero": True, "minReplicas": 2},
    ),
    Case("zero without scale to zero comes back to min", 0, steady(0, 60, 0), 60, 1, R.AT_MINIMUM),
    Case(
        "routers are summed",
        2,
        [*steady(0, 60, 20), sample(60, 200, source="router-b")],
        60,
        4,
        R.SCALED_UP,
    ),
]


def decision_for(case: Case) -> ScalingDecision:
    applied = [
        ScalingDecision(
            decided_at=at(t),
            current_replicas=before,
            desired_replicas=after,
            reason=R.SCALED_UP,
            message="",
            inputs=decide(events(), before, window_of([]), at(t)).inputs,
        )
        for t, before, after in case.applied
    ]
    return decide(
        events(**case.scaling), case.current, window_of(case.samples), at(case.now), applied
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decision_table(case: Case) -> None:
    decision = decision_for(case)
    assert (decision.desired_replicas, decision.reason) == (case.desired, case.reason), (
        decision.message
    )
    assert decision.current_replicas == case.current
    assert decision.decided_at == at(case.now)


def test_record_carries_the_inputs_as_camel_case_json() -> None:
    decision = decide(events(), 2, window_of(steady(0, 60, 200)), at(60))
    data = decision.to_json()
    assert data["desiredReplicas"] == 6
    assert data["reason"] == "ScaleUpLimited"
    assert data["decidedAt"] == "2026-01-01T00:01:00Z"
    assert data["inputs"]["requestRate"] == pytest.approx(200)
    assert data["inputs"]["recommendation"] == 20
    assert data["inputs"]["scaleUpLimit"] == 6
    assert data["inputs"]["samples"] == 6
    assert ScalingDecision.from_json(json.loads(json.dumps(data))) == decision
    assert decision.changed
    assert not decide(events(), 4, window_of(steady(0, 60, 40)), at(60)).changed


def test_an_absurd_sample_gives_a_finite_json_record() -> None:
    decision = decide(events(), 2, window_of([sample(10, 2**62, window=1e-300)]), at(10))
    assert decision.desired_replicas == 6
    json.dumps(decision.to_json(), allow_nan=False)


def test_a_malformed_record_is_refused_by_field() -> None:
    data = decide(events(), 2, window_of([]), at(0)).to_json()
    data["desiredReplicas"] = "many"
    with pytest.raises(msgspec.ValidationError, match="desiredReplicas"):
        ScalingDecision.from_json(data)


@pytest.mark.parametrize("mode", ["none", "hpa"])
def test_only_mode_events_is_decided(mode: str) -> None:
    spec = ScalingSpec.model_validate({"mode": mode})
    with pytest.raises(ValueError, match=r"spec\.scaling\.mode must be events"):
        decide(spec, 1, window_of([]), at(0))


def test_negative_current_is_refused() -> None:
    with pytest.raises(ValueError, match="current replicas"):
        decide(events(), -1, window_of([]), at(0))


def test_scale_up_limit_ignores_decisions_outside_the_period() -> None:
    old = decide(events(), 2, window_of(steady(0, 60, 200)), at(60))
    assert scale_up_limit(6, [old], at(60 + 14)) == 6
    assert scale_up_limit(6, [old], at(60 + 15)) == 12
    assert scale_up_limit(6, [old], at(59)) == 12  # a decision from the future is not applied


# --- properties -------------------------------------------------------------------------------

specs = st.builds(
    lambda low, span, to_zero, idle, stabilization, target: events(
        minReplicas=low,
        maxReplicas=max(1, low + span),
        scaleToZero=to_zero,
        idleSeconds=idle,
        scaleDownStabilizationSeconds=stabilization,
        targetRequestsPerReplica=target,
    ),
    st.integers(0, 5),
    st.integers(0, 15),
    st.booleans(),
    st.integers(1, 200),
    st.integers(0, 400),
    st.sampled_from([1.0, 5.0, 10.0, 33.3]),
)
# Traffic per 10 s tick: None is a router that said nothing (no sample) that tick.
ticks = st.lists(st.one_of(st.none(), st.integers(0, 400), st.just(0)), min_size=1, max_size=80)


@dataclass
class Run:
    spec: ScalingSpec
    decisions: list[ScalingDecision]


def simulate(spec: ScalingSpec, traffic: Sequence[int | None], start: int) -> Run:
    """A scaler that decides after every tick and applies what it decides."""
    window, current = window_of([]), start
    decisions: list[ScalingDecision] = []
    for i, requests in enumerate(traffic):
        now = at(10 * (i + 1))
        if requests is not None:
            window.add(sample(10 * (i + 1), requests))
        recent = [d for d in decisions if now - d.decided_at < timedelta(seconds=15)]
        decision = decide(spec, current, window, now, recent)
        decisions.append(decision)
        current = decision.desired_replicas
    return Run(spec, decisions)


@settings(max_examples=150)
@given(specs, ticks, st.integers(0, 25))
def test_replicas_stay_within_bounds_or_zero_only_when_allowed(
    spec: ScalingSpec, traffic: list[int | None], start: int
) -> None:
    for decision in simulate(spec, traffic, start).decisions:
        desired = decision.desired_replicas
        if desired == 0:
            assert spec.scale_to_zero, decision
            assert decision.current_replicas == 0 or (
                decision.inputs.samples > 0
                and decision.inputs.request_rate == 0
                and decision.inputs.in_flight == 0
                and decision.inputs.idle_seconds >= spec.idle_seconds
            ), decision
        else:
            assert max(1, spec.min_replicas) <= desired <= spec.max_replicas, decision


@settings(max_examples=150)
@given(specs, ticks, st.integers(0, 25))
def test_never_scales_below_a_recommendation_within_the_stabilization_window(
    spec: ScalingSpec, traffic: list[int | None], start: int
) -> None:
    decisions = simulate(spec, traffic, start).decisions
    window = timedelta(seconds=spec.scale_down_stabilization_seconds)
    for i, decision in enumerate(decisions):
        if not 0 < decision.desired_replicas < decision.current_replicas:
            continue
        for earlier in decisions[: i + 1]:
            recommendation = earlier.inputs.recommendation
            if recommendation is None or decision.decided_at - earlier.decided_at >= window:
                continue
            bound = min(recommendation, spec.max_replicas, decision.current_replicas)
            assert decision.desired_replicas >= bound, (earlier, decision)


@settings(max_examples=100)
@given(specs, ticks, st.integers(0, 25))
def test_missing_samples_never_scale_down(
    spec: ScalingSpec, traffic: list[int | None], start: int
) -> None:
    for decision in simulate(spec, traffic, start).decisions:
        if decision.inputs.samples == 0:
            if decision.current_replicas == 0 and spec.scale_to_zero:
                expected = 0
            else:
                floor = max(1, spec.min_replicas)
                expected = min(max(decision.current_replicas, floor), spec.max_replicas)
            assert decision.desired_replicas == expected, decision


@settings(max_examples=150)
@given(specs, ticks, st.integers(0, 25))
def test_a_replica_replaying_recent_samples_decides_the_same(
    spec: ScalingSpec, traffic: list[int | None], start: int
) -> None:
    """Failover: the new replica replays only `replay_seconds` of samples and reads the current
    count from the cluster, and decides what the old replica decided."""
    run = simulate(spec, traffic, start)
    now = at(10 * len(traffic))
    horizon = timedelta(seconds=replay_seconds(spec))
    replayed = window_of(
        [
            sample(10 * (i + 1), requests)
            for i, requests in enumerate(traffic)
            if requests is not None and now - at(10 * (i + 1)) <= horizon
        ]
    )
    last = run.decisions[-1]
    recent = [d for d in run.decisions[:-1] if now - d.decided_at < timedelta(seconds=15)]
    takeover = decide(spec, last.current_replicas, replayed, now, recent)
    if takeover.inputs.idle_seconds == last.inputs.idle_seconds:
        assert takeover == last
    else:
        # Less history can only look less idle, so scale to zero may come later, never sooner.
        assert takeover.inputs.idle_seconds < last.inputs.idle_seconds
        assert (takeover.desired_replicas == last.desired_replicas) or (
            last.desired_replicas == 0
        ), (takeover, last)


def test_a_ramp_up_and_down_to_zero_and_back() -> None:
    """100 req/s, then 20, then nothing, then 30 again, at 10 req/s per replica from one."""
    spec = events(scaleToZero=True, idleSeconds=120)
    traffic = [1000] * 6 + [200] * 43 + [0] * 20 + [300] * 3
    replicas = {
        10 * (i + 1): d.desired_replicas for i, d in enumerate(simulate(spec, traffic, 1).decisions)
    }
    # Up by the policy: +4 from one, held for the 15 s period, then doubled.
    assert [replicas[t] for t in (10, 20, 30, 60)] == [5, 5, 10, 10]
    # Down only once the 300 s window has passed the 100 req/s samples, then step by step.
    assert {replicas[t] for t in range(70, 370, 10)} == {10}
    assert [replicas[t] for t in (370, 380, 420, 600)] == [9, 8, 2, 2]
    # The last request was seen at 490: zero 120 s later, and back on the first request.
    assert [replicas[t] for t in (610, 690, 700)] == [0, 0, 1]
