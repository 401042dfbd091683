"""No two replicas work on one object at once: each reconcile holds the object's lease, and an
event whose object is leased elsewhere is put back, not dropped."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from prometheus_client import REGISTRY

from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.labels import OWNER_LABEL
from gati_contracts.subjects import STREAM, cr_subject
from gati_reconciler.reconcile import LEASE_SCOPE
from gati_reconciler.targets import KubernetesTarget
from gati_runtime.consumer import Delivery
from gati_runtime.kube_api import Kube
from gati_runtime.lease import Leases, lease_key
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE, Retry
from gati_watcher.watcher import Watcher
from reconciler.harness import (
    Workloads,
    handler,
    outcomes,
    replica_reconciler,
    running_reconciler,
)

SLOW = 0.25
"""Seconds every apply takes, as on an overloaded API server."""


@dataclass
class Timeline:
    """When each replica was applying each object's render."""

    spans: dict[str, list[tuple[float, float, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def overlaps(self) -> list[str]:
        found = []
        for name, spans in self.spans.items():
            ordered = sorted(spans)
            for (_, end, who), (start, _, other) in itertools.pairwise(ordered):
                if start < end:
                    found.append(f"{name}: {who} until {end:.3f}, {other} from {start:.3f}")
        return found


class SlowTarget(KubernetesTarget):
    """The real target, made slow and watched: what an overloaded API server looks like."""

    def __init__(
        self, kube: Kube, timeline: Timeline, replica: str, *, delay: float = SLOW
    ) -> None:
        super().__init__(kube)
        self._timeline = timeline
        self._replica = replica
        self._delay = delay

    async def apply(
        self, objects: Sequence[dict[str, Any]], *, cause: str
    ) -> dict[str, Any] | None:
        owner = objects[0]["metadata"]["labels"][OWNER_LABEL] if objects else "?"
        started = time.monotonic()
        await asyncio.sleep(self._delay)
        try:
            return await super().apply(objects, cause=cause)
        finally:
            self._timeline.spans[owner].append((started, time.monotonic(), self._replica))


def _busy() -> float:
    value = REGISTRY.get_sample_value(
        "gati_reconcile_lease_busy_total", {"controller": "reconciler"}
    )
    return value or 0.0


async def _recorded(connection: NatsConnection, live: dict[str, Any]) -> Delivery[ChangeEvent]:
    """The handler's creation as the watcher stores it: a reconcile acts on the newest recorded
    change of its object only."""
    event = ChangeEvent.of(ChangeType.ADDED, live, source="test", observed_at=datetime.now(UTC))
    subject = cr_subject(GATI_HANDLER.kind, event.namespace, event.name)
    ack = await connection.js.publish(
        subject, encode_event(event), stream=STREAM, headers=event_headers(event)
    )
    return Delivery(event, subject, ack.seq, 1, {})


async def test_two_replicas_on_one_slow_object_never_overlap(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    """Both replicas get an event of the same object at the same moment (as when its own event
    and its Deployment's go to different replicas): one reconciles, the other is put back."""
    ns = workloads.namespace
    delivery = await _recorded(gati_connection, workloads.create(handler(ns, "slow")))
    timeline = Timeline()
    replicas = []
    for name in ("r0", "r1"):
        kube = Kube(gati_api, workers=4)
        target = SlowTarget(kube, timeline, name)
        replicas.append((kube, replica_reconciler(kube, gati_connection, name, target=target)))
    busy_before = _busy()
    try:
        first = await asyncio.gather(*(r.handle(delivery) for _, r in replicas))
        # Again: one works while the other is put back, never both at once.
        second = await asyncio.gather(*(r.handle(delivery) for _, r in replicas))
    finally:
        for kube, _ in replicas:
            kube.close()
    assert sorted(type(outcome).__name__ for outcome in first) == ["Done", "Retry"]
    retry = next(outcome for outcome in first if isinstance(outcome, Retry))
    assert "another replica" in retry.reason
    assert retry.after is not None
    assert retry.after <= timedelta(milliseconds=100)
    assert _busy() - busy_before >= 1
    assert DONE in second
    assert timeline.overlaps() == []
    assert len(timeline.spans["slow"]) >= 2


async def test_an_object_leased_elsewhere_waits_and_is_not_dropped(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    intruder = Leases(gati_connection.client, "intruder", scope=LEASE_SCOPE)
    lease = await intruder.acquire(lease_key(GATI_HANDLER.kind, ns, "held"), 30)
    assert lease is not None
    busy_before = _busy()
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(handler(ns, "held"))
        workloads.create(handler(ns, "free"))
        await seen.phase("free", "Running")
        assert "held" not in workloads.names("Deployment")
        assert seen.of("held") == []
        await intruder.release(lease)
        await seen.phase("held", "Running")
    assert "held" in workloads.names("Deployment")
    assert _busy() > busy_before, "the held object's event was put back while leased"


async def test_a_reconcile_longer_than_the_ttl_keeps_its_lease(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    """The holder renews while it works: a slow API server never lets a second replica in."""
    ns = workloads.namespace
    delivery = await _recorded(gati_connection, workloads.create(handler(ns, "slow")))
    timeline = Timeline()
    ttl = timedelta(seconds=1)
    kubes = [Kube(gati_api, workers=4) for _ in range(2)]
    slow, other = (
        replica_reconciler(
            kube,
            gati_connection,
            name,
            target=SlowTarget(kube, timeline, name, delay=3 * ttl.total_seconds()),
            lease_ttl=ttl,
        )
        for kube, name in zip(kubes, ("r0", "r1"), strict=True)
    )
    try:
        working = asyncio.create_task(slow.handle(delivery))
        await asyncio.sleep(2 * ttl.total_seconds())  # the point is to let the TTL pass
        meanwhile = await other.handle(delivery)
        assert await working is DONE
    finally:
        for kube in kubes:
            kube.close()
    assert isinstance(meanwhile, Retry)
    assert "another replica" in meanwhile.reason
    assert [who for *_, who in timeline.spans["slow"]] == ["r0"]
