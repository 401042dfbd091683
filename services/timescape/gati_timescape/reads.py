"""What a pass reads of a list answer, decoded straight from the server's bytes.

A pass lists every handler, version and Deployment of its namespace. Through the official
client's typed models 2,500 Deployments (pod template, managedFields and all) took hundreds of
megabytes and most of a pass's CPU, only for the planner to read three fields of each; here a
list is decoded once by msgspec into just the fields the pass uses, so the rest of each object
is never built. Handlers and versions are validated into their models one object at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from gati_contracts.version import VersionPhase
from gati_timescape.pass_plan import DeploymentReplicas


class _Labels(msgspec.Struct):
    labels: dict[str, str] | None = None


class _Replicas(msgspec.Struct):
    replicas: int | None = None


class _Ready(msgspec.Struct, rename="camel"):
    ready_replicas: int | None = None


class _Deployment(msgspec.Struct):
    metadata: _Labels | None = None
    spec: _Replicas | None = None
    status: _Ready | None = None


class _Deployments(msgspec.Struct):
    items: list[_Deployment] | None = None


class _Items(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _Where(msgspec.Struct):
    namespace: str | None = None


class _Phase(msgspec.Struct):
    phase: str | None = None


class _VersionWhere(msgspec.Struct):
    metadata: _Where | None = None
    status: _Phase | None = None


class _Versions(msgspec.Struct):
    items: list[_VersionWhere] | None = None


def deployments(data: bytes) -> list[DeploymentReplicas]:
    """Readiness of each Deployment of a list; a field of the wrong type raises ValueError
    naming it (`msgspec.ValidationError`), as the typed client refused it."""
    listed = msgspec.json.decode(data, type=_Deployments)
    return [
        DeploymentReplicas(
            labels=(d.metadata.labels if d.metadata else None) or {},
            desired=(d.spec.replicas if d.spec else None) or 0,
            ready=(d.status.ready_replicas if d.status else None) or 0,
        )
        for d in listed.items or ()
    ]


def objects(data: bytes) -> Iterator[dict[str, Any]]:
    """The objects of a list, each as the JSON it is, decoded one at a time as they are taken:
    each is a slice of `data` until then, so a caller that keeps a model of each, not the
    JSON, never holds every object's JSON at once."""
    for item in msgspec.json.decode(data, type=_Items).items or ():
        yield msgspec.json.decode(item, type=dict[str, Any])


def version_phases(data: bytes) -> list[tuple[str | None, str]]:
    """(namespace, phase) of each GatiVersion of a list; one never reconciled is pending."""
    listed = msgspec.json.decode(data, type=_Versions)
    return [
        (
            v.metadata.namespace if v.metadata else None,
            (v.status.phase if v.status else None) or VersionPhase.PENDING.value,
        )
        for v in listed.items or ()
    ]
