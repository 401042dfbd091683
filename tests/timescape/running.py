"""Timescape (with the real reconciler) running in a test, and the routing tables it publishes
collected as they arrive, so tests await each step instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kubernetes import client

from fixtures.subject_tail import WAIT, SubjectTail, collecting
from gati_contracts.events import ChangeEvent, RoutesEvent, TrafficSample, decode_event
from gati_contracts.kinds import GATI_VERSION, GROUP, VERSION
from gati_contracts.subjects import METRICS_STREAM, ROUTES_BUCKET, ROUTES_ROOT, STREAM
from gati_runtime.consumer import ConsumerLoop
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.publisher import Publisher
from gati_runtime.settings import Settings
from gati_timescape.service import CONSUMER, TRAFFIC_CONSUMER, Timescape
from reconciler.harness import Workloads


def weights(table: RoutesEvent) -> dict[str, int]:
    return {v.version_id: v.weight for v in table.versions if v.weight}


def has_weights(expected: dict[str, int], table: RoutesEvent) -> bool:
    return weights(table) == expected


def routes(
    connection: NatsConnection,
) -> contextlib.AbstractAsyncContextManager[SubjectTail[RoutesEvent]]:
    """Every routing table published on `gati.routes.>`, in arrival order."""
    tables = SubjectTail(lambda data: decode_event(data, RoutesEvent))
    return collecting(connection, f"{ROUTES_ROOT}.>", tables)


@contextlib.asynccontextmanager
async def running_timescape(
    api: client.ApiClient,
    connection: NatsConnection,
    *,
    source: str = "t0",
    retention: int = Settings().decommissioned_retention,
) -> AsyncIterator[Timescape]:
    """One replica on the shared durable with its tick, as `service.main` runs it."""
    kv = await connection.js.key_value(ROUTES_BUCKET)
    timescape = Timescape(
        api, Publisher(connection), kv, source, js=connection.js, decommissioned_retention=retention
    )
    loop = ConsumerLoop(
        connection,
        STREAM,
        CONSUMER,
        decode=lambda data: decode_event(data, ChangeEvent),
        handler=timescape.handle,
        on_poison=timescape.on_poison,
    )
    traffic = ConsumerLoop(
        connection,
        METRICS_STREAM,
        TRAFFIC_CONSUMER,
        decode=lambda data: decode_event(data, TrafficSample),
        handler=timescape.observe,
        on_poison=timescape.on_poison,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run(stop)) for run in (loop.run, traffic.run, timescape.tick)]
    try:
        yield timescape
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*tasks)


def recorded_version(
    workloads: Workloads, name: str, version_id: str, status: dict[str, Any]
) -> None:
    """A GatiVersion with `status` written directly, as timescape would have left it, so a test
    starts from any point of a version's life without living through it."""
    created = workloads.create(
        {
            "apiVersion": GATI_VERSION.api_version,
            "kind": GATI_VERSION.kind,
            "metadata": {"name": name, "namespace": workloads.namespace},
            "spec": {"versionId": version_id, "handlerRef": {"name": name}},
        }
    )
    created["status"] = status
    workloads.custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, workloads.namespace, GATI_VERSION.plural, name, created
    )
