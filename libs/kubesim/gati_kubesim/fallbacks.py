"""Stand-ins for `fieldmanager` and `openapi` until those pure modules land.

They are written in parallel by another engineer; `implementations` picks theirs as soon as
the module exists, and this file is deleted then. Scope is deliberately small: lists are
atomic and only the schema keywords the project's CRDs use are checked.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

from gati_kubesim.errors import Cause

Obj = dict[str, Any]


class ApplyError(ValueError):
    """An apply body that cannot be typed; only the real module detects these."""


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts


_UNOWNED_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
}


def _leaves(obj: Obj, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for k, v in obj.items():
        if not prefix and k in ("apiVersion", "kind"):
            continue
        if prefix == ("metadata",) and k in _UNOWNED_META:
            continue
        path = (*prefix, k)
        if isinstance(v, dict) and v:
            yield from _leaves(v, path)
        else:
            yield path


def _to_fields(paths: set[tuple[str, ...]]) -> Obj:
    root: Obj = {}
    for p in sorted(paths):
        node = root
        for part in p:
            node = node.setdefault(f"f:{part}", {})
    return root


def _from_fields(fields: Obj, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for k, v in fields.items():
        if not k.startswith("f:"):
            continue
        path = (*prefix, k[2:])
        if v:
            out |= _from_fields(v, path)
        else:
            out.add(path)
    return out


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _delete(obj: Obj, path: tuple[str, ...]) -> None:
    parents = [obj]
    for part in path[:-1]:
        nxt = parents[-1].get(part)
        if not isinstance(nxt, dict):
            return
        parents.append(nxt)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if not parents[depth]:
            parents[depth - 1].pop(path[depth - 1], None)


def _merge(live: Obj, applied: Obj) -> Obj:
    out = dict(live)
    for k, v in applied.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _entries(obj: Obj) -> list[Obj]:
    return [dict(e) for e in obj.get("metadata", {}).get("managedFields") or []]


def _entry(
    manager: str, op: str, api_version: str, paths: set[tuple[str, ...]], subresource: str | None
) -> Obj:
    e: Obj = {
        "manager": manager,
        "operation": op,
        "apiVersion": api_version,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fieldsType": "FieldsV1",
        "fieldsV1": _to_fields(paths),
    }
    if subresource:
        e["subresource"] = subresource
    return e


def server_side_apply(
    live: Obj | None,
    applied: Obj,
    manager: str,
    force: bool,
    gvk: str,
    subresource: str | None = None,
) -> Obj:
    applied_paths = set(_leaves(applied))
    base: Obj = copy.deepcopy(live) if live is not None else {}
    entries = _entries(base)
    mine = next(
        (
            e
            for e in entries
            if e["manager"] == manager
            and e["operation"] == "Apply"
            and e.get("subresource") == subresource
        ),
        None,
    )
    previous = _from_fields(mine["fieldsV1"]) if mine else set()
    conflicts: list[tuple[str, str]] = []
    others: list[tuple[Obj, set[tuple[str, ...]]]] = []
    for e in entries:
        if e is mine:
            continue
        owned = _from_fields(e.get("fieldsV1") or {})
        for p in owned & applied_paths:
            if _get(base, p) != _get(applied, p):
                conflicts.append((e["manager"], ".".join(p)))
        others.append((e, owned))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    owned_by_others: set[tuple[str, ...]] = set()
    kept: list[Obj] = []
    for e, owned in others:
        remaining = owned - applied_paths if force else owned
        owned_by_others |= remaining
        if remaining:
            kept.append({**e, "fieldsV1": _to_fields(remaining)})
    result = _merge(base, applied)
    for p in previous - applied_paths - owned_by_others:
        _delete(result, p)
    result.setdefault("metadata", {})
    result["metadata"]["managedFields"] = [
        *kept,
        _entry(manager, "Apply", str(applied.get("apiVersion", "")), applied_paths, subresource),
    ]
    return result


def record_update(old: Obj | None, new: Obj, manager: str, subresource: str | None = None) -> Obj:
    new_paths = set(_leaves(new))
    changed = {p for p in new_paths if old is None or _get(old, p) != _get(new, p)}
    entries = _entries(old) if old is not None else []
    out: list[Obj] = []
    mine: set[tuple[str, ...]] = set()
    for e in entries:
        owned = _from_fields(e.get("fieldsV1") or {}) & new_paths
        if (
            e["manager"] == manager
            and e["operation"] == "Update"
            and e.get("subresource") == subresource
        ):
            mine = owned
            continue
        owned -= changed
        if owned:
            out.append({**e, "fieldsV1": _to_fields(owned)})
    mine |= changed
    if mine:
        out.append(_entry(manager, "Update", str(new.get("apiVersion", "")), mine, subresource))
    result = dict(new)
    result["metadata"] = dict(new.get("metadata") or {}, managedFields=out)
    return result


def validate(obj: Obj, schema: Obj, path: str = "") -> list[Cause]:
    causes: list[Cause] = []
    typ = schema.get("type")
    where = path or "<root>"
    checks: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
    }
    if obj is None:
        return (
            causes
            if schema.get("nullable")
            else [Cause(where, "FieldValueRequired", "Required value")]
        )
    if typ in checks and (
        not isinstance(obj, checks[typ]) or (typ in ("integer", "number") and isinstance(obj, bool))
    ):
        return [Cause(where, "FieldValueTypeInvalid", f"Invalid value: must be of type {typ}")]
    if "enum" in schema and obj not in schema["enum"]:
        allowed = ", ".join(f'"{v}"' for v in schema["enum"])
        causes.append(
            Cause(
                where,
                "FieldValueNotSupported",
                f"Unsupported value: {obj!r}: supported values: {allowed}",
            )
        )
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        if "minimum" in schema and obj < schema["minimum"]:
            causes.append(
                Cause(
                    where,
                    "FieldValueInvalid",
                    f"Invalid value: {obj}: should be greater than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and obj > schema["maximum"]:
            causes.append(
                Cause(
                    where,
                    "FieldValueInvalid",
                    f"Invalid value: {obj}: should be less than or equal to {schema['maximum']}",
                )
            )
    if isinstance(obj, dict):
        for req in schema.get("required") or []:
            if req not in obj:
                causes.append(
                    Cause(f"{path}.{req}" if path else req, "FieldValueRequired", "Required value")
                )
        for k, sub in (schema.get("properties") or {}).items():
            if k in obj and k != "metadata":
                causes += validate(obj[k], sub, f"{path}.{k}" if path else k)
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            causes += validate(item, schema["items"], f"{path}[{i}]")
    return causes


def apply_defaults(obj: Obj, schema: Obj) -> Obj:
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for k, sub in (schema.get("properties") or {}).items():
        if k not in out and "default" in sub:
            out[k] = copy.deepcopy(sub["default"])
        if isinstance(out.get(k), dict):
            out[k] = apply_defaults(out[k], sub)
    return out


def prune(obj: Obj, schema: Obj, root: bool = True) -> Obj:
    if not isinstance(obj, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return obj
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    out: Obj = {}
    for k, v in obj.items():
        if root and k in ("apiVersion", "kind", "metadata"):
            out[k] = v
        elif k in props:
            out[k] = prune(v, props[k], False)
        elif isinstance(extra, dict):
            out[k] = prune(v, extra, False)
        elif extra is True:
            out[k] = v
    return out
