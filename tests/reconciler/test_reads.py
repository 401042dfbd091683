"""Reads sent with the lease, and a Deployment event's second newest-check, only on the lease's
proof: a replica that re-takes a lease by its own release skips that check, and one that finds
another replica came between makes it, so an event superseded meanwhile changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER
from gati_contracts.subjects import STREAM, cr_subject, owned_subject
from gati_reconciler.reconcile import LEASE_SCOPE, Reconciler
from gati_reconciler.stream_state import Answer, StreamState
from gati_runtime.consumer import Delivery
from gati_runtime.kube_api import Kube
from gati_runtime.lease import Leases, lease_key
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE
from gati_runtime.publisher import Publisher
from reconciler.harness import Workloads, handler, outcomes
from runtime.lease_release import confirmed


class WatchedStreams(StreamState):
    """The real reader, counting newest-checks; `meanwhile` runs once, right after the first
    check has its answer and before the reconcile goes on: another replica's work landing in
    that gap."""

    def __init__(self, connection: NatsConnection) -> None:
        super().__init__(connection.client, STREAM)
        self.checks = 0
        self.meanwhile: Callable[[], Awaitable[None]] | None = None

    async def ask_newest(self, subject: str, sequence: int) -> Answer[bool]:
        self.checks += 1
        return await super().ask_newest(subject, sequence)

    async def is_newest(self, subject: str, sequence: int) -> bool:
        newest = await super().is_newest(subject, sequence)
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            await meanwhile()
        return newest


class Replica:
    """A reconciler wired as the service wires it, with its leases at hand (to await its
    release's answer)."""

    def __init__(
        self, kube: Kube, connection: NatsConnection, name: str, streams: StreamState
    ) -> None:
        self.leases = Leases(connection.client, name, scope=LEASE_SCOPE)
        self.reconciler = Reconciler(
            kube,
            Publisher(connection),
            streams=streams,
            leases=self.leases,
            source=name,
            stream=STREAM,
        )


async def _store(connection: NatsConnection, subject: str, obj: dict[str, Any]) -> Delivery[Any]:
    event = ChangeEvent.of(ChangeType.MODIFIED, obj, source="test", observed_at=datetime.now(UTC))
    ack = await connection.js.publish(
        subject, encode_event(event), stream=STREAM, headers=event_headers(event)
    )
    return Delivery(event, subject, ack.seq, 1, {})


def _deployment(live: dict[str, Any], *, ready: int, version: str) -> dict[str, Any]:
    """The Deployment as the API server holds it, with the controller's status set to `ready`
    of one replica and its own resourceVersion (one change each on the bus)."""
    shown = copy.deepcopy(live)
    shown["metadata"]["resourceVersion"] = version
    shown["status"] = {
        "observedGeneration": shown["metadata"]["generation"],
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    return shown


async def _created(connection: NatsConnection, workloads: Workloads, replica: Replica) -> None:
    """The handler's creation reconciled by `replica`, its lease released and the release
    confirmed: the state in which the next re-take can prove nobody came between."""
    live = workloads.create(handler(workloads.namespace, "h"))
    subject = cr_subject(GATI_HANDLER.kind, workloads.namespace, "h")
    created = await _store(connection, subject, live)
    assert await replica.reconciler.handle(created) is DONE
    await confirmed(replica.leases, lease_key(GATI_HANDLER.kind, workloads.namespace, "h"))


def _phase(workloads: Workloads) -> str:
    return str(workloads.get("GatiHandler", "h")["status"]["phase"])


async def test_a_retake_by_our_own_release_skips_the_second_check(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    kube = Kube(gati_api, workers=4)
    streams = WatchedStreams(gati_connection)
    replica = Replica(kube, gati_connection, "a", streams)
    try:
        await _created(gati_connection, workloads, replica)
        deployment = workloads.deployment("h")
        name = deployment["metadata"]["name"]
        ready = await _store(
            gati_connection,
            owned_subject(DEPLOYMENT.kind, workloads.namespace, name),
            _deployment(deployment, ready=1, version="1000001"),
        )
        streams.checks = 0
        async with outcomes(gati_connection) as seen:
            assert await replica.reconciler.handle(ready) is DONE
            await seen.phase("h", "Running")
    finally:
        kube.close()
    assert streams.checks == 1  # the one before the lock; the lease vouched for it after
    assert _phase(workloads) == "Running"


async def test_a_replica_coming_between_makes_the_second_check_and_the_stale_event_idle(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    """Replica a's Deployment event passes its first check; before a takes the lease, a newer
    Deployment event is stored and replica b reconciles it (Running). a's lease then does not
    follow a's release, so a checks again, finds its event superseded and writes nothing: a
    skipped check here would have put the status back to Progressing."""
    kubes = [Kube(gati_api, workers=4) for _ in range(2)]
    streams = WatchedStreams(gati_connection)
    a = Replica(kubes[0], gati_connection, "a", streams)
    b = Replica(kubes[1], gati_connection, "b", StreamState(gati_connection.client, STREAM))
    try:
        await _created(gati_connection, workloads, a)
        deployment = workloads.deployment("h")
        subject = owned_subject(
            DEPLOYMENT.kind, workloads.namespace, deployment["metadata"]["name"]
        )
        rolling = await _store(
            gati_connection, subject, _deployment(deployment, ready=0, version="1000001")
        )

        async def b_reconciles_a_newer_change() -> None:
            ready = await _store(
                gati_connection, subject, _deployment(deployment, ready=1, version="1000002")
            )
            assert await b.reconciler.handle(ready) is DONE

        streams.checks = 0
        streams.meanwhile = b_reconciles_a_newer_change
        async with outcomes(gati_connection) as seen:
            assert await a.reconciler.handle(rolling) is DONE
            assert _phase(workloads) == "Running"  # b's verdict
            await seen.phase("h", "Running")
    finally:
        for kube in kubes:
            kube.close()
    assert streams.checks == 2  # before the lock, and again under the lease
    assert _phase(workloads) == "Running"
    assert not [e for e in seen.events if e.input_sequence == rolling.stream_sequence]
