"""The pass coalescer alone: which requests a pass answers, with no server."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Sequence

import pytest

from gati_timescape.coalesce import Coalescer


class Passes:
    """A pass that records its key and items, and holds until released when asked to."""

    def __init__(self, *, hold: bool = False, fail: Exception | None = None) -> None:
        self.runs: list[tuple[str, tuple[int, ...]]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.fail = fail
        self.running: set[str] = set()
        self.overlapped = False
        self.all_started = asyncio.Event()
        self.expected = 1

    async def __call__(self, key: str, items: Sequence[int]) -> None:
        self.overlapped |= key in self.running
        self.running.add(key)
        self.runs.append((key, tuple(items)))
        self.started.set()
        if len(self.running) >= self.expected:
            self.all_started.set()
        try:
            await self.release.wait()
            if self.fail is not None:
                raise self.fail
        finally:
            self.running.discard(key)


async def test_requests_waiting_behind_a_running_pass_share_the_next_one() -> None:
    passes = Passes(hold=True)
    coalescer = Coalescer(passes)
    first = asyncio.create_task(coalescer.request("ns", [1]))
    await passes.started.wait()
    # Arrived while the first pass runs: it may have read before them, so they wait for one
    # that starts later, and share it.
    later = [asyncio.create_task(coalescer.request("ns", [n])) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in later)
    passes.release.set()
    await asyncio.gather(first, *later)
    assert passes.runs == [("ns", (1,)), ("ns", (2, 3, 4))]
    assert not passes.overlapped


async def test_a_request_after_the_key_went_idle_gets_a_pass_of_its_own() -> None:
    passes = Passes()
    coalescer = Coalescer(passes)
    await coalescer.request("ns", [1])
    await coalescer.request("ns", [2])
    assert passes.runs == [("ns", (1,)), ("ns", (2,))]


async def test_keys_run_side_by_side() -> None:
    passes = Passes(hold=True)
    coalescer = Coalescer(passes)
    passes.expected = 3
    tasks = [asyncio.create_task(coalescer.request(key, [n])) for n, key in enumerate("abc")]
    await passes.all_started.wait()  # all three at once: no key waits for another
    passes.release.set()
    await asyncio.gather(*tasks)
    assert sorted(passes.runs) == [("a", (0,)), ("b", (1,)), ("c", (2,))]


async def test_a_failed_pass_fails_every_request_it_answers_and_the_next_one_runs_afresh() -> None:
    passes = Passes(hold=True, fail=ValueError("unusable"))
    coalescer = Coalescer(passes)
    tasks = [asyncio.create_task(coalescer.request("ns", [n])) for n in (1, 2)]
    await passes.started.wait()
    passes.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]
    passes.fail = None
    await coalescer.request("ns", [3])
    assert passes.runs == [("ns", (1, 2)), ("ns", (3,))]


async def test_each_waiter_raises_the_pass_traceback_not_the_others() -> None:
    passes = Passes(hold=True, fail=ValueError("unusable"))
    coalescer = Coalescer(passes)
    depths: list[int] = []

    async def wait() -> None:
        try:
            await coalescer.request("ns")
        except ValueError as error:
            depths.append(len(traceback.extract_tb(error.__traceback__)))

    tasks = [asyncio.create_task(wait()) for _ in range(3)]
    await passes.started.wait()
    passes.release.set()
    await asyncio.gather(*tasks)
    # One error raised once per waiter would otherwise carry every earlier waiter's frames.
    assert len(depths) == 3
    assert len(set(depths)) == 1


async def test_a_cancelled_waiter_leaves_the_pass_to_the_others() -> None:
    passes = Passes(hold=True)
    coalescer = Coalescer(passes)
    leaving = asyncio.create_task(coalescer.request("ns", [1]))
    staying = asyncio.create_task(coalescer.request("ns", [2]))
    await passes.started.wait()
    leaving.cancel()
    passes.release.set()
    await staying
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert passes.runs == [("ns", (1, 2))]


async def test_cancel_running_ends_every_pass_even_one_that_lost_the_first_cancel() -> None:
    """What a stopping service calls: its requesters' cancels leave the passes running."""
    ended: list[str] = []
    started = asyncio.Event()

    async def deaf_once(key: str, items: Sequence[int]) -> None:
        try:
            started.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # a nats-py request that dropped the cancel
            await asyncio.Event().wait()
        finally:
            ended.append(key)

    coalescer = Coalescer(deaf_once)
    waiter = asyncio.create_task(coalescer.request("ns", [1]))
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert ended == []  # the requester's cancel left the pass running
    stopping = asyncio.create_task(coalescer.cancel_running())
    await asyncio.wait({stopping}, timeout=10)  # a timeout that cancels would mask a hang
    assert stopping.done(), "a pass outlived cancel_running"
    assert ended == ["ns"]
