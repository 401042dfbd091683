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

Each question can also be sent without waiting for its answer (`ask_newest`, `ask_latest`,
`ask_version`): reads sent in one loop tick leave in one socket write, which is how a
reconcile sends its reads together with its lease (`gati_reconciler.reads`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from gati_contracts.events import ChangeEvent, ChangeType, decode_event
from gati_contracts.kinds import GATI_VERSION
from gati_contracts.subjects import cr_subject
from gati_runtime.direct_get import DIRECT_GET, stored
from gati_runtime.replies import Replies

REQUEST_TIMEOUT: Final = 5.0
"""Seconds a read waits for the server's answer, nats-py's JetStream default."""

T = TypeVar("T")


class _NextBySubject(msgspec.Struct):
    seq: int
    next_by_subj: str


_encode = msgspec.json.Encoder().encode


def _is_none(message: Msg) -> bool:
    return stored(message) is None


def _change(message: Msg) -> ChangeEvent | None:
    found = stored(message)
    return None if found is None else decode_event(found.data, ChangeEvent)


def _version(message: Msg) -> dict[str, Any] | None:
    event = _change(message)
    return None if event is None or event.type is ChangeType.DELETED else event.obj


class Answer(Generic[T]):
    """A read sent and not yet awaited: `result()` waits for it, `discard()` forgets it."""

    __slots__ = ("_answer", "_convert")

    def __init__(self, answer: asyncio.Future[Msg], convert: Callable[[Msg], T]) -> None:
        self._answer = answer
        self._convert = convert

    async def result(self) -> T:
        return self._convert(await self._answer)

    def discard(self) -> None:
        """Its answer will not be read: a late one is dropped, an error is not reported."""
        if self._answer.done():
            if not self._answer.cancelled():
                self._answer.exception()  # retrieved, so asyncio does not log it as lost
        else:
            self._answer.cancel()


class StreamState:
    """Reads by JetStream's direct get (the stream's `allow_direct`), sent as plain requests to
    an inbox of its own (`gati_runtime.replies`): nats-py's `get_msg` adds ~20-25 us of client
    CPU a read (a JSON request built with json.dumps, the answer lifted into a RawStreamMsg), and
    its `request` ~55 more. A reconcile makes two to four of these reads."""

    def __init__(self, client: Client, stream: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self._replies = Replies(client, timeout=timeout)
        self._direct = f"{DIRECT_GET}{stream}"

    async def ask_latest(self, subject: str) -> Answer[ChangeEvent | None]:
        """`latest(subject)`, sent now and read later."""
        return Answer(await self._replies.ask(f"{self._direct}.{subject}", b""), _change)

    async def ask_version(self, namespace: str, name: str) -> Answer[dict[str, Any] | None]:
        """`latest_version(namespace, name)`, sent now and read later."""
        subject = cr_subject(GATI_VERSION.kind, namespace, name)
        return Answer(await self._replies.ask(f"{self._direct}.{subject}", b""), _version)

    async def ask_newest(self, subject: str, sequence: int) -> Answer[bool]:
        """`is_newest(subject, sequence)`, sent now and read later."""
        request = _encode(_NextBySubject(seq=sequence + 1, next_by_subj=subject))
        return Answer(await self._replies.ask(self._direct, request), _is_none)

    async def latest(self, subject: str) -> ChangeEvent | None:
        """The last change stored on `subject`, None when there is none (never was, or the
        stream's limits dropped its history)."""
        return await (await self.ask_latest(subject)).result()

    async def latest_version(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The GatiVersion `namespace/name` as last seen, None when none exists (or it was
        deleted, or the stream's limits dropped its history)."""
        return await (await self.ask_version(namespace, name)).result()

    async def is_newest(self, subject: str, sequence: int) -> bool:
        """Whether no message after `sequence` is stored on `subject`.

        Asked as "the first message of `subject` from `sequence + 1` on" (a direct get by
        `next_by_subj`): the usual answer, none, is a bare 404 status, where the subject's last
        message would carry its whole object (a Deployment, managedFields and all) to be
        dropped unread; the stale case still gets that message. The stream drops its oldest
        messages first (age, bytes), so a message past its limits with nothing after it is
        still the newest state recorded of its object."""
        return await (await self.ask_newest(subject, sequence)).result()
