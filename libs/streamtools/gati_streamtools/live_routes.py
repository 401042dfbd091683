"""The routing tables now: the current value of each key of the KV bucket `gati-routes`.

nats-py lists a bucket's keys through a watcher that can report the end of the listing before it
has handed out what it already received (nats-py #842, the race `kv.history` shows too), so a
listing can come back short or empty without an error. A bucket is a stream (`KV_<bucket>`, one
subject per key), so this reads that stream with the tools' reader, which ends at the last
message the server counted, never earlier: the last message of a key is its value, unless it is
a delete, a purge, or a server's removal marker, which leave the key without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from gati_contracts.events import EventDecodeError, RoutesEvent, decode_event
from gati_contracts.subjects import ROUTES_BUCKET
from gati_runtime.provisioning import KV_STREAM_PREFIX
from gati_streamtools.reader import StoredMessage, read_range

_TOMBSTONE_HEADERS: Final = ("KV-Operation", "Nats-Marker-Reason")
"""A client's delete or purge, or (nats-server 2.11+) a marker the server placed when it removed
the key's value: either way the key holds nothing now."""


@dataclass(frozen=True)
class LiveRoutes:
    tables: list[RoutesEvent] = field(default_factory=list)
    """One per path, in key order."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """Keys whose value is not a routing table, with the decoder's reason: shown, not dropped."""


async def live_tables(js: JetStreamContext, bucket: str = ROUTES_BUCKET) -> LiveRoutes:
    """Every path's table, none before timescape has created the bucket."""
    stream = KV_STREAM_PREFIX + bucket
    prefix = f"$KV.{bucket}."
    latest: dict[str, StoredMessage] = {}
    try:
        async for batch in read_range(js, stream, [f"{prefix}>"]):
            for message in batch:
                latest[message.subject.removeprefix(prefix)] = message
    except NotFoundError:
        return LiveRoutes()
    routes = LiveRoutes()
    for key in sorted(latest):
        message = latest[key]
        if any(header in message.headers for header in _TOMBSTONE_HEADERS):
            continue
        try:
            routes.tables.append(decode_event(message.data, RoutesEvent))
        except EventDecodeError as error:
            routes.unreadable[key] = str(error)
    return routes
