"""Cancelling work that may lose its cancel.

Python 3.11's `asyncio.wait_for`, all through nats-py (connect, requests, flush), drops a cancel
that lands as its inner step completes (gh-86296): the work goes on as if never told, into a
retry loop or a wait nothing else ends. One `task.cancel()` then ends nothing, and neither does
`asyncio.timeout`, which cancels once. So where work that may be inside nats-py must end (a
stop, a deadline), its cancel is repeated until it has. That holds for the rest of a group of
works one of which failed, too: `asyncio.gather` leaves them running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import structlog

T = TypeVar("T")

log = structlog.get_logger(__name__)

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


async def run_all(works: Mapping[str, Awaitable[Any]]) -> None:
    """Await `works` together until all have ended. When one fails, the others are cancelled
    until they have ended and its error is raised, after a log naming it and the works it
    ends; a cancelled caller ends them all the same way. `asyncio.gather` would leave the
    others running after the failure, past the caller's own end."""
    tasks = {name: asyncio.ensure_future(work) for name, work in works.items()}
    try:
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
        failed = next(
            (
                (name, error)
                for name, task in tasks.items()
                if task.done() and not task.cancelled() and (error := task.exception()) is not None
            ),
            None,
        )
        if failed is not None:
            log.error(
                "work_failed_ending_the_rest",
                failed=failed[0],
                error=repr(failed[1]),
                ending=[name for name, task in tasks.items() if not task.done()],
            )
            raise failed[1]
    finally:
        for task in tasks.values():
            await cancel_until_done(task)
