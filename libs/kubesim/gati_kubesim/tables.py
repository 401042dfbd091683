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
from gati_kubesim.selectors import selector_from_label_selector

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
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
        selector_from_label_selector(spec.get("selector")) or "<none>",
    ]


def _service_cells(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", ""), spec.get("clusterIP", ""), "<none>", ports or "<none>"]


# Built-in columns after Name: (name, priority); priority 1 shows only with `-o wide`.
_BUILTIN: dict[tuple[str, str], tuple[list[tuple[str, int]], Callable[[Obj], list[Any]]]] = {
    ("apps", "deployments"): (
        [
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ],
        _deployment_cells,
    ),
    ("apps", "statefulsets"): (
        [("Ready", 0), ("Containers", 1), ("Images", 1)],
        lambda o: [_deployment_cells(o)[i] for i in (0, 3, 4)],
    ),
    ("", "namespaces"): ([("Status", 0)], lambda o: [(o.get("status") or {}).get("phase", "")]),
    ("", "configmaps"): (
        [("Data", 0)],
        lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})],
    ),
    ("", "secrets"): (
        [("Type", 0), ("Data", 0)],
        lambda o: [o.get("type", ""), len(o.get("data") or {})],
    ),
    ("", "services"): (
        [("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0)],
        _service_cells,
    ),
}


def _definition(
    name: str, type_: str, priority: int, description: str = "", format_: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "format": format_,
        "description": description or name,
        "priority": priority,
    }


def _layout(rt: ResourceType) -> tuple[list[dict[str, Any]], Callable[[Obj], list[Any]]]:
    """Column definitions and the row function, in the order the real server prints them:
    Name; a CRD's printer columns (Age alone when it declares none); a built-in's columns
    with Age after those kubectl shows without `-o wide`."""
    age_def = _definition(_AGE.name, "string", 0, _AGE.description)

    def name(o: Obj) -> Any:
        return o["metadata"]["name"]

    def created(o: Obj) -> Any:
        return age(o["metadata"].get("creationTimestamp"))

    builtin = _BUILTIN.get((rt.group, rt.plural))
    if builtin is not None:
        names, cells = builtin
        split = next((i for i, (_, priority) in enumerate(names) if priority), len(names))
        defs = [_definition(n, "string", p) for n, p in names]
        columns = [dict(_NAME), *defs[:split], age_def, *defs[split:]]

        def builtin_row(o: Obj) -> list[Any]:
            values = cells(o)
            return [name(o), *values[:split], created(o), *values[split:]]

        return columns, builtin_row
    printer = rt.printer_columns or ((_AGE,) if rt.custom else ())
    if not printer:
        return [dict(_NAME), age_def], lambda o: [name(o), created(o)]
    columns = [dict(_NAME)] + [
        _definition(c.name, c.type, c.priority, c.description, c.format) for c in printer
    ]
    return columns, lambda o: [name(o), *(_cell(c, o) for c in printer)]


def _row(cells: list[Any], obj: Obj, include_object: str) -> dict[str, Any]:
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
) -> Obj:
    columns, cells = _layout(rt)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": [_row(cells(o), o, include_object) for o in objs],
    }


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
