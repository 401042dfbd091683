"""What the stream last recorded per subject, read without the API server.

The stream keeps every change the watcher saw, so the newest message of a subject is the latest
known state of its object: one stream read, no API request, no informer cache to keep warm in
every replica. Two questions are answered from it:
- a handler's GatiVersion as last seen (`latest_version`). It may trail the API server by the
  watcher's lag; that is safe because a version's change is itself an event the reconciler
  consumes, and the pass it triggers reads the newer state;
- whether an event is still the newest of its subject (`is_newest`): the per-subject
  stream-sequence guard. An event behind which a newer one of the same object is stored may
  show a state that no longer holds (a replica got it late, or it was redelivered); the newer
  event carries the work, so the older one is only worth acting on if it is the newest.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError

from gati_contracts.events import ChangeEvent, ChangeType, decode_event
from gati_contracts.kinds import GATI_VERSION
from gati_contracts.subjects import cr_subject
from gati_runtime.nats_status import NOT_FOUND, status_code

REQUEST_TIMEOUT: Final = 5.0
"""Seconds a read waits for the server's answer, nats-py's JetStream default."""


class _NextBySubject(msgspec.Struct):
    seq: int
    next_by_subj: str


_encode = msgspec.json.Encoder().encode


class StreamState:
    """Reads by JetStream's direct get (the stream's `allow_direct`), sent as plain requests:
    nats-py's `get_msg` adds ~20-25 us of client CPU a read (a JSON request built with
    json.dumps, the answer lifted into a RawStreamMsg) to the ~90 us of the round trip, and a
    reconcile makes two to four of these reads."""

    def __init__(self, client: Client, stream: str) -> None:
        self._client = client
        self._direct = f"$JS.API.DIRECT.GET.{stream}"

    async def _read(self, subject: str, payload: bytes) -> Msg | None:
        """The stored message the request names, None when the server has none (404)."""
        message = await self._client.request(subject, payload, timeout=REQUEST_TIMEOUT)
        status = status_code(message.headers)
        if status is None:
            return message
        if status == NOT_FOUND:
            return None
        raise APIError.from_msg(message)  # a 503 as ServiceUnavailableError, as nats-py does

    async def latest(self, subject: str) -> ChangeEvent | None:
        """The last change stored on `subject`, None when there is none (never was, or the
        stream's limits dropped its history)."""
        message = await self._read(f"{self._direct}.{subject}", b"")
        return None if message is None else decode_event(message.data, ChangeEvent)

    async def latest_version(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The GatiVersion `namespace/name` as last seen, None when none exists (or it was
        deleted, or the stream's limits dropped its history)."""
        event = await self.latest(cr_subject(GATI_VERSION.kind, namespace, name))
        return None if event is None or event.type is ChangeType.DELETED else event.obj

    async def is_newest(self, subject: str, sequence: int) -> bool:
        """Whether no message after `sequence` is stored on `subject`.

        Asked as "the first message of `subject` from `sequence + 1` on" (a direct get by
        `next_by_subj`): the usual answer, none, is a bare 404 status, where the subject's last
        message would carry its whole object (a Deployment, managedFields and all) to be
        dropped unread; the stale case still gets that message. The stream drops its oldest
        messages first (age, bytes), so a message past its limits with nothing after it is
        still the newest state recorded of its object."""
        request = _encode(_NextBySubject(seq=sequence + 1, next_by_subj=subject))
        return await self._read(self._direct, request) is None
