"""Keeping a lease alive while the reconcile that holds it runs in the caller's own task.

A reconcile almost always ends long before a third of the lease's TTL, so renewing used to cost
one extra task and one `asyncio.wait` per reconcile for a renewal that nearly never happened.
Here the reconcile is awaited inline and a loop timer wakes only when a renewal is due: its
cost per reconcile is one timer armed and cancelled. When a renewal finds the lease lost, the
reconciling task is cancelled, and the holder tells that cancellation from any other (a
shutdown) with `cut_short`.

That cancel can be lost: Python 3.11's `asyncio.wait_for`, all through nats-py's requests,
drops a cancel that lands as its inner step completes (gh-86296), and the reconcile then ends
as if never cut. The cancel still counts in the task's `cancelling()`, and the lane task goes on
to later messages, where it would turn the next request timeout of `KubeTransport` (which tells
its own cancel from a caller's by that count) into a CancelledError that ends the lane. So a
cut the holder never raised is taken back when the renewal stops.
"""

from __future__ import annotations

import asyncio
import contextlib

from gati_runtime.lease import Lease, Leases


class LeaseRenewal:
    """Renews `lease` every `every` seconds on behalf of the task that created it."""

    def __init__(self, leases: Leases, lease: Lease, every: float) -> None:
        self._leases = leases
        self._held: Lease | None = lease
        self._every = every
        self._holder = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self._failure: str | None = None
        self._cut_pending = False
        """The holder was cancelled for the lost lease and that cancel is not yet taken back."""
        self._stopping = False
        self._renewing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(every, self._due)

    def _due(self) -> None:
        self._timer = None
        self._renewing = self._loop.create_task(self._renew())

    async def _renew(self) -> None:
        assert self._held is not None  # the timer is only armed while the lease is held
        try:
            renewed = await self._leases.renew(self._held)
        except Exception as error:  # NATS away: whether the lease still holds is unknown
            self._cut(f"the object's lease could not be renewed: {error!r}")
            return
        finally:
            self._renewing = None
        if renewed is None:
            # Expired (this process stalled, or NATS was away longer than the TTL) and maybe
            # taken: the reconcile must stop acting on the object.
            self._held = None
            self._cut("the object's lease was lost during the reconcile")
            return
        self._held = renewed
        if not self._stopping:
            self._timer = self._loop.call_later(self._every, self._due)

    def _cut(self, reason: str) -> None:
        # Once the holder is stopping, its reconcile is over: nothing is left to cancel.
        if self._stopping or self._holder is None:
            return
        self._failure = reason
        self._cut_pending = self._holder.cancel()

    def cut_short(self) -> str | None:
        """Why the holder's `CancelledError` came from the lease, or None when it did not (a
        shutdown). When it did, the cancellation is consumed, so the holder may return an
        outcome instead of ending."""
        if self._failure is None or self._holder is None:
            return None
        self._take_back_cut()
        return self._failure

    def _take_back_cut(self) -> None:
        if self._cut_pending and self._holder is not None:
            self._cut_pending = False
            self._holder.uncancel()

    async def stop(self) -> Lease | None:
        """Ends the renewals; the lease still held (its newest revision), or None when lost.

        A renewal already sent is awaited rather than abandoned, since its answer is the
        revision a release has to name."""
        self._stopping = True
        self._take_back_cut()  # still pending only when the holder never raised it
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        renewing = self._renewing
        if renewing is not None:
            # A renewal that fails here leaves the last known revision, whose release then
            # fails the same way; the TTL frees the key.
            with contextlib.suppress(Exception):
                await asyncio.shield(renewing)
        return self._held
