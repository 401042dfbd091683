"""Which version of a path answers a request: the one asked for, the one current at a date, or
one drawn by weight. Routers and `gati-operator routes` share this, so they never disagree.

The routing table is the `RoutesEvent` timescape publishes; it lists routable versions only, so
a decommissioned version can be found neither by id nor by date.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from gati_contracts.events import RoutesEvent, RouteVersion

_ENVELOPE_FIELDS = ("schema", "schemaVersion", "observedAt", "source")


def version_by_id(table: RoutesEvent, version_id: str) -> RouteVersion | None:
    return next((v for v in table.versions if v.version_id == version_id), None)


def version_as_of(table: RoutesEvent, when: datetime) -> RouteVersion | None:
    """The newest version activated at or before `when`: the API as a client saw it then.

    None when `when` precedes every activation; a version never activated is never current.
    """
    if when.tzinfo is None:
        raise ValueError("as-of time must carry a time zone")
    candidates = [
        (v.activated_at, index, v)
        for index, v in enumerate(table.versions)
        if v.activated_at is not None and v.activated_at <= when
    ]
    return max(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


def weighted_version(table: RoutesEvent, draw: float) -> RouteVersion | None:
    """The version whose share of the weights contains `draw`, a uniform number in [0, 1).

    The caller supplies the randomness, so the choice is reproducible in tests and a router
    may pin a client by hashing its id into `draw`. Weights sum to 100 in any table with
    versions (`RoutesEvent` enforces it), so only an empty table answers None.
    """
    if not 0 <= draw < 1:
        raise ValueError(f"draw must be in [0, 1), got {draw}")
    point = draw * 100
    for version in table.versions:
        if point < version.weight:
            return version
        point -= version.weight
    return None


def resolve(
    table: RoutesEvent,
    *,
    draw: float,
    version_id: str | None = None,
    as_of: datetime | None = None,
) -> RouteVersion | None:
    """An explicit version wins, then an as-of date, then the weights."""
    if version_id is not None:
        return version_by_id(table, version_id)
    if as_of is not None:
        return version_as_of(table, as_of)
    return weighted_version(table, draw)


def table_json(table: RoutesEvent) -> dict[str, Any]:
    """`{namespace, path, defaultVersion, versions}`: the table without its bus envelope, as
    `gati-operator routes --json` prints it."""
    plain: dict[str, Any] = msgspec.to_builtins(table)
    return {key: value for key, value in plain.items() if key not in _ENVELOPE_FIELDS}
