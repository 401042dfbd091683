"""Times, specs and readings the timescape tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gati_contracts.events import TrafficSample
from gati_timescape.health import HealthReading

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEALTHY = HealthReading(ready_replicas=3, desired_replicas=3, requests=1000, errors=1)
UNREADY = HealthReading(ready_replicas=1, desired_replicas=3)
FAILING = HealthReading(ready_replicas=3, desired_replicas=3, requests=100, errors=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def traffic(
    seconds: float,
    requests: int,
    *,
    errors: int = 0,
    p99: float | None = None,
    source: str = "r1",
    version: str = "v2",
) -> TrafficSample:
    return TrafficSample(
        namespace="shop",
        handler="/orders",
        version=version,
        window_seconds=10,
        requests=requests,
        errors=errors,
        latency_p99_ms=p99,
        observed_at=at(seconds),
        source=source,
    )


def version_object(name: str, created: datetime, **spec: Any) -> dict[str, Any]:
    """A GatiVersion of namespace `shop` as the API serves it, for the handler of its name."""
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiVersion",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-gv-{name}",
            "resourceVersion": "2",
            "creationTimestamp": created.isoformat(),
        },
        "spec": {"versionId": name, "handlerRef": {"name": name}, **spec},
    }
