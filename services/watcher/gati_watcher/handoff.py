"""A bounded hand-off from a reader thread to the event loop: backpressure, not a buffer.

The `kubernetes` client is synchronous, so a watch is read in a thread. The thread may run at
most `capacity` changes ahead of the stream's acknowledgements: `put` blocks once that many are
unacknowledged, the thread stops reading the socket, and TCP pushes back on the API server.
Nothing is dropped and memory is bounded by `capacity`, whatever NATS is doing.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

T = TypeVar("T")

_CLOSED_POLL = 0.25
"""How often a blocked `put` checks whether the hand-off was closed (only while full)."""


class HandoffClosedError(RuntimeError):
    pass


class Handoff(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._loop = loop
        self._slots = threading.BoundedSemaphore(capacity)
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._closed = threading.Event()
        self.capacity = capacity
        self.in_flight = 0
        self.high_water = 0
        """Most items ever unacknowledged at once: a test's proof that memory stayed bounded."""

    def put(self, item: T) -> None:
        """From the reader thread: wait for a free slot, then pass `item` to the loop."""
        while not self._slots.acquire(timeout=_CLOSED_POLL):
            if self._closed.is_set():
                raise HandoffClosedError("hand-off closed while waiting for a slot")
        if self._closed.is_set():
            self._slots.release()
            raise HandoffClosedError("hand-off closed")
        self._loop.call_soon_threadsafe(self._deliver, item)

    def _deliver(self, item: T) -> None:
        self.in_flight += 1
        self.high_water = max(self.high_water, self.in_flight)
        self._queue.put_nowait(item)

    async def get(self) -> T:
        return await self._queue.get()

    def get_nowait(self) -> T | None:
        """An item already handed over, if any: saves a task per item when the reader is ahead."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def release(self) -> None:
        """From the loop, once an item is done with (acknowledged or given up)."""
        self.in_flight -= 1
        self._slots.release()

    def close(self) -> None:
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()
