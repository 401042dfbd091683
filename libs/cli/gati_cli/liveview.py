"""The live terminal view of `gati-operator dev`: what the operator made of each resource.

Rendering is a pure function of the listed objects, so it is tested without a terminal and the
same text can be printed once (`--once`) or redrawn in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CLEAR = "\x1b[H\x1b[2J"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _workload_row(obj: Mapping[str, Any], *extra: str) -> list[str]:
    status = _status(obj)
    meta = obj["metadata"]
    ready = f"{status.get('readyReplicas', 0)}/{obj['spec'].get('replicas', '-')}"
    return [f"{meta['namespace']}/{meta['name']}", *extra, str(status.get("phase", "-")), ready]


def render(
    handlers: Sequence[Mapping[str, Any]],
    modules: Sequence[Mapping[str, Any]],
    versions: Sequence[Mapping[str, Any]],
    *,
    events_per_second: float,
    stream_messages: int,
    services: Sequence[str],
    routed: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
) -> str:
    """`routed`: the routing tables (`traffic.routed_weights`); a version's WEIGHT is its share
    there, which for the stable version during a rollout is not its status weight."""
    lines = [
        f"gati-operator dev — stream GATI: {stream_messages} events, "
        f"{events_per_second:.1f}/s — services: {', '.join(services) or 'none'}",
        "",
        "HANDLERS",
        *_table(
            ["NAME", "PATH", "VERSION", "PHASE", "READY"],
            [
                _workload_row(h, h["spec"]["handlerPath"], h["spec"]["version"])
                for h in sorted(handlers, key=_key)
            ],
        ),
        "",
        "MODULES",
        *_table(
            ["NAME", "MODULE", "PHASE", "READY"],
            [_workload_row(m, m["spec"]["moduleName"]) for m in sorted(modules, key=_key)],
        ),
        "",
        "VERSIONS",
        *_table(
            ["NAME", "PATH", "VERSION", "PHASE", "WEIGHT", "STEP"],
            [_version_row(v, routed or {}) for v in sorted(versions, key=_key)],
        ),
    ]
    return "\n".join(lines) + "\n"


def _version_row(
    version: Mapping[str, Any], routed: Mapping[tuple[str, str], Mapping[str, int]]
) -> list[str]:
    status = _status(version)
    meta = version["metadata"]
    table = routed.get((meta["namespace"], str(status.get("handlerPath"))))
    version_id = version["spec"]["versionId"]
    weight = table.get(version_id, 0) if table is not None else status.get("currentWeight", 0)
    return [
        f"{meta['namespace']}/{meta['name']}",
        str(status.get("handlerPath", "-")),
        str(version["spec"]["versionId"]),
        str(status.get("phase", "-")),
        f"{weight}%",
        str(status.get("currentStep", "-")),
    ]


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]
