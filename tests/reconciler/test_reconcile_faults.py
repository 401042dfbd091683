"""Bad input and stale input: a resource the operator cannot realize fails alone and clearly,
and an old event delivered late changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client

from gati_contracts.events import ChangeEvent, ChangeType, OutcomeResult, encode_event
from gati_contracts.headers import MSG_ID
from gati_contracts.subjects import STREAM, cr_subject
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads, handler, outcomes, running_reconciler

HEALTHY = 100


async def test_unrealizable_resource_fails_clearly_while_the_others_run(
    crd_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    bad = handler(ns, "bad", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})
    async with outcomes(gati_connection) as seen, running_reconciler(crd_api, gati_connection):
        workloads.create(bad)
        for index in range(HEALTHY):
            workloads.create(handler(ns, f"h{index}"))
        names = {f"h{index}" for index in range(HEALTHY)}
        await seen.wait_for(
            lambda events: (
                names <= {e.name for e in events if e.details.get("phase") == "Running"}
                and any(e.name == "bad" and e.result is OutcomeResult.FAILED for e in events)
            )
        )
    live = workloads.get("GatiHandler", "bad")
    assert live["status"]["phase"] == "Failed"
    degraded = next(c for c in live["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec"
    assert "spec.resources" in degraded["message"]
    assert "limits.cpu" in degraded["message"]
    assert "bad" not in workloads.names("Deployment")
    warnings = [
        e
        for e in client.CoreV1Api(crd_api).list_namespaced_event(ns).items
        if e.involved_object.name == "bad"
    ]
    assert [e.reason for e in warnings] == ["ReconcileFailed"]
    assert warnings[0].type == "Warning"


async def test_redelivered_stale_event_changes_nothing(
    crd_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(crd_api, gati_connection):
        first = workloads.create(handler(ns, "users"))
        await seen.phase("users", "Running", generation=1)
        workloads.patch_spec("GatiHandler", "users", {"image": "acme/u:2"})
        await seen.phase("users", "Running", generation=2)
        before_cr = workloads.get("GatiHandler", "users")["metadata"]["resourceVersion"]
        before_deployment = workloads.deployment("users")["metadata"]["resourceVersion"]
        stale = ChangeEvent.of(
            ChangeType.MODIFIED, first, source="test", observed_at=datetime.now(UTC)
        )
        # A fresh id, as a redelivery past the duplicate window would arrive.
        ack = await gati_connection.js.publish(
            cr_subject("GatiHandler", ns, "users"),
            encode_event(stale),
            stream=STREAM,
            headers={MSG_ID: "stale-redelivery"},
        )
        await seen.wait_for(lambda events: any(e.input_sequence == ack.seq for e in events))
    verdict = next(e for e in seen.events if e.input_sequence == ack.seq)
    assert verdict.result is OutcomeResult.SKIPPED
    assert verdict.reason == "Stale"
    assert workloads.get("GatiHandler", "users")["metadata"]["resourceVersion"] == before_cr
    deployment = workloads.deployment("users")
    assert deployment["metadata"]["resourceVersion"] == before_deployment
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "acme/u:2"
