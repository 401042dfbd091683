"""Mode events end to end with the real watcher and reconciler: a synthetic traffic ramp up and
down, scale to zero when idle and back on traffic, no scaling without data, refused samples.

Short windows throughout (`FAST`: 2 s rate window, samples every 0.25 s; 1 s stabilization and
idle grace in the spec), so each phase settles within seconds; every wait is for a published
outcome, never a fixed sleep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import REGISTRY

from fixtures.stage import Stage
from fixtures.subject_tail import WAIT
from gati_contracts.events import OutcomeEvent, TrafficSample, encode_event
from gati_contracts.ownership import owned_name
from gati_contracts.subjects import traffic_subject
from gati_runtime.cancellation import cancel_until_done
from gati_runtime.nats_connection import NatsConnection
from reconciler.harness import Outcomes, Workloads, handler
from scaler.running import publish_sample, scaling_stack

PATH = "/api/users"
EVENTS: dict[str, Any] = {
    "mode": "events",
    "targetRequestsPerReplica": 10,
    "minReplicas": 1,
    "maxReplicas": 10,
    "scaleToZero": True,
    "idleSeconds": 1,
    "scaleDownStabilizationSeconds": 1,
}


@dataclass
class Router:
    """A router publishing one sample every 0.25 s at `rate` req/s until stopped."""

    connection: NatsConnection
    namespace: str
    rate: float = 0.0

    async def run(self) -> None:
        while True:
            # A router drops a sample it cannot publish (NATS down) and reports the next one.
            with contextlib.suppress(Exception):
                await publish_sample(self.connection, self.namespace, PATH, "v1", rate=self.rate)
            await asyncio.sleep(0.25)  # the router's reporting cadence, not a wait for a result


@contextlib.asynccontextmanager
async def router(connection: NatsConnection, namespace: str) -> AsyncIterator[Router]:
    running = Router(connection, namespace)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        # One cancel can be lost in nats-py's wait_for as a sample's ack arrives (gh-86296): the
        # router would publish on and this exit wait for it forever.
        await cancel_until_done(task)


def scaled(events: list[OutcomeEvent]) -> list[int]:
    """Replica counts the scaler wrote to /scale, in order."""
    return [
        e.details["desiredReplicas"]
        for e in events
        if e.service == "scaler" and e.action == "scaled"
    ]


async def reach(seen: Outcomes, replicas: int) -> list[int]:
    """Until the scaler has written `replicas`; the writes of this phase."""
    before = len(scaled(seen.events))
    await seen.wait_for(lambda es: replicas in scaled(es)[before:] or scaled(es)[-1:] == [replicas])
    return scaled(seen.events)[before:]


def replicas_of(workloads: Workloads, name: str) -> int:
    return int(workloads.deployment(owned_name(name))["spec"]["replicas"])


def replica_owners(workloads: Workloads, name: str) -> set[str]:
    fields = workloads.deployment(owned_name(name))["metadata"]["managedFields"]
    return {
        m["manager"] for m in fields if "f:replicas" in (m.get("fieldsV1") or {}).get("f:spec", {})
    }


async def test_router_stops_when_a_publish_loses_its_cancel(
    gati_connection: NatsConnection,
) -> None:
    """The router is told to stop as a sample's ack resolves its request: nats-py's wait_for
    returns the ack and drops the cancel (gh-86296), yet the router's block ends."""
    client = gati_connection.client
    async with asyncio.timeout(WAIT) as deadline, router(gati_connection, "r-lost-cancel"):
        while True:
            if client._resp_map:  # the router's task is inside its request once it yields
                break
            await asyncio.sleep(0)  # nothing to await: the request is nats-py's own
        # Woken after the router's wait_for by the same ack, the block's exit cancels a task
        # whose wait is already over.
        await next(iter(client._resp_map.values()))
    assert not deadline.expired(), "the router published on after its block's exit"


async def test_ramp_up_down_to_zero_and_back(stage: Stage) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    async with scaling_stack(gati_api, gati_connection, bus_settings) as seen:
        workloads.create(handler(ns, "users", handlerPath=PATH, scaling=EVENTS))
        await seen.phase("users", "Running")
        async with router(gati_connection, ns) as traffic:
            traffic.rate = 20
            up = await reach(seen, 2)
            assert up == [2], "20 req/s at 10 per replica is 2 replicas"
            traffic.rate = 60
            up = await reach(seen, 6)
            assert up == sorted(up), f"a ramp up only adds replicas: {up}"
            assert replicas_of(workloads, "users") == 6
            traffic.rate = 20
            down = await reach(seen, 2)
            assert down == sorted(down, reverse=True), f"a ramp down only removes: {down}"
            traffic.rate = 0
            idle = await reach(seen, 0)
            assert idle == sorted(idle, reverse=True), f"down to zero, never back up: {idle}"
            traffic.rate = 40
            woken = await reach(seen, 4)
            assert woken == sorted(woken), f"woken on the first busy sample, then up: {woken}"
        assert replicas_of(workloads, "users") == 4
        # The reconciler kept out of spec.replicas all along (it reconciled every status move).
        assert replica_owners(workloads, "users") == {"gati-operator-scaler"}
        reasons = [e.reason for e in seen.events if e.service == "scaler" and e.action == "scaled"]
        assert "IdleScaledToZero" in reasons
        assert "Activated" in reasons[reasons.index("IdleScaledToZero") :]
        # The latest decision is on the object too (rewritten if another writer dropped it).
        last = await _last_scaling(workloads, "users", 4)
        assert last["inputs"]["targetRequestsPerReplica"] == 10


async def _last_scaling(workloads: Workloads, name: str, replicas: int) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            status = workloads.get("GatiHandler", name).get("status") or {}
            last: dict[str, Any] = status.get("lastScaling") or {}
            if last.get("desiredReplicas") == replicas:
                return last
            await asyncio.sleep(0.1)  # status is read from the API; no event carries it here


async def test_no_samples_keep_replicas_and_bad_samples_are_refused(stage: Stage) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    with structlog.testing.capture_logs() as logs:
        async with scaling_stack(gati_api, gati_connection, bus_settings) as seen:
            workloads.create(handler(ns, "users", handlerPath=PATH, scaling=EVENTS))
            await seen.wait_for(
                lambda es: any(e.service == "scaler" and e.reason == "NoFreshSamples" for e in es)
            )
            # Ten more ticks (2 s) without a single sample, twice idleSeconds: replicas stay.
            await _decisions(NO_DATA, more_than=_count(NO_DATA) + 10)
            assert replicas_of(workloads, "users") == 1
            assert scaled(seen.events) == []

            subject = traffic_subject(ns, PATH, "v1")
            await gati_connection.js.publish(subject, b"\x00 not json")
            await gati_connection.js.publish(subject, NEGATIVE)
            await gati_connection.js.publish(subject, encode_event(_sample(ns, "/api/elsewhere")))
            await gati_connection.js.publish(
                traffic_subject(ns, "/api/other", "v1"), encode_event(_sample(ns, "/api/other"))
            )
            async with router(gati_connection, ns) as traffic:
                traffic.rate = 40
                woken = await reach(seen, 4)
                assert woken == sorted(woken), f"refused samples never count as traffic: {woken}"
    refused = [entry for entry in logs if entry["event"] == "scaler_input_refused"]
    reasons = " | ".join(entry["reason"] for entry in refused)
    assert len(refused) == 3, reasons
    assert "requests" in reasons
    assert "arrived on" in reasons


NO_DATA = "NoFreshSamples"
NEGATIVE = (
    b'{"schema":"gati.traffic","schemaVersion":1,"namespace":"x","handler":"/h",'
    b'"version":"v1","windowSeconds":1,"requests":-5,"errors":0,'
    b'"observedAt":"2026-01-01T00:00:00Z"}'
)


def _count(reason: str) -> float:
    return REGISTRY.get_sample_value("gati_scaler_decisions_total", {"reason": reason}) or 0.0


async def _decisions(reason: str, *, more_than: float) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            if _count(reason) > more_than:
                return
            await asyncio.sleep(0.05)  # ticks are counted, not awaited: no event carries them


def _sample(namespace: str, path: str) -> TrafficSample:
    return TrafficSample(
        namespace=namespace,
        handler=path,
        version="v1",
        window_seconds=1,
        requests=1000,
        errors=0,
        observed_at=datetime.now(UTC),
    )
