"""A kopf operator for `GatiHandler`, written as a competent kopf user would, to race against.

It renders with `gati_reconciler.manifests.render_handler`, so both operators produce the same
ConfigMap, Service and Deployment bytes and the benchmark compares machinery, not manifests. The
objects are server-side applied with the official `kubernetes` client from sync handlers, which
kopf runs in its thread pool: the style of kopf's own documentation. Readiness comes from
`@kopf.on.event` on the owned Deployments, the one place that writes `status`, so a slow handler
can never overwrite a newer phase.

Tuned as its user would for a thousand objects, doing the same job as gati-operator's watcher
and reconciler and no more: enough threads and pooled connections for the sync handlers, and
`--quiet`, since kopf logs about ten INFO lines per object through the scenarios (~20 % of its
CPU at N=300) where gati-operator's services log none per object. kopf 1.45 posts handler log
lines as Kubernetes Events only with `settings.posting.loggers`, off by default, so it writes no
Events; gati-operator's reconciler writes one per handler. Run with

    KUBECONFIG=... kopf run --quiet --standalone --namespace NS bench/baseline_kopf/operator.py
"""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client, config

from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import GATI_HANDLER, GROUP, VERSION
from gati_contracts.labels import OWNER_LABEL
from gati_contracts.workload import WorkloadPhase
from gati_reconciler.manifests import render_handler

FIELD_MANAGER = "kopf-baseline"
# Threads for sync handlers and client connections: kopf's default pool (CPUs + 4) would make
# the baseline wait on itself, which no one tuning for a thousand objects would leave.
WORKERS = 20

_api: client.ApiClient | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _api
    settings.execution.max_workers = WORKERS
    config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = WORKERS
    _api = client.ApiClient(configuration)


def _client() -> client.ApiClient:
    if _api is None:
        raise kopf.PermanentError("the kubernetes client is configured on startup")
    return _api


def _apply(obj: dict[str, Any]) -> None:
    """Server-side apply, so create, update and resume are the same idempotent call."""
    api = _client()
    apply = {
        "ConfigMap": client.CoreV1Api(api).patch_namespaced_config_map,
        "Service": client.CoreV1Api(api).patch_namespaced_service,
        "Deployment": client.AppsV1Api(api).patch_namespaced_deployment,
        "PodDisruptionBudget": client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget,
    }[obj["kind"]]
    apply(
        obj["metadata"]["name"],
        obj["metadata"]["namespace"],
        obj,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


@kopf.on.resume(GROUP, VERSION, GATI_HANDLER.plural)
@kopf.on.create(GROUP, VERSION, GATI_HANDLER.plural)
@kopf.on.update(GROUP, VERSION, GATI_HANDLER.plural, field="spec")
def reconcile(body: kopf.Body, **_: Any) -> None:
    try:
        handler = GatiHandler.model_validate(dict(body))
    except ValueError as error:
        raise kopf.PermanentError(f"invalid GatiHandler: {error}") from error
    objects = [_adoptable(obj) for obj in render_handler(handler)]
    kopf.adopt(objects, owner=body)
    for obj in objects:
        _apply(obj)


def _adoptable(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with its own copy of what `kopf.adopt` sets in place (name, namespace, labels,
    owner references): renders are immutable and share their metadata between renders."""
    metadata = obj["metadata"]
    return {
        **obj,
        "metadata": {
            **metadata,
            "labels": dict(metadata["labels"]),
            "ownerReferences": list(metadata["ownerReferences"]),
        },
    }


def _phase(deployment: kopf.Body) -> WorkloadPhase:
    spec, status = deployment.spec, deployment.status
    wanted = spec.get("replicas", 1)
    current = status.get("observedGeneration") == deployment.metadata.get("generation")
    updated = status.get("updatedReplicas", 0) >= wanted
    if current and updated and status.get("readyReplicas", 0) >= wanted:
        return WorkloadPhase.RUNNING
    return WorkloadPhase.PROGRESSING


@kopf.on.event("apps", "v1", "deployments", labels={OWNER_LABEL: kopf.PRESENT})
def deployment_changed(body: kopf.Body, type: str | None, namespace: str | None, **_: Any) -> None:
    if type == "DELETED" or namespace is None:
        return
    owners = [
        ref for ref in body.metadata.get("ownerReferences", []) if ref["kind"] == "GatiHandler"
    ]
    if not owners:
        return
    status = body.status
    patch = {
        "status": {
            "phase": str(_phase(body)),
            "replicas": status.get("replicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
        }
    }
    try:
        client.CustomObjectsApi(_client()).patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, GATI_HANDLER.plural, owners[0]["name"], patch
        )
    except client.ApiException as error:
        if error.status != 404:  # the handler is gone: its Deployment follows by GC
            raise
