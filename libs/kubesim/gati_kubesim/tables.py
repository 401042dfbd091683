"""Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for on `get`.

kubectl shows exactly the columns the server returns, so printer columns of a CRD appear in
`kubectl get` only if they are rendered here, with dates turned into ages as the real
server does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from gati_kubesim import jsonpath
from gati_kubesim.registry import PrinterColumn, ResourceType

Obj = dict[str, Any]

_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace.",
}
_AGE = PrinterColumn(
    "Age",
    "date",
    ".metadata.creationTimestamp",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def human_duration(seconds: float) -> str:
    """The short ages kubectl prints (`45s`, `3m12s`, `5h`, `2d`), as the server formats them."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def age(timestamp: Any, now: dt.datetime | None = None) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        when = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration(((now or dt.datetime.now(dt.UTC)) - when).total_seconds())


def _cell(column: PrinterColumn, obj: Obj) -> Any:
    value = jsonpath.first(obj, column.json_path)
    if column.type == "date":
        return age(value)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        import msgspec

        return msgspec.json.encode(value).decode()
    return value


def _deployment_cells(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
    ]


def _service_cells(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", ""), spec.get("clusterIP", ""), "<none>", ports or "<none>"]


_BUILTIN: dict[tuple[str, str], tuple[list[tuple[str, str]], Callable[[Obj], list[Any]]]] = {
    ("apps", "deployments"): (
        [("Ready", "string"), ("Up-to-date", "string"), ("Available", "string")],
        _deployment_cells,
    ),
    ("", "namespaces"): (
        [("Status", "string")],
        lambda o: [(o.get("status") or {}).get("phase", "")],
    ),
    ("", "configmaps"): (
        [("Data", "string")],
        lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})],
    ),
    ("", "secrets"): (
        [("Type", "string"), ("Data", "string")],
        lambda o: [o.get("type", ""), len(o.get("data") or {})],
    ),
    ("", "services"): (
        [
            ("Type", "string"),
            ("Cluster-IP", "string"),
            ("External-IP", "string"),
            ("Port(s)", "string"),
        ],
        _service_cells,
    ),
}


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    cols: list[dict[str, Any]] = [dict(_NAME)]
    builtin = _BUILTIN.get((rt.group, rt.plural))
    if builtin is not None:
        cols += [
            {"name": n, "type": t, "format": "", "description": n, "priority": 0}
            for n, t in builtin[0]
        ]
    for c in rt.printer_columns:
        cols.append(
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            }
        )
    if not any(c.type == "date" and c.json_path == _AGE.json_path for c in rt.printer_columns):
        cols.append(
            {
                "name": _AGE.name,
                "type": "string",
                "format": "",
                "description": _AGE.description,
                "priority": 0,
            }
        )
    return cols


def _row(rt: ResourceType, obj: Obj, include_object: str) -> dict[str, Any]:
    cells: list[Any] = [obj["metadata"]["name"]]
    builtin = _BUILTIN.get((rt.group, rt.plural))
    if builtin is not None:
        cells += builtin[1](obj)
    cells += [_cell(c, obj) for c in rt.printer_columns]
    if not any(c.type == "date" and c.json_path == _AGE.json_path for c in rt.printer_columns):
        cells.append(age(obj["metadata"].get("creationTimestamp")))
    row: dict[str, Any] = {"cells": cells}
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    return row


def table(
    rt: ResourceType,
    objs: Iterable[Obj],
    list_meta: dict[str, Any],
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Obj:
    out: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "rows": [_row(rt, o, include_object) for o in objs],
    }
    if with_columns:
        out["columnDefinitions"] = column_definitions(rt)
    return out


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a Table (kubectl lists alternatives by preference)."""
    for part in accept.split(","):
        params = {
            p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in part.split(";")[1:]
        }
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v") in ("v1", "v1beta1")
        if part.split(";")[0].strip() in ("application/json", "*/*", "application/*"):
            return False
    return False
