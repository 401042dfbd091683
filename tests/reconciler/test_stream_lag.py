"""The stream as the reconciler's informer cache trails the API server: a status write made from
a state the server has moved past conflicts, and the reconciler reads the object once instead of
losing the status or realizing an old spec."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from faults.figures import api_request_counts
from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STREAM, cr_subject
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.consumer import Delivery
from gati_runtime.kube_api import Kube
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE
from reconciler.harness import Workloads, handler, replica_reconciler


async def _reconcile_recorded(
    api: client.ApiClient, connection: NatsConnection, live: dict[str, Any]
) -> object:
    """Reconcile `live` as the newest recorded change of its subject, whatever the server has
    now (a watcher that has not recorded the later writes yet)."""
    event = ChangeEvent.of(ChangeType.ADDED, live, source="test", observed_at=datetime.now(UTC))
    subject = cr_subject(event.kind, event.namespace, event.name)
    ack = await connection.js.publish(
        subject, encode_event(event), stream=STREAM, headers=event_headers(event)
    )
    kube = Kube(api, workers=2)
    try:
        reconciler = replica_reconciler(kube, connection, "lagging")
        return await reconciler.handle(Delivery(event, subject, ack.seq, 1, {}))
    finally:
        kube.close()


def _conflicts_and_reads(url: str) -> tuple[int, int]:
    counts = api_request_counts(url)
    return counts[("update", "gatihandlers", "409")], counts[("get", "gatihandlers", "200")]


async def test_a_status_only_move_is_written_over_after_one_read(
    gati_kubesim: ThreadedKubeSim,
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
) -> None:
    ns = workloads.namespace
    created = workloads.create(handler(ns, "users"))
    # Another writer moves the status after the state the stream holds.
    client.CustomObjectsApi(gati_api).replace_namespaced_custom_object_status(
        GROUP, VERSION, ns, "gatihandlers", "users", created | {"status": {"phase": "Pending"}}
    )
    conflicts, reads = _conflicts_and_reads(gati_kubesim.url)
    assert await _reconcile_recorded(gati_api, gati_connection, created) is DONE
    assert _conflicts_and_reads(gati_kubesim.url) == (conflicts + 1, reads + 1)
    status = workloads.get("GatiHandler", "users")["status"]
    assert status["observedGeneration"] == 1
    assert status["phase"] == "Progressing"
    assert "users" in workloads.names("Deployment")


async def test_a_newer_spec_found_by_the_read_is_realized_instead(
    gati_kubesim: ThreadedKubeSim,
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
) -> None:
    ns = workloads.namespace
    created = workloads.create(handler(ns, "users"))
    workloads.patch_spec("GatiHandler", "users", {"image": "acme/u:2"})
    conflicts, reads = _conflicts_and_reads(gati_kubesim.url)
    assert await _reconcile_recorded(gati_api, gati_connection, created) is DONE
    assert _conflicts_and_reads(gati_kubesim.url) == (conflicts + 1, reads + 1)
    live = workloads.get("GatiHandler", "users")
    assert live["metadata"]["generation"] == 2
    assert live["status"]["observedGeneration"] == 2
    containers = workloads.deployment("users")["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "acme/u:2"
