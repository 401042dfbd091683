"""Discovery documents: how clients learn which resources exist and what they may do with them.

kubectl maps `get gh` to a resource through these lists (short names, kinds, verbs), so a
CRD registered a moment ago must already appear in them: they are built from the registry on
every request rather than cached.
"""

from __future__ import annotations

from typing import Any

from gati_kubesim.registry import Registry, ResourceType

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_STATUS_VERBS = ["get", "patch", "update"]


def _preferred(group: str, versions: list[str]) -> str:
    """Highest version by Kubernetes version priority (GA > beta > alpha, then number)."""

    def rank(v: str) -> tuple[int, int, int]:
        import re

        m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
        if not m:
            return (0, 0, 0)
        level = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
        return (level, int(m.group(1)), int(m.group(3) or 0))

    return max(versions, key=rank)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(group: str, versions: list[str]) -> dict[str, Any]:
    preferred = _preferred(group, versions)
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred},
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = registry.groups()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, v) for g, v in sorted(groups.items()) if g],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
        "storageVersionHash": "",
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    out = [main]
    if rt.has_status:
        out.append(
            {
                "name": f"{rt.plural}/status",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": _STATUS_VERBS,
            }
        )
    if rt.scale is not None:
        out.append(
            {
                "name": f"{rt.plural}/scale",
                "singularName": "",
                "namespaced": rt.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": _STATUS_VERBS,
            }
        )
    return out


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.resources(group, version)
    if not resources:
        return None
    entries: list[dict[str, Any]] = []
    for rt in sorted(resources, key=lambda r: r.plural):
        entries += _resource_entries(rt)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether the client asks for aggregated discovery v2 before plain JSON, as kubectl does."""
    for part in accept.split(","):
        params = {
            p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in part.split(";")[1:]
        }
        if params.get("as") == "APIGroupDiscoveryList" and params.get("v") == "v2":
            return params.get("g") == "apidiscovery.k8s.io"
        if part.split(";")[0].strip() in ("application/json", "*/*"):
            return False
    return False


def _resource_discovery(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    subresources: list[dict[str, Any]] = []
    if rt.has_status:
        subresources.append(
            {
                "subresource": "status",
                "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                "verbs": _STATUS_VERBS,
            }
        )
    if rt.scale is not None:
        subresources.append(
            {
                "subresource": "scale",
                "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                "verbs": _STATUS_VERBS,
            }
        )
    if subresources:
        out["subresources"] = subresources
    return out


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """`/api` (core) or `/apis` as one APIGroupDiscoveryList: every group, version and
    resource in one answer, versions in preference order."""
    items: list[dict[str, Any]] = []
    for group, versions in sorted(registry.groups().items()):
        if (group == "") != core:
            continue
        preferred = _preferred(group, versions)
        ordered = [preferred, *(v for v in versions if v != preferred)]
        items.append(
            {
                "metadata": {"name": group},
                "versions": [
                    {
                        "version": v,
                        "resources": [
                            _resource_discovery(rt)
                            for rt in sorted(registry.resources(group, v), key=lambda r: r.plural)
                        ],
                        "freshness": "Current",
                    }
                    for v in ordered
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
