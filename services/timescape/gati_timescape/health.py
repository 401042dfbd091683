"""The health gate of a rollout: is the version fit to take (more) traffic?

Rules, chosen once here:
- Readiness is the Deployment's ready replicas over its desired replicas; a version scaled to
  zero has nothing that could be unready, so it passes (the scaler wakes it on traffic).
- Success rate and p99 come from the traffic samples of the last analysis interval. No requests
  pass both, as the issue asks: a quiet path must not block a rollout forever.
- Percentiles cannot be merged exactly, so the p99 of a window is the worst p99 any sample
  reported: a gate must err on the side of rolling back, never of hiding a slow router.
- A sample delivered twice (at-least-once) is counted once: samples are keyed by their router
  (`source`) and `observedAt`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gati_contracts.events import TrafficSample
from gati_contracts.rollout import RolloutAnalysis


@dataclass(frozen=True)
class HealthReading:
    ready_replicas: int
    desired_replicas: int
    requests: int = 0
    errors: int = 0
    latency_p99_ms: float | None = None

    @property
    def ready_ratio(self) -> float:
        return 1.0 if self.desired_replicas <= 0 else self.ready_replicas / self.desired_replicas

    @property
    def success_rate(self) -> float:
        return 1.0 if self.requests == 0 else 1 - self.errors / self.requests


@dataclass(frozen=True)
class HealthVerdict:
    healthy: bool
    reason: str
    """CamelCase: `Healthy`, `NotReady`, `LowSuccessRate` or `HighLatency`."""
    message: str


def read_health(
    samples: Iterable[TrafficSample],
    *,
    ready_replicas: int,
    desired_replicas: int,
    since: datetime,
    until: datetime,
) -> HealthReading:
    """The reading over the samples observed in `(since, until]`, all of one version."""
    unique = {
        (sample.source, sample.observed_at): sample
        for sample in samples
        if since < sample.observed_at <= until
    }
    served = [sample for sample in unique.values() if sample.requests > 0]
    latencies = [s.latency_p99_ms for s in served if s.latency_p99_ms is not None]
    return HealthReading(
        ready_replicas=ready_replicas,
        desired_replicas=desired_replicas,
        requests=sum(sample.requests for sample in served),
        errors=sum(sample.errors for sample in served),
        latency_p99_ms=max(latencies, default=None),
    )


def judge(reading: HealthReading, analysis: RolloutAnalysis) -> HealthVerdict:
    """The first threshold the reading breaks, in the order an operator would look."""
    if reading.ready_ratio < analysis.min_ready_ratio:
        return HealthVerdict(
            False,
            "NotReady",
            f"{reading.ready_replicas}/{reading.desired_replicas} replicas ready, "
            f"minReadyRatio is {analysis.min_ready_ratio}",
        )
    if reading.success_rate < analysis.min_success_rate:
        return HealthVerdict(
            False,
            "LowSuccessRate",
            f"{reading.errors} of {reading.requests} requests failed (success rate "
            f"{reading.success_rate:.4f}), minSuccessRate is {analysis.min_success_rate}",
        )
    limit = analysis.max_latency_p99_ms
    if limit is not None and reading.latency_p99_ms is not None and reading.latency_p99_ms > limit:
        return HealthVerdict(
            False,
            "HighLatency",
            f"p99 latency {reading.latency_p99_ms} ms, maxLatencyP99Ms is {limit}",
        )
    return HealthVerdict(True, "Healthy", "within every threshold")
