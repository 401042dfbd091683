"""The routing table as it was at an instant, folded from the `gati.routes.>` events.

Timescape publishes the whole table of a path on every change, so the table at T is, per path,
the last event stored at or before T: no arithmetic on weights, no guessing. A path whose table
was emptied (no versions) had no routes at T and is left out, as it is from the live table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gati_contracts.events import RoutesEvent
from gati_contracts.routing import table_json
from gati_streamtools.records import Record


def tables_at(
    records: Iterable[Record], when: datetime | None
) -> dict[tuple[str, str], RoutesEvent]:
    """The last table per (namespace, path) stored at or before `when` (None: the latest)."""
    tables: dict[tuple[str, str], RoutesEvent] = {}
    for record in records:
        if when is not None and record.message.time > when:
            break
        event = record.event
        if isinstance(event, RoutesEvent):
            tables[(event.namespace, event.path)] = event
    return tables


def routes_json(
    tables: Iterable[RoutesEvent], namespace: str | None = None
) -> list[dict[str, Any]]:
    """DESIGN §2's `routes --json` shape, sorted by namespace and path."""
    return [
        table_json(table)
        for table in sorted(tables, key=lambda t: (t.namespace, t.path))
        if table.versions and (namespace is None or table.namespace == namespace)
    ]
