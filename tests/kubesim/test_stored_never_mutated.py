"""No write ever changes an object version once it is stored.

Reads, watch events and the next write share stored objects instead of copying them, and
the field manager's and admission's caches key on their identity: one write path that
defaults, prunes or merges into a shared subtree would change what an earlier reader or
event saw and leave those caches stale. Every version stored over a run of the operator's
kinds of writes, built-in and custom, must still encode as it did when it was stored.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from gati_kubesim.api import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    Api,
    WriteOptions,
)
from gati_kubesim.registry import ResourceType
from gati_kubesim.server import KubeSim
from gati_kubesim.watch import WatchEvent
from kubesim.samples import GROUP, VERSION, deployment, handler, handler_crd

NS = "ns"
OPERATOR = WriteOptions("gati-operator", force=True)
CLIENT = WriteOptions("kubectl")


def _apply(api: Api, rt: ResourceType, name: str, body: dict[str, Any]) -> None:
    api.patch(rt, NS, name, None, APPLY_PATCH, json.dumps(body).encode(), OPERATOR)


def _patch(api: Api, rt: ResourceType, name: str, kind: str, body: Any) -> None:
    api.patch(rt, NS, name, None, kind, json.dumps(body).encode(), CLIENT)


def _status(api: Api, rt: ResourceType, name: str, status: dict[str, Any]) -> None:
    live = json.loads(json.dumps(api.get(rt, NS, name, None)))
    api.update(rt, NS, name, "status", {**live, "status": status}, CLIENT)


def _operator_writes(api: Api) -> None:
    deployments = api.resource("apps", "v1", "deployments")
    services = api.resource("", "v1", "services")
    configmaps = api.resource("", "v1", "configmaps")
    handlers = api.resource(GROUP, VERSION, "gatihandlers")
    api.create(handlers, NS, handler("web", NS, replicas=2), CLIENT)
    for image in ("echo:1", "echo:1", "echo:2"):
        _apply(
            api,
            configmaps,
            "web-env",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-env"}}
            | {"data": {"IMAGE": image}},
        )
        _apply(
            api,
            services,
            "web",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
            },
        )
        _apply(api, deployments, "web", deployment("web", image=image, **{"gati.dev/hash": image}))
        _status(api, handlers, "web", {"phase": "Progressing", "replicas": 1})
        _status(api, deployments, "web", {"observedGeneration": 1, "replicas": 2})
    _patch(api, deployments, "web", STRATEGIC_PATCH, {"spec": {"replicas": 3}})
    _patch(
        api,
        deployments,
        "web",
        JSON_PATCH,
        [{"op": "add", "path": "/metadata/annotations/x", "value": "y"}],
    )
    _patch(api, services, "web", MERGE_PATCH, {"metadata": {"annotations": {"a": "b"}}})
    _patch(api, handlers, "web", MERGE_PATCH, {"spec": {"port": 8080}})
    _status(api, services, "web", {"loadBalancer": {}})
    _status(api, handlers, "web", {"phase": "Running", "replicas": 2})
    live = json.loads(json.dumps(api.get(handlers, NS, "web", None)))
    api.update(handlers, NS, "web", None, {**live, "spec": {**live["spec"], "replicas": 4}}, CLIENT)
    _apply(
        api,
        configmaps,
        "web-env",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-env"}},
    )


def test_no_write_changes_a_stored_version() -> None:
    sim = KubeSim()
    api = sim.api
    stored: list[tuple[dict[str, Any], bytes]] = []

    def remember(rt: ResourceType, event: WatchEvent) -> None:
        stored.append((event.obj, msgspec.json.encode(event.obj)))

    sim.store.listeners.append(remember)
    crd_rt = api.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    api.create(crd_rt, "", handler_crd(), CLIENT)
    api.create(api.resource("", "v1", "namespaces"), "", {"metadata": {"name": NS}}, CLIENT)
    _operator_writes(api)
    kinds = {obj["kind"] for obj, _ in stored}
    assert {"ConfigMap", "Service", "Deployment", "GatiHandler"} <= kinds
    changed = [
        f"{obj['kind']} {obj['metadata']['name']} at {obj['metadata']['resourceVersion']}"
        for obj, encoded in stored
        if msgspec.json.encode(obj) != encoded
    ]
    assert changed == []
