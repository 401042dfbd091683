"""Scaler replicas running in a test, each on its own NATS connection so a test can kill one
(no drain, no lease release) as a crash would, and traffic published as routers would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client
from prometheus_client import REGISTRY

from fixtures.subject_tail import WAIT
from gati_contracts.events import TrafficSample, encode_event, event_headers
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.labels import selector_labels
from gati_contracts.ownership import owned_name
from gati_contracts.subjects import METRICS_STREAM, STREAM, traffic_subject
from gati_runtime.cancellation import cancel_until_done
from gati_runtime.consumer import ConsumerLoop
from gati_runtime.kube_api import Kube
from gati_runtime.lease import Leases
from gati_runtime.nats_connection import NatsConnection, connect
from gati_runtime.publisher import Publisher
from gati_runtime.settings import Settings
from gati_scaler.options import ScalerOptions
from gati_scaler.scaler import LEASE_SCOPE, Scaler
from gati_scaler.service import CONSUMER, TRAFFIC_CONSUMER, decode_change, decode_sample
from reconciler.harness import Outcomes, Workloads, outcomes, running_reconciler

FAST = ScalerOptions(tick_seconds=0.2, lease_seconds=1.0, resync_seconds=1.0, window_seconds=2.0)
"""Samples every 0.25 s over a 2 s rate window; a killed holder's lease lapses within 1 s."""


class ScalerReplica:
    def __init__(
        self, api: client.ApiClient, connection: NatsConnection, source: str, options: ScalerOptions
    ) -> None:
        self.connection = connection
        self.scaler_source = source
        self.kube = Kube(api, workers=4)
        self.scaler = Scaler(
            self.kube,
            connection,
            Publisher(connection),
            Leases(connection.client, source, scope=LEASE_SCOPE),
            options=options,
            stream=STREAM,
            metrics_stream=METRICS_STREAM,
            source=source,
        )
        loops = (
            ConsumerLoop(
                connection,
                STREAM,
                CONSUMER,
                decode=decode_change,
                handler=self.scaler.on_change,
                on_poison=self.scaler.on_poison,
            ),
            ConsumerLoop(
                connection,
                METRICS_STREAM,
                TRAFFIC_CONSUMER,
                decode=decode_sample,
                handler=self.scaler.on_sample,
                on_poison=self.scaler.on_poison,
            ),
        )
        self.stop = asyncio.Event()
        self.tasks = [
            asyncio.create_task(run(self.stop))
            for run in (loops[0].run, loops[1].run, self.scaler.run)
        ]

    async def close(self) -> None:
        self.stop.set()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*self.tasks)
        await self.connection.close()
        self.kube.close()

    async def kill(self) -> None:
        """Gone at once: no drain, no lease release (the lease must lapse)."""
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.connection.client.close()
        for task in self.tasks:  # a nats-py wait_for may have dropped the cancel (gh-86296)
            await cancel_until_done(task)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.kube.close()


@contextlib.asynccontextmanager
async def running_scaler(
    api: client.ApiClient,
    settings: Settings,
    *,
    source: str = "s0",
    options: ScalerOptions = FAST,
) -> AsyncIterator[ScalerReplica]:
    replica = ScalerReplica(api, await connect(settings, name=source), source, options)
    try:
        yield replica
    finally:
        if not replica.tasks[0].done():
            await replica.close()


@contextlib.asynccontextmanager
async def reconciled(api: client.ApiClient, connection: NatsConnection) -> AsyncIterator[Outcomes]:
    """The outcomes on `gati.status.>` and the real reconciler, for a test that starts its own
    scaler replicas."""
    async with outcomes(connection) as seen, running_reconciler(api, connection):
        yield seen


@contextlib.asynccontextmanager
async def scaling_stack(
    api: client.ApiClient, connection: NatsConnection, settings: Settings
) -> AsyncIterator[Outcomes]:
    """The outcomes on `gati.status.>`, the real reconciler and one scaler replica."""
    async with reconciled(api, connection) as seen, running_scaler(api, settings):
        yield seen


async def publish_sample(
    connection: NatsConnection,
    namespace: str,
    path: str,
    version: str,
    *,
    rate: float,
    every: float = 0.25,
    source: str = "router-a",
    in_flight: int = 0,
) -> None:
    """One router's sample for the last `every` seconds at `rate` req/s, stamped now."""
    sample = TrafficSample(
        namespace=namespace,
        handler=path,
        version=version,
        window_seconds=every,
        requests=round(rate * every),
        errors=0,
        in_flight=in_flight,
        observed_at=datetime.now(UTC),
        source=source,
    )
    await connection.js.publish(
        traffic_subject(namespace, path, version),
        encode_event(sample),
        headers=event_headers(sample),
    )


def create_owned_deployment(
    workloads: Workloads, name: str, owner: dict[str, Any], replicas: int
) -> None:
    """The Deployment the reconciler would make for handler `owner`, for tests without it."""
    labels = selector_labels(GATI_HANDLER, name)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": owned_name(name),
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": name,
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "handler", "image": "acme/u:1"}]},
            },
        },
    }
    # The client sends a plain dict as it is; its stubs only know the typed model.
    workloads.apps.create_namespaced_deployment(workloads.namespace, cast(Any, deployment))


def ticks() -> float:
    return REGISTRY.get_sample_value("gati_scaler_ticks_total") or 0.0


async def after_ticks(count: int) -> None:
    target = ticks() + count
    async with asyncio.timeout(WAIT):
        while True:
            if ticks() >= target:
                return
            await asyncio.sleep(0.05)  # the tick loop publishes nothing when it leaves a handler
