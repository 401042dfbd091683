"""The pure parts of `gati-operator dev`: traffic split by rollout weight, and the live view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gati_cli import liveview, traffic
from gati_contracts.events import TrafficSample, decode_event
from streamtools.recorded import routes


def _handler(name: str, version: str, created: str, path: str = "/orders/:id") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": name, "creationTimestamp": created},
        "spec": {"handlerPath": path, "version": version, "replicas": 2},
    }


def _version(handler: str, weight: int | None) -> dict[str, Any]:
    status = {} if weight is None else {"currentWeight": weight, "phase": "Progressing"}
    return {
        "metadata": {"namespace": "shop", "name": f"{handler}-gv"},
        "spec": {"versionId": handler[-2:], "handlerRef": {"name": handler}},
        "status": status,
    }


V1 = _handler("orders-v1", "v1", "2026-01-01T00:00:00Z")
V2 = _handler("orders-v2", "v2", "2026-01-02T00:00:00Z")


def test_oldest_version_takes_all_traffic_before_timescape_decides() -> None:
    weights = traffic.current_weights([V2, V1], [])
    assert {(w.version, w.weight) for w in weights} == {("v1", 100), ("v2", 0)}


def test_weights_come_from_version_status() -> None:
    weights = traffic.current_weights(
        [V1, V2], [_version("orders-v1", 90), _version("orders-v2", 10)]
    )
    assert {(w.version, w.weight) for w in weights} == {("v1", 90), ("v2", 10)}


def test_samples_split_the_rate_and_round_trip_on_the_bus() -> None:
    weights = traffic.current_weights(
        [V1, V2], [_version("orders-v1", 90), _version("orders-v2", 10)]
    )
    now = datetime(2026, 1, 3, tzinfo=UTC)
    samples = traffic.samples(weights, requests_per_second=100, window_seconds=5, now=now)
    assert sorted(s.requests for s in samples) == [50, 450]
    subject, payload, headers = traffic.publication(samples[0])
    assert subject.startswith("gati.metrics.traffic.shop.")
    assert decode_event(payload, TrafficSample) == samples[0]
    assert headers


def test_drained_version_gets_no_requests_and_no_latency() -> None:
    weights = traffic.current_weights(
        [V1, V2], [_version("orders-v1", 0), _version("orders-v2", 100)]
    )
    drained = next(
        s
        for s in traffic.samples(weights, requests_per_second=10, window_seconds=5)
        if s.version == "v1"
    )
    assert drained.requests == 0
    assert drained.latency_p99_ms is None


def test_view_shows_phase_ready_weight_and_step() -> None:
    handler = {**V2, "status": {"phase": "Running", "readyReplicas": 2}}
    module = {
        "metadata": {"namespace": "shop", "name": "payments"},
        "spec": {"moduleName": "@shop/payments", "replicas": 2},
    }
    version = _version("orders-v2", 50)
    version["status"] |= {"handlerPath": "/orders/:id", "currentStep": 1}
    text = liveview.render(
        [handler],
        [module],
        [version],
        events_per_second=3.5,
        stream_messages=42,
        services=["watcher x1"],
    )
    assert "42 events, 3.5/s" in text
    assert "shop/orders-v2  /orders/:id  v2       Running  2/2" in text
    assert "shop/payments  @shop/payments  -      0/2" in text
    assert "Progressing  50%     1" in text


def test_mid_rollout_the_routing_table_gives_the_stable_version_its_real_share() -> None:
    """The stable version's status keeps the 100 % it reached; the table says 50 %."""
    stable, target = _version("orders-v1", 100), _version("orders-v2", 50)
    for version in (stable, target):
        version["status"]["handlerPath"] = "/orders/:id"
    routed = traffic.routed_weights([routes({"v1": 50, "v2": 50})])
    weights = traffic.current_weights([V1, V2], [stable, target], routed)
    assert {(w.version, w.weight) for w in weights} == {("v1", 50), ("v2", 50)}
    text = liveview.render(
        [], [], [stable, target], events_per_second=0, stream_messages=0, services=[], routed=routed
    )
    assert [line.split()[4] for line in text.splitlines() if "orders-v" in line] == ["50%", "50%"]
