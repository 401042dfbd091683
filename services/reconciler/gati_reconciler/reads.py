"""The stream reads of one reconcile, sent together with its lease when the lease vouches for them.

A reconcile reads the stream under its object's lease: whether its event is still the newest of
its subject, the owner's last recorded state (for a Deployment's or GatiVersion's event) and the
handler's GatiVersion. Made one after another after the lease, that is three more round trips,
each a socket write and a wakeup, where the lease's own write could have carried them all.

They may leave with the lease's write, before the lease is granted, when the lease proves that
nothing could have happened between the reads and the lease:
- this replica released the object's lease at revision R, and the server confirmed R
  (`Leases.released`) before the reads were sent, so they ran after R was stored;
- the lease is then taken by a compare-and-set expecting R (`Lease.follows == R`). The bucket
  keeps one revision per key, so nothing was written to the key after R: no other replica held
  the lease at any moment from R until ours (a holder writes the key to take it; an expiry of
  someone's lease would have replaced R as well), and inside this process the owner's lock
  serializes. Whatever another replica read or did under the lease happened before R, so the
  early reads see at least what reads under our lease would have seen.
When the proof fails (another holder came between, our release is not confirmed yet, or the key
is new to this replica) the early reads are dropped and sent again once the lease is held, all
in one write: one round trip after the lease instead of one per read.

The same proof spares a Deployment's event its second newest-check. That event was checked
before the lock (`is_newest`, to drop superseded events without a lease); if our release was
confirmed before that check and the lease follows it, no other replica can have handled a newer
event of the subject since the check (it would have needed the lease), and this process handles
a subject's events one at a time, so the check still holds under the lease.
"""

from __future__ import annotations

from typing import Any

from gati_contracts.events import ChangeEvent
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.subjects import cr_subject
from gati_reconciler.stream_state import Answer, StreamState
from gati_reconciler.targets import Owner


class Reads:
    """A reconcile's reads: each answered by the read sent early, if there was one, else read
    when asked for. A read sent early answers once; asked again, it is read again."""

    def __init__(self, streams: StreamState, owner: Owner, subject: str, sequence: int) -> None:
        """`subject` and `sequence`: the event's."""
        self._streams = streams
        self._owner = owner
        self._subject = subject
        self._sequence = sequence
        self._newest_known = False
        self._newest: Answer[bool] | None = None
        self._owner_change: Answer[ChangeEvent | None] | None = None
        self._version: Answer[dict[str, Any] | None] | None = None

    async def send(self, *, newest: bool, owner: bool) -> None:
        """Send now the reads the reconcile will make: the event's newest-check (`newest`),
        the owner's last change (`owner`) and, for a handler, its GatiVersion. Returns without
        yielding to the loop (once the stream reader's inbox exists), so a write sent right
        after, the lease's, leaves in the same socket write."""
        if newest:
            self._newest = await self._streams.ask_newest(self._subject, self._sequence)
        if owner:
            self._owner_change = await self._streams.ask_latest(self._owner_subject)
        if self._owner.kind is GATI_HANDLER:
            self._version = await self._streams.ask_version(self._owner.namespace, self._owner.name)

    def vouched(self, *, newest: bool) -> None:
        """The lease proved what was sent early as good as read under it; with `newest`, the
        event's newest-check made before the lock as well (see the module docstring)."""
        self._newest_known = newest

    def discard(self) -> None:
        """Drop what was sent early and not used: from here on every read is made when asked."""
        for answer in (self._newest, self._owner_change, self._version):
            if answer is not None:
                answer.discard()
        self._newest = self._owner_change = self._version = None

    @property
    def _owner_subject(self) -> str:
        return cr_subject(self._owner.kind.kind, self._owner.namespace, self._owner.name)

    async def newest(self) -> bool:
        """Whether the event is still the newest of its subject (`StreamState.is_newest`)."""
        if self._newest_known:
            return True
        answer, self._newest = self._newest, None
        if answer is not None:
            return await answer.result()
        return await self._streams.is_newest(self._subject, self._sequence)

    async def owner_change(self) -> ChangeEvent | None:
        """The owner's last recorded change (`StreamState.latest`)."""
        answer, self._owner_change = self._owner_change, None
        if answer is not None:
            return await answer.result()
        return await self._streams.latest(self._owner_subject)

    async def version(self) -> dict[str, Any] | None:
        """The handler's GatiVersion as last recorded (`StreamState.latest_version`)."""
        answer, self._version = self._version, None
        if answer is not None:
            return await answer.result()
        return await self._streams.latest_version(self._owner.namespace, self._owner.name)
