"""The OpenAPI documents clients download (`/openapi/v2`, `/openapi/v3`).

kubectl reads them to learn each kind's schema and whether the server supports server-side
field validation; custom resources are described from their CRD schema so `kubectl apply`
and `kubectl explain` see the fields a CRD declares.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from gati_kubesim.registry import Registry, ResourceType

_INFO = {"title": "Kubernetes", "version": "v1.32.0-kubesim"}


def _definition_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def _schema(rt: ResourceType) -> dict[str, Any]:
    base: dict[str, Any] = (
        dict(rt.schema)
        if rt.schema
        else {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    props = dict(base.get("properties") or {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    base["properties"] = props
    base["x-kubernetes-group-version-kind"] = [
        {"group": rt.group, "version": rt.version, "kind": rt.kind}
    ]
    return base


def v2(registry: Registry) -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": _INFO,
        "paths": {},
        "definitions": {_definition_name(rt): _schema(rt) for rt in registry if rt.custom},
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _item_path(rt: ResourceType) -> str:
    prefix = f"/{_gv_path(rt.group, rt.version)}"
    if rt.namespaced:
        prefix += "/namespaces/{namespace}"
    return f"{prefix}/{rt.plural}/{{name}}"


def _paths(types: list[ResourceType]) -> dict[str, Any]:
    """PATCH operations tagged with their kind: kubectl looks for `fieldValidation` there to
    decide that the server validates fields itself (and skips client-side validation)."""
    paths: dict[str, Any] = {}
    for rt in types:
        paths[_item_path(rt)] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": rt.group,
                    "version": rt.version,
                    "kind": rt.kind,
                },
                "parameters": [
                    {"name": p, "in": "query", "schema": {"type": "string"}} for p in _QUERY_PARAMS
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return paths


def v3_group_version(registry: Registry, path: str) -> dict[str, Any] | None:
    for group, versions in registry.groups().items():
        for version in versions:
            if _gv_path(group, version) == path:
                types = registry.resources(group, version)
                return {
                    "openapi": "3.0.0",
                    "info": _INFO,
                    "paths": _paths(types),
                    "components": {
                        "schemas": {_definition_name(rt): _schema(rt) for rt in types if rt.custom}
                    },
                }
    return None


def v3_index(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.groups().items():
        for version in versions:
            path = _gv_path(group, version)
            doc = v3_group_version(registry, path)
            digest = hashlib.sha256(msgspec.json.encode(doc)).hexdigest()[:32].upper()
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
