"""Building blocks for scaler tests: samples at offsets from a fixed instant, and specs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gati_contracts.events import TrafficSample
from gati_contracts.scaling import ScalingSpec
from gati_scaler.windows import TrafficWindow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAMESPACE, HANDLER, VERSION = "shop", "/api/users", "v2"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(
    seconds: float,
    requests: int,
    *,
    window: float = 10.0,
    in_flight: int = 0,
    source: str = "router-a",
    version: str = VERSION,
) -> TrafficSample:
    return TrafficSample(
        namespace=NAMESPACE,
        handler=HANDLER,
        version=version,
        window_seconds=window,
        requests=requests,
        errors=0,
        in_flight=in_flight,
        observed_at=at(seconds),
        source=source,
    )


def steady(start: float, end: float, rate: float, *, every: float = 10.0) -> list[TrafficSample]:
    """One router reporting `rate` req/s every `every` seconds over (start, end]."""
    samples, t = [], start + every
    while t <= end + 1e-9:
        samples.append(sample(t, round(rate * every), window=every))
        t += every
    return samples


def window_of(samples: list[TrafficSample]) -> TrafficWindow:
    window = TrafficWindow(NAMESPACE, HANDLER, VERSION)
    for s in samples:
        window.add(s)
    return window


def events(**scaling: Any) -> ScalingSpec:
    """Mode events, 10 req/s per replica, unless overridden (camelCase keys, as on the wire)."""
    return ScalingSpec.model_validate(
        {"mode": "events", "targetRequestsPerReplica": 10, "maxReplicas": 20} | scaling
    )
