"""Garbage collection for a kubesim that has its process to itself (`gati-operator kubesim`).

Nearly everything kubesim holds is decoded JSON: stored objects and the watch history of
their past versions, plain dicts and lists without reference cycles, which reference counting
frees as soon as a newer version replaces them. CPython's generational collector still scans
every container each request allocates, and its full passes scan the whole store: measured on
the operator mix of `bench.kubesim`, about a third of the server's CPU. Cycles do occur (in
the event loop and the HTTP layer), so collection is not switched off but moved to a timer,
one full pass a minute over everything allocated since start (what start-up loaded is frozen
out of the scan).

No shorter young passes in between: over a whole `bench.convergence` run (1,000 handlers,
40 passes two seconds apart, a full one among them) none collected an object after start-up,
yet they cost more than the full pass (0.54 s against 0.37 s, of the server's 14.9 s), since
every object that outlives a pass, the store and its history, was scanned by them as well.
A cycle that does come waits at most a period for its pass.

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

    def __init__(self, period: float = 60.0) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period}")
        self.period = period
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
        """One pass over everything allocated since `start`; returns the objects it found
        unreachable."""
        self.passes += 1
        return gc.collect()

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
