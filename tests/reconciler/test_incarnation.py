"""A handler deleted and created again under the same name is a new object (a new uid): a
Deployment's event is about the incarnation its controller reference names, and the reconciler
acts on that one only, whether the stream's copy or the API server is what holds it. A handler
deleted while the stream still shows it (its deletion recorded after its Deployment's) is not
brought back, and one that goes mid-reconcile ends the event quietly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog.testing
from kubernetes import client

from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STREAM, cr_subject, owned_subject
from gati_runtime.consumer import Delivery
from gati_runtime.kube_api import Kube
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE
from reconciler.harness import Workloads, handler, outcomes, replica_reconciler


async def _record(
    connection: NatsConnection,
    subject: str,
    obj: dict[str, Any],
    change: ChangeType = ChangeType.MODIFIED,
) -> Delivery[Any]:
    """`obj` as the newest recorded change of `subject`, and its delivery."""
    event = ChangeEvent.of(change, obj, source="test", observed_at=datetime.now(UTC))
    ack = await connection.js.publish(
        subject, encode_event(event), stream=STREAM, headers=event_headers(event)
    )
    return Delivery(event, subject, ack.seq, 1, {})


def _deployment(namespace: str, owner_uid: str) -> dict[str, Any]:
    """The owned Deployment as the watcher records it, controlled by the handler `owner_uid`."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "users",
            "namespace": namespace,
            "uid": f"deployment-of-{owner_uid}",
            "resourceVersion": "1",
            "generation": 1,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "GatiHandler",
                    "name": "users",
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1},
    }


def _recreated(workloads: Workloads) -> tuple[dict[str, Any], dict[str, Any]]:
    first = workloads.create(handler(workloads.namespace, "users"))
    workloads.delete("GatiHandler", "users")
    return first, workloads.create(handler(workloads.namespace, "users"))


async def _reconcile(
    api: client.ApiClient, connection: NatsConnection, delivery: Delivery[Any]
) -> object:
    kube = Kube(api, workers=2)
    try:
        return await replica_reconciler(kube, connection, "r0").handle(delivery)
    finally:
        kube.close()


async def test_an_event_of_a_deleted_incarnations_deployment_realizes_nothing(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    ns = workloads.namespace
    first, _ = _recreated(workloads)
    delivery = await _record(
        gati_connection,
        owned_subject("Deployment", ns, "users"),
        _deployment(ns, first["metadata"]["uid"]),
    )
    async with outcomes(gati_connection) as seen:
        assert await _reconcile(gati_api, gati_connection, delivery) is DONE
        await seen.until(lambda e: e.name == "users")
    assert [(e.result.value, e.reason) for e in seen.of("users")] == [("Skipped", "Gone")]
    assert workloads.names("Deployment") == set()
    assert "status" not in workloads.get("GatiHandler", "users")


async def test_a_recorded_copy_of_an_earlier_incarnation_is_not_the_owner_of_a_newer_deployment(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    ns = workloads.namespace
    first, second = _recreated(workloads)
    # The stream trails: its newest copy of the handler is the first one, realized and Running.
    realized = first | {"status": {"observedGeneration": 1, "phase": "Running"}}
    await _record(gati_connection, cr_subject("GatiHandler", ns, "users"), realized)
    delivery = await _record(
        gati_connection,
        owned_subject("Deployment", ns, "users"),
        _deployment(ns, second["metadata"]["uid"]),
    )
    assert await _reconcile(gati_api, gati_connection, delivery) is DONE
    owners = workloads.deployment("users")["metadata"]["ownerReferences"]
    assert [owner["uid"] for owner in owners] == [second["metadata"]["uid"]]
    status = workloads.get("GatiHandler", "users")["status"]
    assert status["observedGeneration"] == 1


async def _deleted_after_its_copy(
    connection: NatsConnection, workloads: Workloads
) -> dict[str, Any]:
    """A handler the stream last recorded realized and Running, deleted since: the watcher has
    not stored its deletion yet (its watches are not ordered across resources)."""
    created = workloads.create(handler(workloads.namespace, "users"))
    realized = created | {"status": {"observedGeneration": 1, "phase": "Running"}}
    await _record(connection, cr_subject("GatiHandler", workloads.namespace, "users"), realized)
    workloads.delete("GatiHandler", "users")
    return created


async def test_a_deployments_deletion_recorded_before_its_owners_recreates_nothing(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    ns = workloads.namespace
    owner = await _deleted_after_its_copy(gati_connection, workloads)
    delivery = await _record(
        gati_connection,
        owned_subject("Deployment", ns, "users"),
        _deployment(ns, owner["metadata"]["uid"]),
        ChangeType.DELETED,
    )
    async with outcomes(gati_connection) as seen:
        assert await _reconcile(gati_api, gati_connection, delivery) is DONE
        await seen.until(lambda e: e.name == "users")
    assert [(e.result.value, e.reason) for e in seen.of("users")] == [("Skipped", "Gone")]
    assert workloads.names("Deployment") == set()


async def test_an_owner_gone_at_its_status_write_ends_the_event_quietly(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    """A Deployment's change (not a deletion) trusts the recorded owner, so the owner's
    removal shows only at the status write: a 404 there ends the event, no error, no retry."""
    ns = workloads.namespace
    owner = await _deleted_after_its_copy(gati_connection, workloads)
    unready = _deployment(ns, owner["metadata"]["uid"]) | {"status": {"replicas": 1}}
    delivery = await _record(gati_connection, owned_subject("Deployment", ns, "users"), unready)
    async with outcomes(gati_connection) as seen:
        with structlog.testing.capture_logs() as logs:
            assert await _reconcile(gati_api, gati_connection, delivery) is DONE
        await seen.until(lambda e: e.name == "users")
    assert [(e.result.value, e.reason) for e in seen.of("users")] == [("Skipped", "Gone")]
    gone = [entry for entry in logs if entry["event"] == "status_not_written_owner_gone"]
    assert [(entry["log_level"], entry["name"]) for entry in gone] == [("info", "users")]
    assert not [entry for entry in logs if entry["log_level"] in {"warning", "error"}]
