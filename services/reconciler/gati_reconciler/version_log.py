"""A handler's GatiVersion as the watcher last recorded it on the bus, read without the API server.

The stream keeps every change the watcher saw per subject, so the newest message on
`gati.cr.gativersion.<namespace>.<name>` is the version's latest known state: one stream read,
no API request, no informer cache to keep warm in every replica. It may trail the API server by
the watcher's lag; that is safe because a version's change is itself an event the reconciler
consumes, and the pass it triggers reads the newer state.
"""

from __future__ import annotations

from typing import Any

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from gati_contracts.events import ChangeEvent, ChangeType, decode_event
from gati_contracts.kinds import GATI_VERSION
from gati_contracts.subjects import cr_subject


class VersionLog:
    def __init__(self, js: JetStreamContext, stream: str) -> None:
        self._js = js
        self._stream = stream

    async def latest(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The GatiVersion `namespace/name` as last seen, None when none exists (or it was
        deleted, or the stream's limits dropped its history)."""
        subject = cr_subject(GATI_VERSION.kind, namespace, name)
        try:
            message = await self._js.get_last_msg(self._stream, subject)
        except NotFoundError:
            return None
        event = decode_event(message.data or b"", ChangeEvent)
        return None if event.type is ChangeType.DELETED else event.obj
