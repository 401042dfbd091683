"""Passes over a key shared by every request that arrives before one of them starts.

A pass reads its namespace afresh, so one pass answers any number of requests that came in
before it began: as controller-runtime's work queue turns many adds of one key into one
reconcile. A request is answered by the first pass that *starts* after it arrived, never by
one already running (that one may have read before the change the request reports). Passes of
one key never overlap, while different keys run side by side. Whatever the requests carry (the
traffic samples to count) goes into the pass that answers them. A failed pass fails every
request it answers, each settled as it would have been alone (retried later, from a read of
its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

from gati_runtime.cancellation import cancel_until_done

T = TypeVar("T")

Pass = Callable[[str, Sequence[T]], Awaitable[None]]
"""One pass over a key with the items its requests brought."""


@dataclass
class _Next(Generic[T]):
    """The pass not started yet: what its requests brought and how it ended (the error or
    None), as a value so every waiter reads it and none is left unretrieved. The error's own
    traceback is kept apart: each waiter raises the one error, and a raise extends it."""

    ended: asyncio.Future[Exception | None]
    items: list[T] = field(default_factory=list)
    traceback: TracebackType | None = None


class Coalescer(Generic[T]):
    def __init__(self, run: Pass[T]) -> None:
        self._run = run
        self._next: dict[str, _Next[T]] = {}
        self._runners: dict[str, asyncio.Task[None]] = {}

    async def request(self, key: str, items: Sequence[T] = ()) -> None:
        """Return once a pass over `key` that started after this call has completed; raise
        what it raised."""
        upcoming = self._next.get(key)
        if upcoming is None:
            upcoming = self._next[key] = _Next(asyncio.get_running_loop().create_future())
        upcoming.items.extend(items)
        if key not in self._runners:
            self._runners[key] = asyncio.create_task(self._drain(key))
        # Shielded: a waiter cancelled (its consumer stopping) leaves the pass to the others.
        error = await asyncio.shield(upcoming.ended)
        if error is not None:
            raise error.with_traceback(upcoming.traceback)

    async def cancel_running(self) -> None:
        """Cancel every pass running, each until it has ended (`cancel_until_done`: one may be
        inside a nats-py request that drops a cancel). A requester's cancel leaves its pass to
        run on (shielded above), so this is what a stopping service calls, for no pass to go on
        writing after it returned; the requests those passes answer end cancelled."""
        while self._runners:
            await cancel_until_done(next(iter(self._runners.values())))

    async def _drain(self, key: str) -> None:
        """Run passes while requests wait for one; the key's only runner."""
        try:
            while (upcoming := self._next.pop(key, None)) is not None:
                try:
                    await self._run(key, tuple(upcoming.items))
                except Exception as error:
                    upcoming.traceback = error.__traceback__
                    upcoming.ended.set_result(error)
                else:
                    upcoming.ended.set_result(None)
                finally:
                    upcoming.ended.cancel()  # only if cancelled mid-pass: then no result is set
        finally:
            # Nothing awaits between the last pop and here, so a request arriving later finds
            # no runner and starts one; only a cancelled runner leaves requests behind.
            del self._runners[key]
            left = self._next.pop(key, None)
            if left is not None:
                left.ended.cancel()
