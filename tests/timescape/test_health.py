"""The health gate's reading of traffic samples and its verdict against the thresholds."""

from __future__ import annotations

import pytest

from gati_contracts.rollout import RolloutAnalysis
from gati_timescape.health import HealthReading, judge, read_health
from timescape.helpers import at, traffic


def test_reading_sums_the_window_once_per_sample_and_keeps_the_worst_p99() -> None:
    samples = [
        traffic(-5, 500, errors=5, p99=80),  # before the window
        traffic(10, 100, errors=1, p99=40),
        traffic(10, 100, errors=1, p99=40),  # redelivered
        traffic(10, 50, p99=120, source="r2"),
        traffic(20, 0, p99=999),  # no requests: its latency means nothing
    ]
    reading = read_health(samples, ready_replicas=2, desired_replicas=4, since=at(0), until=at(60))
    assert reading == HealthReading(2, 4, requests=150, errors=1, latency_p99_ms=120)
    assert reading.ready_ratio == 0.5


ANALYSIS = RolloutAnalysis(min_ready_ratio=0.5, min_success_rate=0.95, max_latency_p99_ms=200)


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (HealthReading(1, 1), "Healthy"),
        (HealthReading(0, 0), "Healthy"),  # scaled to zero: nothing can be unready
        (HealthReading(1, 4), "NotReady"),
        (HealthReading(2, 4, requests=100, errors=6), "LowSuccessRate"),
        (HealthReading(2, 4, requests=100, errors=5, latency_p99_ms=200), "Healthy"),
        (HealthReading(2, 4, requests=100, latency_p99_ms=201), "HighLatency"),
        (HealthReading(2, 4, requests=0, errors=0, latency_p99_ms=None), "Healthy"),
    ],
)
def test_verdict_names_the_first_broken_threshold(reading: HealthReading, reason: str) -> None:
    verdict = judge(reading, ANALYSIS)
    assert (verdict.healthy, verdict.reason) == (reason == "Healthy", reason)
    assert verdict.message


def test_latency_is_not_checked_without_a_limit() -> None:
    assert judge(HealthReading(1, 1, requests=1, latency_p99_ms=1e9), RolloutAnalysis()).healthy
