"""The health gate's window read back from a real GATI_METRICS stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gati_contracts.events import TrafficSample, encode_event, event_headers
from gati_contracts.subjects import METRICS_STREAM, traffic_subject
from gati_runtime.nats_connection import NatsConnection
from gati_timescape.health import read_health
from gati_timescape.samples import samples_since


def sample(version: str, requests: int, errors: int, observed_at: datetime) -> TrafficSample:
    return TrafficSample(
        namespace="shop",
        handler="/api/orders",
        version=version,
        window_seconds=10,
        requests=requests,
        errors=errors,
        latency_p99_ms=40.0,
        observed_at=observed_at,
        source="router-0",
    )


async def publish(connection: NatsConnection, traffic: TrafficSample) -> None:
    subject = traffic_subject(traffic.namespace, traffic.handler, traffic.version)
    await connection.js.publish(subject, encode_event(traffic), headers=event_headers(traffic))


async def test_the_window_holds_the_versions_samples_only_and_leaves_no_consumer(
    gati_connection: NatsConnection,
) -> None:
    now = datetime.now(UTC)
    await publish(gati_connection, sample("v2", 100, 1, now - timedelta(seconds=90)))
    await publish(gati_connection, sample("v2", 100, 40, now - timedelta(seconds=5)))
    await publish(gati_connection, sample("v3", 100, 0, now - timedelta(seconds=5)))
    # Not a sample at all: skipped, so one broken router cannot hold every rollout.
    await gati_connection.js.publish(traffic_subject("shop", "/api/orders", "v2"), b"{not json")

    since = now - timedelta(seconds=60)
    read = await samples_since(
        gati_connection.js,
        METRICS_STREAM,
        namespace="shop",
        path="/api/orders",
        version_id="v2",
        since=since,
    )

    # Stored just now, so the read starts before all of them; `read_health` keeps the window.
    assert [(s.version, s.errors) for s in read] == [("v2", 1), ("v2", 40)]
    reading = read_health(read, ready_replicas=2, desired_replicas=2, since=since, until=now)
    assert (reading.requests, reading.errors) == (100, 40)
    info = await gati_connection.jsm.stream_info(METRICS_STREAM)
    assert info.state.consumer_count == 0


async def test_a_version_without_samples_reads_an_empty_window(
    gati_connection: NatsConnection,
) -> None:
    read = await samples_since(
        gati_connection.js,
        METRICS_STREAM,
        namespace="shop",
        path="/api/orders",
        version_id="v9",
        since=datetime.now(UTC) - timedelta(minutes=1),
    )
    assert read == []


async def test_samples_all_stored_before_the_window_read_as_an_empty_one(
    gati_connection: NatsConnection,
) -> None:
    now = datetime.now(UTC)
    await publish(gati_connection, sample("v7", 100, 1, now))
    read = await samples_since(
        gati_connection.js,
        METRICS_STREAM,
        namespace="shop",
        path="/api/orders",
        version_id="v7",
        since=now + timedelta(minutes=1),  # the stored one is older than the read's start
    )
    assert read == []
