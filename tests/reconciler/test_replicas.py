"""Three reconciler replicas on one durable, every handler updated three times in quick
succession, one replica killed half-way: everything converges on the latest spec and no status
ever shows an `observedGeneration` going backwards."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import timedelta

import pytest
from nats.js.api import DeliverPolicy

from gati_contracts.events import ChangeEvent, OutcomeEvent, decode_event
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.subjects import CR_ROOT, STREAM, object_filter
from gati_kubesim.server import ThreadedKubeSim
from gati_reconciler.service import CONSUMER
from gati_runtime.nats_connection import NatsConnection, connect
from gati_runtime.settings import Settings
from gati_watcher.watcher import Watcher
from reconciler.harness import Outcomes, Replica, Workloads, handler, outcomes

UPDATES = 3
SPEC = dataclasses.replace(CONSUMER, ack_wait=timedelta(seconds=2))
"""A killed replica's messages come back after ack_wait; short, so the test need not wait 30 s."""
LEASE_TTL = timedelta(seconds=3)
"""Likewise for the leases a killed replica held: they expire instead of being released."""


async def converge(
    handlers: int,
    gati_kubesim: ThreadedKubeSim,
    bus_settings: Settings,
    gati_connection: NatsConnection,
    workloads: Workloads,
) -> None:
    ns = workloads.namespace
    names = [f"h{index}" for index in range(handlers)]
    replicas = [
        Replica(
            gati_kubesim.url,
            await connect(bus_settings, name=f"r{i}"),
            SPEC,
            f"r{i}",
            lease_ttl=LEASE_TTL,
        )
        for i in range(3)
    ]
    async with outcomes(gati_connection) as seen:
        for name in names:
            workloads.create(handler(ns, name))
        for round_ in range(1, UPDATES + 1):
            for name in names:
                workloads.patch_spec("GatiHandler", name, {"image": f"acme/u:{round_ + 1}"})
            if round_ == 2:
                await replicas[0].kill()
        final = UPDATES + 1
        await _all_running_at(seen, names, final)
        for replica in replicas[1:]:
            await replica.close()
    for name in names:
        live = workloads.get("GatiHandler", name)
        assert live["metadata"]["generation"] == final
        assert live["status"]["observedGeneration"] == final
        assert live["status"]["phase"] == "Running"
        container = workloads.deployment(name)["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"acme/u:{final}"
    await _status_never_goes_backwards(gati_connection, ns)


async def _all_running_at(seen: Outcomes, names: list[str], generation: int) -> None:
    wanted = set(names)

    def done(events: list[OutcomeEvent]) -> bool:
        reached = {
            e.name
            for e in events
            if e.details.get("phase") == "Running" and e.observed_generation == generation
        }
        return wanted <= reached

    await seen.wait_for(done, seconds=240)


async def _status_never_goes_backwards(connection: NatsConnection, namespace: str) -> None:
    """Read every change of the handlers from the stream, in order, as any tool could."""
    subject = object_filter(CR_ROOT, GATI_HANDLER.kind, namespace)
    info = await connection.jsm.stream_info(STREAM, subjects_filter=subject)
    remaining = sum((info.state.subjects or {}).values())
    assert remaining, "the watcher published no handler changes"
    subscription = await connection.js.subscribe(
        subject, stream=STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    last: dict[str, int] = defaultdict(int)
    try:
        for _ in range(remaining):
            message = await subscription.next_msg(timeout=5)
            event = decode_event(message.data, ChangeEvent)
            observed = (event.obj.get("status") or {}).get("observedGeneration") or 0
            assert observed >= last[event.name], f"{event.name}: {last[event.name]} → {observed}"
            last[event.name] = observed
    finally:
        await subscription.unsubscribe()


async def test_three_replicas_one_killed_converge(
    gati_kubesim: ThreadedKubeSim,
    bus_settings: Settings,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    await converge(40, gati_kubesim, bus_settings, gati_connection, workloads)


@pytest.mark.long
async def test_three_replicas_300_handlers_one_killed_converge(
    gati_kubesim: ThreadedKubeSim,
    bus_settings: Settings,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    await converge(300, gati_kubesim, bus_settings, gati_connection, workloads)
