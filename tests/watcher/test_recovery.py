"""No lost change, no duplicate: replicas, restarts, 410 Gone, silent watches."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import Sequence

import pytest
from kubernetes import client
from nats.aio.client import Client
from nats.js import JetStreamContext

from fixtures.nats_server import PrivateBus
from gati_contracts.events import ChangeType
from gati_contracts.subjects import CR_ROOT, object_filter, parse_subject
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.nats_connection import NatsConnection
from gati_watcher import watcher as watcher_module
from gati_watcher.checkpoint import Checkpoint, last_events
from watcher.helpers import FAST, Cluster, drift, handler, running_watcher, sample, stream_tail

RELISTS_TOTAL = "gati_watcher_relists_total"


def _duplicates() -> float:
    return sample("gati_watcher_duplicates_total", kind="GatiHandler")


async def test_two_replicas_store_each_change_once(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    before = _duplicates()
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace, source="a"),
        running_watcher(gati_api, gati_connection, cluster.namespace, source="b"),
    ):
        objects = [cluster.create(handler(cluster.namespace, f"h{i}")) for i in range(5)]
        for obj in objects:
            cluster.patch(obj, {"spec": {"replicas": 2}})
        cluster.delete(objects[0])
        await tail.wait_for(lambda events: len(events) == 11)
    ids = Counter(event.msg_id for _, event in tail.events)
    assert len(tail.events) == 11
    assert set(ids.values()) == {1}
    assert {event.source for _, event in tail.events} <= {"a", "b"}
    # Both replicas deliver all 11 changes: 22 deliveries, 11 stored. Each delivery that stores
    # nothing counts a duplicate, so 11 is a floor, not an exact count: a publish retried after
    # its first attempt was stored (the ack late or lost) counts one more.
    assert _duplicates() - before >= 11
    assert (await drift(gati_api, gati_connection, cluster.namespace)).clean


async def test_restart_publishes_exactly_what_was_missed(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    async with stream_tail(gati_bus) as tail:
        async with running_watcher(gati_api, gati_connection, cluster.namespace):
            kept = cluster.create(handler(cluster.namespace, "kept"))
            changed = cluster.create(handler(cluster.namespace, "changed"))
            doomed = cluster.create(handler(cluster.namespace, "doomed"))
            await tail.wait_for(lambda events: len(events) == 3)
        # No watcher runs now.
        cluster.patch(changed, {"spec": {"replicas": 3}})
        cluster.patch(changed, {"spec": {"replicas": 4}})
        cluster.delete(doomed)
        born = cluster.create(handler(cluster.namespace, "born"))
        assert (await drift(gati_api, gati_connection, cluster.namespace)).drifts

        async with running_watcher(gati_api, gati_connection, cluster.namespace):
            await tail.wait_for(lambda events: len(events) == 6)
        missed = [(event.name, event.type) for _, event in tail.events[3:]]

    assert sorted(missed) == [
        ("born", ChangeType.ADDED),
        ("changed", ChangeType.MODIFIED),
        ("doomed", ChangeType.DELETED),
    ]
    changed_event = next(event for _, event in tail.events[3:] if event.name == "changed")
    assert changed_event.obj["spec"]["replicas"] == 4
    assert born["metadata"]["uid"] in {event.uid for _, event in tail.events}
    assert kept["metadata"]["name"] not in {name for name, _ in missed}
    assert (await drift(gati_api, gati_connection, cluster.namespace)).clean


async def test_relist_of_unchanged_objects_publishes_nothing(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    async with stream_tail(gati_bus) as tail:
        async with running_watcher(gati_api, gati_connection, cluster.namespace):
            for i in range(3):
                cluster.create(handler(cluster.namespace, f"h{i}"))
            await tail.wait_for(lambda events: len(events) == 3)
        sequence = (await gati_bus.jsm().stream_info("GATI")).state.last_seq
        async with running_watcher(gati_api, gati_connection, cluster.namespace):
            pass
        assert (await gati_bus.jsm().stream_info("GATI")).state.last_seq == sequence


async def test_a_silent_watch_is_restarted_and_loses_nothing(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_kubesim: ThreadedKubeSim,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    restarts = ("gati_watcher_watch_restarts_total", {"kind": "GatiHandler", "reason": "silent"})
    before = sample(restarts[0], **restarts[1])
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace) as watcher,
    ):
        # A change seen first proves the watch is open: silencing before it opens would let
        # the first list deliver the object, and no watch would ever go silent.
        cluster.create(handler(cluster.namespace, "heard"))
        await tail.wait_for(lambda events: len(events) == 1)
        gati_kubesim.call(gati_kubesim.sim.silence_watches, "gatihandlers.gati.dev")
        created = cluster.create(handler(cluster.namespace, "quiet.one"))
        timeout = watcher.targets[0]._options.inactivity.timeout
        async with asyncio.timeout(timeout + 10):
            await tail.wait_for(lambda events: len(events) == 2)
    assert sample(restarts[0], **restarts[1]) > before
    subject, event = tail.events[1]
    assert event.uid == created["metadata"]["uid"]
    assert parse_subject(subject).name == "quiet.one"  # type: ignore[union-attr]


async def test_forced_gone_in_a_burst_of_1000_updates_loses_nothing(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_kubesim: ThreadedKubeSim,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    before = sample(RELISTS_TOTAL, kind="GatiHandler", reason="expired")
    objects = [cluster.create(handler(cluster.namespace, f"h{i}")) for i in range(10)]
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace),
    ):

        def burst() -> set[str]:
            latest = objects
            for step in range(100):
                # The watch goes deaf, then the history it would resume from is forgotten:
                # coming back, it gets 410 Gone and must relist. The forgetting comes a few
                # writes later, well inside the inactivity timeout, so it is done by the time
                # the silence is noticed however slow the machine is.
                if step == 40:
                    gati_kubesim.call(gati_kubesim.sim.silence_watches, "gatihandlers.gati.dev")
                if step == 45:
                    gati_kubesim.call(gati_kubesim.sim.compact, "gatihandlers.gati.dev")
                latest = [cluster.patch(obj, {"spec": {"replicas": step % 7}}) for obj in latest]
            return {obj["metadata"]["resourceVersion"] for obj in latest}

        final = await asyncio.to_thread(burst)
        await tail.wait_for(lambda events: final <= {e.resource_version for _, e in events})
    assert sample(RELISTS_TOTAL, kind="GatiHandler", reason="expired") > before
    assert (await drift(gati_api, gati_connection, cluster.namespace)).clean


async def test_nats_restart_in_a_burst_loses_nothing_and_memory_stays_bounded(
    cluster: Cluster, gati_api: client.ApiClient, private_bus: PrivateBus
) -> None:
    connection = private_bus.connection
    options = dataclasses.replace(FAST, capacity=16)
    before = sample(RELISTS_TOTAL, kind="GatiHandler", reason="nats-reconnected")
    objects = [cluster.create(handler(cluster.namespace, f"h{i}")) for i in range(10)]
    async with running_watcher(gati_api, connection, cluster.namespace, options=options) as watcher:

        def burst() -> set[str]:
            latest = objects
            for step in range(60):
                if step == 20:
                    private_bus.server.stop()
                if step == 40:
                    private_bus.server.start()
                latest = [cluster.patch(obj, {"spec": {"replicas": step % 7}}) for obj in latest]
            return {obj["metadata"]["resourceVersion"] for obj in latest}

        final = await asyncio.to_thread(burst)
        async with stream_tail(connection.client) as tail:
            await tail.wait_for(lambda events: final <= {e.resource_version for _, e in events})
    assert sample(RELISTS_TOTAL, kind="GatiHandler", reason="nats-reconnected") > before
    assert (await drift(gati_api, connection, cluster.namespace)).clean
    handlers = watcher.targets[0]
    assert handlers.target.kind.kind == "GatiHandler"
    assert handlers.high_water == options.capacity  # the watch was held back, not buffered


async def test_a_relist_whose_read_lost_its_timeout_still_ends_and_is_retried(
    monkeypatch: pytest.MonkeyPatch,
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    """A nats-py `wait_for` in the read of the stream's last events can drop the cancel the
    relist's timeout sends (gh-86296); the read then waits on for a last message that may never
    come. The relist must still fail at its timeout and be retried, not hold its target."""
    gati_handlers = object_filter(CR_ROOT, "GatiHandler", cluster.namespace)
    deaf_reads: list[asyncio.Event] = []

    async def deaf_once(js: JetStreamContext, stream: str, filters: Sequence[str]) -> Checkpoint:
        if list(filters) != [gati_handlers] or deaf_reads:
            return await last_events(js, stream, filters)
        ended = asyncio.Event()
        deaf_reads.append(ended)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # the timeout's cancel, lost
            await asyncio.Event().wait()  # the last message that never comes
            raise AssertionError("unreachable: nothing sets the event")
        finally:
            ended.set()

    monkeypatch.setattr(watcher_module, "last_events", deaf_once)
    retries = ("gati_watcher_relists_total", {"kind": "GatiHandler", "reason": "retry"})
    before = sample(retries[0], **retries[1])
    created = cluster.create(handler(cluster.namespace, "waited"))
    options = dataclasses.replace(FAST, checkpoint_timeout=3.0)
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace, options=options),
    ):
        await tail.wait_for(lambda events: len(events) == 1)
    assert deaf_reads[0].is_set()
    assert sample(retries[0], **retries[1]) > before  # failed at its timeout, then retried
    assert tail.events[0][1].uid == created["metadata"]["uid"]
