"""A bounded hand-off from a watch's reader to the change loop: backpressure, not a buffer.

The reader may run at most `capacity` changes ahead of the stream's acknowledgements:
`put_many` waits once that many are unacknowledged, the reader stops reading the socket, and
TCP pushes back on the API server. Nothing is dropped and memory is bounded by `capacity`,
whatever NATS is doing.

Both sides run on the event loop. Items cross in batches (the lines of one read of the socket)
and wake the change loop once per batch: a wake-up per change would cost more than the change.
For the same reason a full hand-off lets the reader go on only once a quarter of its slots are
free again, not slot by slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class HandoffClosedError(RuntimeError):
    pass


class Handoff(Generic[T]):
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._free = capacity
        self._refill = max(1, capacity // 4)
        self._wanted = 0
        """Free slots the waiting reader needs (0: none is waiting)."""
        self._room: asyncio.Future[None] | None = None
        self._items: deque[T] = deque()
        self._arrived = asyncio.Event()
        self._closed = False
        self.capacity = capacity
        self.in_flight = 0
        self.high_water = 0
        """Most items ever unacknowledged at once: a test's proof that memory stayed bounded."""

    async def put_many(self, items: Sequence[T]) -> None:
        """Pass `items` on, as many at a time as there are free slots; once there are none,
        wait until a quarter of them (or as many as are left to pass) are free again. Raises
        `HandoffClosedError` once the hand-off is closed."""
        start = 0
        while start < len(items):
            if not self._free and not self._closed:
                self._wanted = min(len(items) - start, self._refill)
                self._room = asyncio.get_running_loop().create_future()
                try:
                    await self._room
                finally:
                    self._wanted, self._room = 0, None
            if self._closed:
                raise HandoffClosedError("hand-off closed")
            taken = min(self._free, len(items) - start)
            self._free -= taken
            self.in_flight += taken
            self.high_water = max(self.high_water, self.in_flight)
            self._items.extend(items[start : start + taken])
            self._arrived.set()
            start += taken

    async def wait(self) -> None:
        """Until an item is there or `wake` is called (a wake before the wait is not kept: the
        consumer looks at its other reasons to stop before it waits). One future to wait on,
        where a task per item raced against those reasons with `asyncio.wait` cost three times
        the CPU per change at a steady rate."""
        if not self._items:
            self._arrived.clear()
            await self._arrived.wait()

    def wake(self) -> None:
        """Ends a `wait` without an item: the consumer has something else to look at."""
        self._arrived.set()

    def get_nowait(self) -> T | None:
        """The next item handed over, if any."""
        return self._items.popleft() if self._items else None

    def release(self) -> None:
        """Once an item is done with (acknowledged or given up)."""
        self.in_flight -= 1
        self._free += 1
        if self._wanted and self._free >= self._wanted:
            self._let_in()

    def close(self) -> None:
        self._closed = True
        self._let_in()

    def _let_in(self) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed
