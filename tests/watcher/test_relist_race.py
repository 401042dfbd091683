"""Neither a relist nor a lagging watch buries a newer change: every publish expects the
subject's last sequence its publisher knows, and a subject where another publisher was faster
is read and decided again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kubernetes import client
from nats.aio.client import Client
from nats.js import JetStreamContext

from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers
from gati_contracts.kinds import GATI_HANDLER, GROUP, VERSION
from gati_contracts.subjects import CR_ROOT, cr_subject, object_filter
from gati_runtime.nats_connection import NatsConnection
from gati_watcher import watcher as watcher_module
from gati_watcher.checkpoint import Checkpoint, last_events
from gati_watcher.handoff import Handoff
from gati_watcher.kube import KubeReader, WatchItem, WatchMessage
from gati_watcher.targets import WatchTarget
from watcher.helpers import WAIT, Cluster, drift, handler, running_watcher, sample, stream_tail

Hook = Callable[[], Awaitable[None]]


def _between_read_and_publish(monkeypatch: pytest.MonkeyPatch, namespace: str, hook: Hook) -> None:
    """Run `hook` once, right after the first relist of `namespace`'s GatiHandlers has read
    the stream and before it publishes: the moment another replica may win the race."""
    fired = False

    async def read_then_hook(
        js: JetStreamContext, stream: str, filters: Sequence[str]
    ) -> Checkpoint:
        nonlocal fired
        checkpoint = await last_events(js, stream, filters)
        if not fired and list(filters) == [object_filter(CR_ROOT, "GatiHandler", namespace)]:
            fired = True
            await hook()
        return checkpoint

    monkeypatch.setattr(watcher_module, "last_events", read_then_hook)


async def test_a_relist_leaves_a_newer_change_of_another_replica_on_top(
    monkeypatch: pytest.MonkeyPatch,
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    created = cluster.create(handler(cluster.namespace, "raced"))
    async with contextlib.AsyncExitStack() as replicas, stream_tail(gati_bus) as tail:

        async def other_replica_publishes_a_newer_change() -> None:
            cluster.patch(created, {"spec": {"replicas": 3}})
            await replicas.enter_async_context(
                running_watcher(gati_api, gati_connection, cluster.namespace, source="b")
            )
            await tail.wait_for(lambda events: any(e.source == "b" for _, e in events))

        _between_read_and_publish(
            monkeypatch, cluster.namespace, other_replica_publishes_a_newer_change
        )
        async with running_watcher(gati_api, gati_connection, cluster.namespace, source="a"):
            current = cluster.custom.get_namespaced_custom_object(
                GROUP, VERSION, cluster.namespace, "gatihandlers", "raced"
            )
            rv = str(cast(dict[str, Any], current)["metadata"]["resourceVersion"])
            await tail.wait_for(lambda events: any(e.resource_version == rv for _, e in events))
            report = await drift(gati_api, gati_connection, cluster.namespace)
    events = tail.of("raced")
    assert [e.resource_version for e in events] == [rv]
    assert events[0].source == "b"  # a's older listing never reached the stream
    assert report.clean


async def test_a_relist_corrects_an_older_change_a_lagging_replica_published(
    monkeypatch: pytest.MonkeyPatch,
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    created = cluster.create(handler(cluster.namespace, "lagged"))
    rv = created["metadata"]["resourceVersion"]
    older = created | {"metadata": created["metadata"] | {"resourceVersion": f"{rv}-older"}}
    event = ChangeEvent.of(ChangeType.ADDED, older, source="lagging", observed_at=datetime.now(UTC))
    subject = cr_subject("GatiHandler", cluster.namespace, "lagged")

    async def lagging_replica_publishes() -> None:
        await gati_bus.jetstream().publish(
            subject, encode_event(event), headers=event_headers(event)
        )

    _between_read_and_publish(monkeypatch, cluster.namespace, lagging_replica_publishes)
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace, source="a"),
    ):
        await tail.wait_for(lambda events: len(events) == 2)
        report = await drift(gati_api, gati_connection, cluster.namespace)
    assert [(e.source, e.type, e.resource_version) for e in tail.of("lagged")] == [
        ("lagging", ChangeType.ADDED, f"{rv}-older"),
        ("a", ChangeType.MODIFIED, rv),
    ]
    assert report.clean


async def test_a_lagging_watch_never_stores_older_changes_over_a_relisted_state(
    monkeypatch: pytest.MonkeyPatch,
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    """Replica a's watch holds three updates back; replica b starts meanwhile and its relist
    records the last of them, skipping the two before. When a's watch goes on, its two older
    updates must not land on top (nor its last be taken for a duplicate of them); afterwards a
    publishes the next change as usual."""
    created = cluster.create(handler(cluster.namespace, "lagged"))
    suppressed = sample("gati_watcher_duplicates_total", kind="GatiHandler")
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace, source="a") as a,
    ):
        await tail.wait_for(lambda events: len(events) == 1)
        handlers = next(t for t in a.targets if t.target.kind.kind == "GatiHandler")
        held: list[tuple[WatchItem, Handoff[WatchMessage]]] = []
        three_held = asyncio.Event()
        handle = handlers._handle

        def hold(item: WatchItem, handoff: Handoff[WatchMessage]) -> None:
            held.append((item, handoff))
            if sum(1 for i, _ in held if i.type == "MODIFIED") == 3:
                three_held.set()

        monkeypatch.setattr(handlers, "_handle", hold)
        updates = [cluster.patch(created, {"spec": {"replicas": n}}) for n in (2, 3, 4)]
        rvs = [u["metadata"]["resourceVersion"] for u in updates]
        async with asyncio.timeout(WAIT):
            await three_held.wait()
        async with running_watcher(gati_api, gati_connection, cluster.namespace, source="b"):
            await tail.wait_for(lambda events: len(events) == 2)
        monkeypatch.setattr(handlers, "_handle", handle)
        for item, handoff in held:
            handle(item, handoff)
        await handlers._drain()
        latest = cluster.patch(created, {"spec": {"replicas": 5}})
        rv = latest["metadata"]["resourceVersion"]
        await tail.wait_for(lambda events: any(e.resource_version == rv for _, e in events))
        report = await drift(gati_api, gati_connection, cluster.namespace)
    assert [(e.source, e.type, e.resource_version) for e in tail.of("lagged")] == [
        ("a", ChangeType.ADDED, created["metadata"]["resourceVersion"]),
        ("b", ChangeType.MODIFIED, rvs[-1]),
        ("a", ChangeType.MODIFIED, rv),
    ]
    assert sample("gati_watcher_duplicates_total", kind="GatiHandler") == suppressed + 3
    assert report.clean


def test_a_relist_reads_one_object_again_by_field_selector(
    cluster: Cluster, gati_api: client.ApiClient
) -> None:
    for name in ("first", "second"):
        cluster.create(handler(cluster.namespace, name))
    reader = KubeReader(gati_api, WatchTarget(GATI_HANDLER, None))
    found = reader.get_object(cluster.namespace, "second")
    assert found is not None
    assert found["metadata"]["name"] == "second"
    assert found["kind"] == "GatiHandler"
    assert reader.get_object(cluster.namespace, "missing") is None
    assert reader.get_object("elsewhere", "second") is None


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_recreation_follows_its_predecessors_deletion_exactly_once(
    replicas: int,
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    """A watcher keeps the sequence of the deletions it stored, so a recreation it watches
    publishes on top of its predecessor's deletion: one replica records every state of the new
    incarnation even when the object changes again at once (a re-read after a conflict would
    fold the creation into the newer state). With two, the loser of a race re-reads, and an
    earlier incarnation on top is older than any state of the living one."""
    async with contextlib.AsyncExitStack() as stack:
        tail = await stack.enter_async_context(stream_tail(gati_bus))
        for source in "ab"[:replicas]:
            await stack.enter_async_context(
                running_watcher(gati_api, gati_connection, cluster.namespace, source=source)
            )
        first = cluster.create(handler(cluster.namespace, "again"))
        cluster.delete(first)
        second = cluster.create(handler(cluster.namespace, "again"))
        patched = cluster.patch(second, {"spec": {"replicas": 2}})
        rv = patched["metadata"]["resourceVersion"]
        await tail.wait_for(lambda events: any(e.resource_version == rv for _, e in events))
        report = await drift(gati_api, gati_connection, cluster.namespace)
    uids = first["metadata"]["uid"], second["metadata"]["uid"]
    events = tail.of("again")
    assert [(e.type, e.uid) for e in events[:3]] == [
        (ChangeType.ADDED, uids[0]),
        (ChangeType.DELETED, uids[0]),
        (ChangeType.ADDED, uids[1]),
    ]
    living = events[2:]
    assert {e.uid for e in living} == {uids[1]}
    assert living[-1].resource_version == rv
    assert len({e.resource_version for e in living}) == len(living), "a state stored twice"
    if replicas == 1:
        assert len(living) == 2, "one watcher records both states of the recreation"
    # With two, a replica that loses the race re-reads the object and may find it patched
    # already: it then records the newer state, and the creation's own state is folded into it.
    assert report.clean
