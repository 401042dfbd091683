"""Applies that change nothing: the same request again over the version it stored.

Controllers re-apply everything they own on every reconcile, and most of it is unchanged
(gati's reconciler re-applies a handler's ConfigMap and Service byte for byte when only its
Deployment's image moves). Server-side apply is idempotent over its own result: the same
configuration from the same manager (same force, subresource and field validation) merged
over the version it stored sets every field to the value it already has, owns the fields it
already owns, prunes nothing, and contests no field another manager still owns (every such
field was contested, and settled, when the version was stored). Admission is idempotent too
(defaults fill only what is absent, a Service keeps its clusterIP). So the API server
answers with that version unchanged: no new resourceVersion, no watch event, the same
warnings. Remembering which request stored each version answers the repeat with one lookup
and a comparison of the request bytes instead of decoding, merging, diffing and admitting
the object again.

Sound for the reason the field manager's caches are: stored objects are never mutated, so
a version is identified by its dict; any later write stores a new dict, which no request
produced, and the entry of the version it replaced is dropped (`forget`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gati_kubesim.registry import ResourceType

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApplyRequest:
    """What decides an apply's result besides the object it is applied to."""

    manager: str
    force: bool
    field_validation: str
    subresource: str | None
    body: bytes


@dataclass(frozen=True)
class _Stored:
    version: Obj
    rt: ResourceType
    request: ApplyRequest
    warnings: tuple[str, ...]


class Reapplies:
    """The apply request that stored each current version, where one did."""

    def __init__(self) -> None:
        # By the id of the stored version, which the entry holds: the id cannot be reused
        # while remembered, and `forget` drops it once the version is replaced or deleted.
        self._stored: dict[int, _Stored] = {}

    def unchanged(
        self, rt: ResourceType, live: Obj, request: ApplyRequest
    ) -> tuple[str, ...] | None:
        """The warnings the apply that stored `live` gave, if `request` is that apply again
        (through the same resource type: a CRD's new schema admits anew); else None."""
        stored = self._stored.get(id(live))
        if (
            stored is None
            or stored.version is not live
            or stored.rt is not rt
            or stored.request != request
        ):
            return None
        return stored.warnings

    def remember(
        self, rt: ResourceType, version: Obj, request: ApplyRequest, warnings: list[str]
    ) -> None:
        """`request` applied through `rt` left `version` stored (never for a dry run)."""
        self._stored[id(version)] = _Stored(version, rt, request, tuple(warnings))

    def forget(self, version: Obj) -> None:
        """`version` is no longer stored."""
        stored = self._stored.get(id(version))
        if stored is not None and stored.version is version:
            del self._stored[id(version)]

    def __len__(self) -> int:
        return len(self._stored)
