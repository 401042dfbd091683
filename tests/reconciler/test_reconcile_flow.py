"""Handlers and modules through the real watcher, nats-server, the reconciler and kubesim:
objects appear, status follows the Deployment, changes and deletions propagate."""

from __future__ import annotations

from kubernetes import client

from faults.figures import api_request_counts
from gati_contracts.events import OutcomeResult
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads, handler, module, outcomes, running_reconciler


def _condition(obj: dict[str, object], ctype: str) -> dict[str, str]:
    status = obj["status"]
    assert isinstance(status, dict)
    return next(c for c in status["conditions"] if c["type"] == ctype)


async def test_handler_becomes_objects_and_reaches_running(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(handler(ns, "users", replicas=2, env={"A": "1"}))
        await seen.phase("users", "Running")
    live = workloads.get("GatiHandler", "users")
    assert live["status"]["phase"] == "Running"
    assert live["status"]["observedGeneration"] == live["metadata"]["generation"]
    assert live["status"]["readyReplicas"] == 2
    assert _condition(live, "Ready")["status"] == "True"
    assert _condition(live, "Degraded")["status"] == "False"
    assert "users" in workloads.names("Deployment")
    assert workloads.names("Service")
    assert workloads.names("ConfigMap")
    deployment = workloads.deployment("users")
    assert deployment["spec"]["replicas"] == 2
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["uid"] == live["metadata"]["uid"]
    assert owner["controller"] is True
    reasons = {
        e.reason
        for e in client.CoreV1Api(gati_api).list_namespaced_event(ns).items
        if e.involved_object.name == "users"
    }
    assert "Created" in reasons
    assert all(e.input_sequence for e in seen.of("users"))


async def test_a_handler_is_realized_from_the_stream_without_reading_it_back(
    gati_kubesim: ThreadedKubeSim,
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    """The stream is the reconciler's informer cache: the handler's own event and its
    Deployment's carry every state a reconcile needs, and the replica's own status writes stand
    in for their echoes until the stream records them. Nothing else writes the handler here, so
    no status write conflicts and nothing is read back."""
    ns = workloads.namespace
    before = api_request_counts(gati_kubesim.url)
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        created = workloads.create(
            handler(ns, "users") | {"metadata": {"name": "users", "labels": {"team": "a"}}}
        )
        await seen.phase("users", "Running")
    after = api_request_counts(gati_kubesim.url)
    assert after[("get", "gatihandlers", "200")] == before[("get", "gatihandlers", "200")]
    assert after[("update", "gatihandlers", "409")] == before[("update", "gatihandlers", "409")]
    live = workloads.get("GatiHandler", "users")
    assert live["status"]["phase"] == "Running"
    # A status write sends the status alone: everything else stays as the user wrote it.
    assert live["metadata"]["labels"] == {"team": "a"}
    assert live["spec"] == created["spec"]


async def test_module_reaches_running(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(module(ns, "auth"))
        await seen.phase("auth", "Running")
    assert workloads.get("GatiModule", "auth")["status"]["phase"] == "Running"


async def test_failing_deployment_gives_degraded(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(handler(ns, "bad", image="acme/u:1-failing"))
        await seen.phase("bad", "Degraded")
    live = workloads.get("GatiHandler", "bad")
    assert _condition(live, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert _condition(live, "Ready")["status"] == "False"


async def test_changes_update_objects_and_deletion_removes_them(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(handler(ns, "users", replicas=2, env={"A": "1", "B": "2"}))
        await seen.phase("users", "Running", generation=1)
        assert any(name.startswith("users") for name in workloads.names("ConfigMap"))
        changed = workloads.patch_spec(
            "GatiHandler", "users", {"image": "acme/u:2", "replicas": 1, "env": {"B": None}}
        )
        generation = changed["metadata"]["generation"]
        await seen.phase("users", "Running", generation=generation)
        container = workloads.deployment("users")["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "acme/u:2"
        assert workloads.deployment("users")["spec"]["replicas"] == 1
        config = client.CoreV1Api(gati_api).list_namespaced_config_map(ns).items
        assert [dict(c.data or {}) for c in config] == [{"A": "1"}]
        pdbs = client.PolicyV1Api(gati_api).list_namespaced_pod_disruption_budget(ns).items
        assert pdbs == [], "scaling down to one replica prunes the disruption budget"
        workloads.delete("GatiHandler", "users")
        await seen.wait_for(
            lambda events: any(
                e.name == "users" and e.action == "deleted" and e.result is OutcomeResult.SUCCEEDED
                for e in events
            )
        )
    assert workloads.names("Deployment") == set()
    assert workloads.names("Service") == set()
