"""Serving one stored object at every version of its resource.

Custom resources are stored once for all served versions (conversion strategy `None`: only
`apiVersion` changes). Events are one resource with two APIs, `v1` and `events.k8s.io/v1`,
whose fields have different names; the real server converts between them so an event
recorded through either API is seen by both (`kubectl describe` reads `v1`).
"""

from __future__ import annotations

from typing import Any

from gati_kubesim.registry import ResourceType

Obj = dict[str, Any]

# events.k8s.io/v1 name -> v1 name, for fields that differ only in name.
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_CORE_FIELDS = {v: k for k, v in _EVENT_FIELDS.items()}
EVENTS_KEY = ("", "events")


def _rename(obj: Obj, names: dict[str, str], api_version: str) -> Obj:
    out = {names.get(k, k): v for k, v in obj.items()}
    out["apiVersion"] = api_version
    return out


def present(rt: ResourceType, obj: Obj) -> Obj:
    """`obj` as a client of `rt` must see it; the stored dict itself when nothing differs."""
    stored_version = obj.get("apiVersion")
    if stored_version == rt.api_version:
        return obj
    if rt.storage_key == EVENTS_KEY:
        names = _CORE_FIELDS if rt.group else _EVENT_FIELDS
        return _rename(obj, names, rt.api_version)
    if rt.custom:
        return {**obj, "apiVersion": rt.api_version}
    return obj
