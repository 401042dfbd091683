"""Garbage collection for a kubesim that has its process to itself (`gati-operator kubesim`).

Nearly everything kubesim holds is decoded JSON: stored objects and the watch history of
their past versions, plain dicts and lists without reference cycles, which reference counting
frees as soon as a newer version replaces them. CPython's generational collector still scans
every container each request allocates, and its full passes scan the whole store: measured on
the operator mix of `bench.kubesim`, about a third of the server's CPU. Cycles do occur (in
the event loop and the HTTP layer), so collection is not switched off but moved to a timer:
each pass looks only at what was allocated since the last one (older survivors are frozen out
of the scan), and every `full_every` passes a full one reclaims any cycle among the frozen.

Only for a process of its own: in a shared process (an in-process test server) this would
change how every other component's garbage is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

import structlog

log = structlog.get_logger("kubesim")


class PeriodicCollector:
    """Collect on a timer instead of per allocation count; `start` and `stop` on the loop."""

    def __init__(self, period: float = 2.0, full_every: int = 30) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period}")
        if full_every < 1:
            raise ValueError(f"full_every must be >= 1, got {full_every}")
        self.period = period
        self.full_every = full_every
        self.passes = 0
        self._task: asyncio.Task[None] | None = None
        self._was_enabled = True

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        gc.collect()
        gc.freeze()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def collect(self) -> int:
        """One pass (a full one every `full_every`); returns the objects it found unreachable."""
        self.passes += 1
        if self.passes % self.full_every == 0:
            gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        return found

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self.collect()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
