"""A relist never buries a newer change: its publishes expect the subject's last sequence that
its diff read, and a subject where another publisher was faster is read and decided again."""

from __future__ import annotations

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
from gati_watcher.kube import KubeReader
from gati_watcher.targets import WatchTarget
from watcher.helpers import Cluster, drift, handler, running_watcher, stream_tail

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
