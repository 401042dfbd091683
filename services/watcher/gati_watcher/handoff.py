"""A bounded hand-off from a reader thread to the event loop: backpressure, not a buffer.

The `kubernetes` client is synchronous, so a watch is read in a thread. The thread may run at
most `capacity` changes ahead of the stream's acknowledgements: `put_many` blocks once that many
are unacknowledged, the thread stops reading the socket, and TCP pushes back on the API server.
Nothing is dropped and memory is bounded by `capacity`, whatever NATS is doing.

Items cross in batches (the lines of one chunk the server sent) because every crossing wakes
the event loop through its self-pipe: one wake-up per change would cost more than the change.
For the same reason a full hand-off lets the reader go on only once a quarter of its slots are
free again, not slot by slot.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_CLOSED_POLL = 0.25
"""How often a blocked `put_many` checks whether the hand-off was closed (only while full)."""


class HandoffClosedError(RuntimeError):
    pass


class Handoff(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._loop = loop
        self._free = capacity
        self._refill = max(1, capacity // 4)
        self._room = threading.Condition(threading.Lock())
        self._wanted = 0
        """Free slots the waiting reader needs (0: none is waiting)."""
        self._items: deque[T] = deque()
        self._arrived = asyncio.Event()
        self._closed = threading.Event()
        self.capacity = capacity
        self.in_flight = 0
        self.high_water = 0
        """Most items ever unacknowledged at once: a test's proof that memory stayed bounded."""

    def put(self, item: T) -> None:
        self.put_many((item,))

    def put_many(self, items: Sequence[T]) -> None:
        """From the reader thread: pass `items` to the loop, as many at a time as there are
        free slots, waiting while there are none."""
        start = 0
        while start < len(items):
            with self._room:
                wanted = min(len(items) - start, self._refill)
                while self._free < wanted:
                    if self._closed.is_set():
                        raise HandoffClosedError("hand-off closed while waiting for a slot")
                    self._wanted = wanted
                    self._room.wait(_CLOSED_POLL)
                self._wanted = 0
                if self._closed.is_set():
                    raise HandoffClosedError("hand-off closed")
                taken = min(self._free, len(items) - start)
                self._free -= taken
            self._loop.call_soon_threadsafe(self._deliver, items[start : start + taken])
            start += taken

    def _deliver(self, items: Sequence[T]) -> None:
        self.in_flight += len(items)
        self.high_water = max(self.high_water, self.in_flight)
        self._items.extend(items)
        self._arrived.set()

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
        """From the loop, once an item is done with (acknowledged or given up)."""
        self.in_flight -= 1
        with self._room:
            self._free += 1
            if self._wanted and self._free >= self._wanted:
                self._room.notify()

    def close(self) -> None:
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()
