"""Bad input and stale input: a resource the operator cannot realize fails alone and clearly,
and an old event delivered late changes nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from kubernetes import client
from prometheus_client import REGISTRY

from fixtures.kubesim_server import kubesim_hook
from fixtures.subject_tail import SubjectTail, collecting
from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    OutcomeResult,
    decode_event,
    encode_event,
)
from gati_contracts.headers import MSG_ID
from gati_contracts.subjects import STREAM, cr_subject, owned_subject
from gati_contracts.workload import WorkloadPhase
from gati_kubesim.server import ThreadedKubeSim
from gati_reconciler.service import CONSUMER, decode_change
from gati_reconciler.status import read_deployment
from gati_runtime.consumer import Delivery
from gati_runtime.kube_api import Kube
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE
from gati_watcher.watcher import Watcher
from reconciler.harness import (
    Workloads,
    handler,
    outcomes,
    replica_reconciler,
    running_reconciler,
)

HEALTHY = 100


async def test_unrealizable_resource_fails_clearly_while_the_others_run(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    bad = handler(ns, "bad", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(bad)
        for index in range(HEALTHY):
            workloads.create(handler(ns, f"h{index}"))
        names = {f"h{index}" for index in range(HEALTHY)}
        await seen.wait_for(
            lambda events: (
                names <= {e.name for e in events if e.details.get("phase") == "Running"}
                and any(e.name == "bad" and e.result is OutcomeResult.FAILED for e in events)
            ),
            seconds=120,
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
        for e in client.CoreV1Api(gati_api).list_namespaced_event(ns).items
        if e.involved_object.name == "bad"
    ]
    assert [e.reason for e in warnings] == ["ReconcileFailed"]
    assert warnings[0].type == "Warning"


async def test_redelivered_stale_event_changes_nothing(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    subject = cr_subject("GatiHandler", ns, "users")
    async with (
        outcomes(gati_connection) as seen,
        collecting(gati_connection, subject, SubjectTail(decode_change)) as changes,
        running_reconciler(gati_api, gati_connection),
    ):
        first = workloads.create(handler(ns, "users"))
        await seen.phase("users", "Running", generation=1)
        workloads.patch_spec("GatiHandler", "users", {"image": "acme/u:2"})
        await seen.phase("users", "Running", generation=2)
        before_cr = workloads.get("GatiHandler", "users")["metadata"]["resourceVersion"]
        # The watcher's echo of that last status write may still be on its way. Stored after
        # the stale event, it would make that one no longer the newest of its subject, skipped
        # without a verdict (the wait below then timed out under load): the stale event must
        # come after everything recorded of the object.
        await changes.until(lambda change: change.resource_version == before_cr)
        # kubesim's deployment controller may still write status; the spec is what we own.
        before_deployment = workloads.deployment("users")["metadata"]["generation"]
        stale = ChangeEvent.of(
            ChangeType.MODIFIED, first, source="test", observed_at=datetime.now(UTC)
        )
        # A fresh id, as a redelivery past the duplicate window would arrive.
        ack = await gati_connection.js.publish(
            subject,
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
    assert deployment["metadata"]["generation"] == before_deployment
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "acme/u:2"


async def test_transient_api_errors_are_retried_until_running(
    gati_kubesim: ThreadedKubeSim,
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    requeued = REGISTRY.get_sample_value(
        "controller_runtime_reconcile_total", {"controller": "reconciler", "result": "requeue"}
    )
    kubesim_hook(
        gati_kubesim.url,
        "faults",
        {"verb": "patch", "resource": "deployments", "code": 503, "times": 2},
    )
    try:
        async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
            workloads.create(handler(workloads.namespace, "users"))
            await seen.phase("users", "Running")
    finally:
        kubesim_hook(gati_kubesim.url, "faults", method="DELETE")
    after = REGISTRY.get_sample_value(
        "controller_runtime_reconcile_total", {"controller": "reconciler", "result": "requeue"}
    )
    assert (after or 0) - (requeued or 0) >= 2


async def test_abandoned_reconcile_marks_the_resource_failed(
    gati_kubesim: ThreadedKubeSim,
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    spec = dataclasses.replace(CONSUMER, max_deliver=2)
    kubesim_hook(
        gati_kubesim.url, "faults", {"verb": "patch", "resource": "deployments", "code": 500}
    )
    try:
        async with (
            outcomes(gati_connection) as seen,
            running_reconciler(gati_api, gati_connection, spec=spec),
        ):
            workloads.create(handler(workloads.namespace, "users"))
            await seen.wait_for(lambda events: any(e.reason == "Abandoned" for e in events))
    finally:
        kubesim_hook(gati_kubesim.url, "faults", method="DELETE")
    status = workloads.get("GatiHandler", "users")["status"]
    assert status["phase"] == "Failed"
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ReconcileAbandoned"
    assert "500" in degraded["message"]
    assert [e.reason for e in seen.of("users")] == ["Abandoned"]


async def test_late_deployment_event_changes_nothing(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    """A Deployment event handled after a newer one of the same Deployment (another replica
    had it, or it was redelivered) shows a state that no longer holds: trusted, its not-yet-
    ready Deployment would put a Running handler back to Progressing."""
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(handler(ns, "users"))
        await seen.phase("users", "Running", generation=1)
    before = workloads.get("GatiHandler", "users")["metadata"]["resourceVersion"]
    subject = owned_subject("Deployment", ns, "users")
    first = await gati_connection.jsm.get_msg(STREAM, seq=1, subject=subject, next=True)
    late = decode_event(first.data or b"", ChangeEvent)
    assert read_deployment(late.obj).phase is not WorkloadPhase.RUNNING, "not the old state"
    kube = Kube(gati_api, workers=2)
    try:
        reconciler = replica_reconciler(kube, gati_connection, "late")
        delivery = Delivery(late, subject, first.seq or 0, 2, {})
        assert await reconciler.handle(delivery) is DONE
    finally:
        kube.close()
    live = workloads.get("GatiHandler", "users")
    assert live["metadata"]["resourceVersion"] == before
    assert live["status"]["phase"] == "Running"
