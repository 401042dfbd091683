"""Create, update, status-only update and delete of each kind reach the stream in order, with the
full object and the right type, and nothing else does."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from kubernetes import client
from nats.aio.client import Client

from gati_contracts.events import ChangeType
from gati_contracts.headers import MSG_ID, TRACEPARENT
from gati_contracts.subjects import STREAM, cr_subject, owned_subject
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.redaction import LAST_APPLIED, REDACTED, Redaction
from watcher.helpers import (
    FAST,
    Cluster,
    deployment,
    drift,
    handler,
    module,
    running_watcher,
    stream_tail,
    version,
)

CUSTOM = [handler, module, version]


@pytest.mark.parametrize("make", CUSTOM, ids=lambda make: make.__name__)
async def test_each_change_of_a_custom_resource_is_one_event_in_order(
    make: Any,
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace),
    ):
        created = cluster.create(make(cluster.namespace, "a.b"))
        updated = cluster.patch(created, {"metadata": {"labels": {"tier": "gold"}}})
        status = cluster.patch_status(updated, {"phase": "Pending"})
        cluster.delete(status)
        await tail.wait_for(lambda events: any(e.type is ChangeType.DELETED for _, e in events))

    kind = created["kind"]
    subject = cr_subject(kind, cluster.namespace, "a.b")
    assert {s for s, _ in tail.events} == {subject}
    events = [event for _, event in tail.events]
    assert [e.type for e in events] == [
        ChangeType.ADDED,
        ChangeType.MODIFIED,
        ChangeType.MODIFIED,
        ChangeType.DELETED,
    ]
    assert [e.resource_version for e in events[:3]] == [
        obj["metadata"]["resourceVersion"] for obj in (created, updated, status)
    ]
    assert events[1].obj["metadata"]["labels"] == {"tier": "gold"}
    assert events[2].obj["status"]["phase"] == "Pending"
    assert events[0].obj["spec"] == created["spec"]
    assert all(e.kind == kind and e.namespace == cluster.namespace for e in events)
    assert (await drift(gati_api, gati_connection, cluster.namespace)).clean


async def test_managed_deployments_go_to_owned_subjects_and_others_are_ignored(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace),
    ):
        cluster.create(deployment(cluster.namespace, "not-ours", managed=False))
        created = cluster.create(deployment(cluster.namespace, "web"))
        cluster.delete(created)
        await tail.wait_for(lambda events: any(e.type is ChangeType.DELETED for _, e in events))

    assert {s for s, _ in tail.events} == {owned_subject("Deployment", cluster.namespace, "web")}
    events = [event for _, event in tail.events]
    assert events[0].type is ChangeType.ADDED
    assert events[0].obj["kind"] == "Deployment"
    assert events[0].obj["spec"]["template"]["spec"]["containers"][0]["image"] == "acme/app:1"
    assert events[-1].type is ChangeType.DELETED
    assert all(e.type is ChangeType.MODIFIED for e in events[1:-1])


async def test_messages_carry_the_state_only_msg_id_and_a_w3c_traceparent(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace),
    ):
        created = cluster.create(handler(cluster.namespace, "users"))
        cluster.delete(created)
        await tail.wait_for(lambda events: len(events) == 2)

    uid, rv = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    first = await gati_bus.jsm().get_msg(STREAM, seq=1)
    last = await gati_bus.jsm().get_msg(STREAM, seq=2)
    assert first.headers is not None
    assert last.headers is not None
    assert first.headers[MSG_ID] == f"{uid}:{rv}"
    assert last.headers[MSG_ID] == f"{uid}:deleted"
    parts = first.headers[TRACEPARENT].split("-")
    assert [len(part) for part in parts] == [2, 32, 16, 2]
    assert parts[0] == "00"


async def test_events_name_the_fields_the_watcher_masked(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    """A relisted and a watched change alike say which configured paths masked a value, and
    an object none of them matched says it is whole (an empty list)."""
    options = replace(FAST, redaction=Redaction.parse(f"{LAST_APPLIED}, spec.env[*]"))
    listed = cluster.create(handler(cluster.namespace, "listed", env={"TOKEN": "s3cret"}))
    async with (
        stream_tail(gati_bus) as tail,
        running_watcher(gati_api, gati_connection, cluster.namespace, options=options),
    ):
        cluster.create(handler(cluster.namespace, "watched", env={"TOKEN": "s3cret"}))
        cluster.create(handler(cluster.namespace, "plain"))
        cluster.delete(listed)
        await tail.wait_for(lambda events: len(events) == 4)

    by_name = {
        event.name: event for _, event in tail.events if event.type is not ChangeType.DELETED
    }
    assert by_name["listed"].masked_fields == ("spec.env[*]",)
    assert by_name["watched"].masked_fields == ("spec.env[*]",)
    assert by_name["watched"].obj["spec"]["env"] == {"TOKEN": REDACTED}
    assert by_name["plain"].masked_fields == ()
