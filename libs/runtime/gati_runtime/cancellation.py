"""Cancelling work that may lose its cancel.

Python 3.11's `asyncio.wait_for`, all through nats-py (connect, requests, flush), drops a cancel
that lands as its inner step completes (gh-86296): the work goes on as if never told, into a
retry loop or a wait nothing else ends. One `task.cancel()` then ends nothing, and neither does
`asyncio.timeout`, which cancels once. So where work that may be inside nats-py must end (a
stop, a deadline), its cancel is repeated until it has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

REPEAT_SECONDS = 0.1
"""How long cancelled work gets to end before it is cancelled again."""


async def cancel_until_done(task: asyncio.Future[Any], every: float = REPEAT_SECONDS) -> None:
    """Cancel `task`, again every `every` seconds, until it has ended."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)


async def within(work: Awaitable[T], seconds: float) -> T:
    """`asyncio.timeout` for work that may lose the cancel: its result, or `TimeoutError`
    once `seconds` have passed and the work has ended. A result it returned despite the cancel
    is kept. The work has ended by the time this returns, also when the caller is cancelled."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task}, timeout=seconds)
    finally:
        await cancel_until_done(task)
    if task.cancelled():
        raise TimeoutError(f"not done within {seconds:g}s")
    return task.result()
