"""A handler whose GatiVersion timescape decommissioned keeps its objects as timescape left them:
the reconciler does not bring back what was removed, even when the handler changes afterwards,
and the handler's status says why it does not run."""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes import client

from gati_contracts.conditions import VERSION_DECOMMISSIONED
from gati_contracts.kinds import GATI_VERSION, GROUP, VERSION
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads, handler, outcomes, running_reconciler


def _retired_at(generation: int) -> Any:
    def reached(events: list[Any]) -> bool:
        return any(
            e.name == "orders"
            and e.reason == VERSION_DECOMMISSIONED
            and e.observed_generation == generation
            for e in events
        )

    return reached


def _version(workloads: Workloads, owner: dict[str, Any], action: str) -> dict[str, Any]:
    """The GatiVersion timescape creates for a handler: its name, owned by it."""
    body = {
        "apiVersion": GATI_VERSION.api_version,
        "kind": GATI_VERSION.kind,
        "metadata": {
            "name": "orders",
            "namespace": workloads.namespace,
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "versionId": "v1",
            "handlerRef": {"name": "orders"},
            "decommission": {"graceSeconds": 0, "idleSamples": 1, "action": action},
        },
    }
    return workloads.create(body)


def _set_phase(workloads: Workloads, version: dict[str, Any], phase: str) -> None:
    latest = workloads.get(GATI_VERSION.kind, version["metadata"]["name"])
    latest["status"] = {"phase": phase, "currentWeight": 0}
    workloads.custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, workloads.namespace, GATI_VERSION.plural, "orders", latest
    )


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return cast(dict[str, Any], next(c for c in obj["status"]["conditions"] if c["type"] == ctype))


@pytest.mark.parametrize("action", ["delete", "scaleToZero"])
async def test_decommissioned_version_objects_stay_as_timescape_left_them(
    action: str,
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    apps, core = client.AppsV1Api(gati_api), client.CoreV1Api(gati_api)
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        owner = workloads.create(handler(ns, "orders", replicas=2))
        await seen.phase("orders", "Running", generation=1)
        version = _version(workloads, owner, action)
        _set_phase(workloads, version, "Draining")
        # What timescape does, in its order: the objects first, then the status that says so.
        if action == "delete":
            # The server answers with a Status the client cannot read as the deleted kind.
            apps.delete_namespaced_deployment("orders", ns, _preload_content=False)
            core.delete_namespaced_service("orders", ns, _preload_content=False)
        else:
            apps.patch_namespaced_deployment_scale("orders", ns, {"spec": {"replicas": 0}})
        _set_phase(workloads, version, "Decommissioned")
        await seen.wait_for(_retired_at(1))
        # A later change of the handler must not bring the objects back either.
        changed = workloads.patch_spec("GatiHandler", "orders", {"image": "acme/u:2"})
        await seen.wait_for(_retired_at(changed["metadata"]["generation"]))

    live = workloads.get("GatiHandler", "orders")
    assert live["status"]["phase"] == "Pending"
    assert live["status"]["observedGeneration"] == changed["metadata"]["generation"]
    ready = _condition(live, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", VERSION_DECOMMISSIONED)
    assert f"action {action}" in ready["message"]
    assert _condition(live, "Degraded")["status"] == "False"
    reasons = [e.reason for e in core.list_namespaced_event(ns).items]
    assert "Decommissioned" in reasons
    assert workloads.names("ConfigMap") == {"orders-env"}
    if action == "delete":
        assert workloads.names("Deployment") == set()
        assert workloads.names("Service") == set()
    else:
        deployment = workloads.deployment("orders")
        assert deployment["spec"]["replicas"] == 0
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "acme/u:2", "the kept Deployment still follows the spec"
        assert workloads.names("Service") == {"orders"}
    pdbs = client.PolicyV1Api(gati_api).list_namespaced_pod_disruption_budget(ns).items
    assert pdbs == []
