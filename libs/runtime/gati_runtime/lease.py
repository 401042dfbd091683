"""Per-object leases in the NATS KV bucket `gati-leases`: one replica acts on an object at a time.

A JetStream consumer hands consecutive messages of one subject to different replicas, so two
replicas can work on the same object at once. controller-runtime prevents that inside one process
with its work queue; across processes we need shared state, and the bus already is shared state,
so a lease is one KV key per (scope, object):

- acquire: write the key only if the subject is empty (`Nats-Expected-Last-Subject-Sequence: 0`)
  or its last message is a release marker; the server's compare-and-set makes exactly one
  contender win.
- expiry: every write carries `Nats-TTL`, so the server removes the key of a replica that died
  without releasing; nobody has to trust another machine's clock.
- renew: rewrite the key expecting the revision we wrote last; losing that race means the lease
  expired and someone else took it, which the holder must treat as "stop acting".
- release: a delete marker written against our revision, so we never drop a lease we no longer hold.
  It is sent without waiting for the server's answer: nobody acts on that answer (a release that
  fails leaves the key to its TTL or its new holder), and a reconcile that waited for it held its
  consumer lane for one more round trip and wrote to the socket once more, where its message
  now leaves with the delivery's ack. The answer, when it comes, only feeds the re-take fast path.
- proof of no other holder: the bucket keeps one revision per key, so a compare-and-set that
  expected revision R succeeds only if nothing was written to the key after R (another holder's
  write, or an expiry, would have replaced R). A holder that re-takes a key by its own release
  (`Lease.follows` equal to what `released(key)` said earlier) therefore knows no other holder
  had the key at any moment in between: what it read after that release is as good as read
  under the lease.

The TTL is whole seconds (the server's unit for `Nats-TTL`) and at least one.

Writes and reads are plain requests on an inbox of the leases' own (`gati_runtime.replies`),
answered as nats-py's `js.publish` and `get_last_msg(direct=True)` answer (`gati_runtime.pub_ack`,
`gati_runtime.direct_get`), without nats-py's per-request NUID token, wait_for and json.loads:
a reconcile takes, renews or releases a lease about five times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import Header
from nats.js.errors import APIError

from gati_contracts.subjects import LEASES_BUCKET
from gati_contracts.tokens import encode_token
from gati_runtime.direct_get import DIRECT_GET, SEQUENCE, stored
from gati_runtime.pub_ack import WRONG_LAST_SEQUENCE, pub_ack
from gati_runtime.replies import Replies

log = structlog.get_logger(__name__)

_PREFIX: Final = f"$KV.{LEASES_BUCKET}."
_STREAM: Final = f"KV_{LEASES_BUCKET}"
_KV_OPERATION: Final = "KV-Operation"
_EXPECTED_LAST: Final = Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value
_TTL: Final = "Nats-TTL"
REQUEST_TIMEOUT: Final = 5.0
"""Seconds a write or read waits for the server's answer, nats-py's JetStream default."""
RELEASE_ANSWER_WAIT: Final = 5.0
"""Seconds a release's answer is waited for in the background before it is forgotten (lost
with a connection, say), so unanswered releases never pile up in the client."""


class LeaseRecord(msgspec.Struct, frozen=True):
    """What a lease key holds, readable with `nats kv get gati-leases <key>` when debugging."""

    holder: str
    ttl: int
    taken_at: float


@dataclass(frozen=True)
class Lease:
    key: str
    holder: str
    ttl: int
    revision: int
    follows: int
    """The revision the write that took or renewed it expected as the key's last (0: empty):
    nothing was written to the key between the two (see the module docstring)."""


def lease_key(kind: str, namespace: str, name: str) -> str:
    """One KV key per object; tokens keep names with dots or capitals unambiguous."""
    return ".".join(encode_token(part) for part in (kind.lower(), namespace, name))


def _ttl_seconds(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError(f"lease ttl must be positive seconds, got {ttl}")
    return max(1, math.ceil(ttl))


class Leases:
    """Leases of one `scope` (e.g. `reconcile`, `scale`): scopes never block each other."""

    def __init__(
        self, client: Client, holder: str, *, scope: str, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self._replies = Replies(client, timeout=timeout)
        self._holder = holder
        # A key's subject is `_keys` + key; a direct get of `_last_of` + key reads its last write.
        self._keys = f"{_PREFIX}{encode_token(scope)}."
        self._last_of = f"{DIRECT_GET}{_STREAM}.{self._keys}"
        # The revision of our own release marker per key: re-taking a key we let go (the
        # common case, a replica reconciling the same object again) is then one write, not
        # a failed write, a read and a second write. Bounded by the keys this replica touches.
        self._released: dict[str, int] = {}

    @property
    def holder(self) -> str:
        return self._holder

    def released(self, key: str) -> int | None:
        """The revision of this holder's release of `key` once the server confirmed it, as long
        as the next `acquire` of the key will expect it; None otherwise."""
        return self._released.get(key)

    async def _write(self, key: str, ttl: int, expected_last: int) -> Lease | None:
        record = LeaseRecord(holder=self._holder, ttl=ttl, taken_at=time.time())
        headers = {_EXPECTED_LAST: str(expected_last), _TTL: str(ttl)}
        payload = msgspec.json.encode(record)
        try:
            ack = pub_ack(await self._replies.request(self._keys + key, payload, headers))
        except APIError as error:
            if error.err_code in WRONG_LAST_SEQUENCE:
                return None
            raise
        return Lease(key=key, holder=self._holder, ttl=ttl, revision=ack.seq, follows=expected_last)

    async def _last(self, key: str) -> tuple[int, LeaseRecord | None] | None:
        """The key's last revision and record (None for a release marker), or None if empty."""
        message = stored(await self._replies.request(self._last_of + key, b""))
        if message is None:
            return None
        headers = message.headers or {}
        revision = int(headers.get(SEQUENCE, 0))
        if headers.get(_KV_OPERATION) or not message.data:
            return revision, None
        try:
            return revision, msgspec.json.decode(message.data, type=LeaseRecord)
        except msgspec.DecodeError:
            # Not ours to interpret; treat as held, so a stray write never grants two holders.
            return revision, LeaseRecord(holder="", ttl=0, taken_at=0.0)

    async def acquire(self, key: str, ttl: float) -> Lease | None:
        """The lease, or None while another holder has it. Our own live lease is taken over,
        so a replica restarted under the same holder name resumes instead of waiting it out."""
        seconds = _ttl_seconds(ttl)
        lease = await self._write(key, seconds, self._released.pop(key, 0))
        if lease is not None:
            return lease
        last = await self._last(key)
        if last is None:  # expired between our write and our read
            return await self._write(key, seconds, 0)
        revision, record = last
        if record is None or record.holder == self._holder:
            return await self._write(key, seconds, revision)
        return None

    async def renew(self, lease: Lease) -> Lease | None:
        """The extended lease, or None when it was lost (expired and possibly taken)."""
        return await self._write(lease.key, lease.ttl, lease.revision)

    async def release(self, lease: Lease) -> None:
        """Give the lease up at once; a lease already lost is left to its new holder.

        Returns once the release is handed to the connection, without its answer (see the
        module docstring); raises only when it cannot be sent (the connection is closed)."""
        headers = {_KV_OPERATION: "DEL", _EXPECTED_LAST: str(lease.revision)}
        subject = self._keys + lease.key
        answer = await self._replies.ask(subject, b"", headers, wait=RELEASE_ANSWER_WAIT)
        answer.add_done_callback(functools.partial(self._released_answer, lease.key))

    def _released_answer(self, key: str, answer: asyncio.Future[Msg]) -> None:
        if answer.cancelled() or answer.exception() is not None:
            return  # no answer in time: the next acquire of the key takes the slow path
        try:
            self._released[key] = pub_ack(answer.result()).seq
        except (NatsError, ValueError) as error:
            if not (isinstance(error, APIError) and error.err_code in WRONG_LAST_SEQUENCE):
                # The TTL frees the key anyway; a wrong last sequence: it was no longer ours.
                log.warning("lease release failed", key=key, error=repr(error))

    @contextlib.asynccontextmanager
    async def held(self, key: str, ttl: float) -> AsyncIterator[Lease | None]:
        """The lease for the block (None when another holder has it), released afterwards."""
        lease = await self.acquire(key, ttl)
        try:
            yield lease
        finally:
            if lease is not None:
                try:
                    await self.release(lease)
                except (NatsError, TimeoutError) as error:
                    # The TTL frees it anyway; the block's own outcome matters more.
                    log.warning("lease release failed", key=key, error=repr(error))
