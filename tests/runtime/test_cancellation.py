"""Cancels that survive a `wait_for` in nats-py dropping one (gh-86296)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import structlog.testing

from gati_runtime.cancellation import cancel_until_done, run_all, within

WAIT = 10.0


async def _deaf_once(ended: asyncio.Event, result: str | None = None) -> str:
    """Work that loses its first cancel, as a nats-py request does when the cancel lands as
    its answer arrives, and then waits on for something that never comes (or, with `result`,
    returns it regardless)."""
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        if result is not None:
            return result
        await asyncio.Event().wait()
        raise AssertionError("unreachable: nothing sets the event")
    finally:
        ended.set()


async def test_cancel_until_done_ends_work_that_lost_the_first_cancel() -> None:
    ended = asyncio.Event()
    work = asyncio.ensure_future(_deaf_once(ended))
    await asyncio.sleep(0)  # let it start, so the first cancel lands inside it
    cancelling = asyncio.ensure_future(cancel_until_done(work, every=0.01))
    await asyncio.wait({cancelling}, timeout=WAIT)  # a timeout that cancels would mask a hang
    assert cancelling.done(), "the work outlived a cancel it lost"
    assert work.cancelled()
    assert ended.is_set()


async def test_within_ends_work_past_its_time_even_when_it_lost_the_cancel() -> None:
    ended = asyncio.Event()
    bounded = asyncio.ensure_future(within(_deaf_once(ended), 0.01))
    await asyncio.wait({bounded}, timeout=WAIT)
    assert bounded.done(), "the bound was lost with the work's first cancel"
    with pytest.raises(TimeoutError, match=r"not done within 0\.01s"):
        bounded.result()
    assert ended.is_set()


async def test_within_keeps_a_result_the_work_returned_despite_the_cancel() -> None:
    assert await within(_deaf_once(asyncio.Event(), "read"), 0.01) == "read"


async def test_within_gives_the_result_and_the_error_of_work_done_in_time() -> None:
    async def fails() -> None:
        raise ValueError("bad")

    async def answers() -> int:
        return 7

    assert await within(answers(), WAIT) == 7
    with pytest.raises(ValueError, match="bad"):
        await within(fails(), WAIT)


async def test_the_callers_cancel_ends_the_work_before_within_returns() -> None:
    ended = asyncio.Event()
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        return await _deaf_once(ended)

    bounded = asyncio.ensure_future(within(work(), WAIT))
    await started.wait()
    bounded.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded
    assert ended.is_set()


async def test_run_all_ends_the_others_when_one_fails_and_raises_its_error() -> None:
    ended = asyncio.Event()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("broke")

    with structlog.testing.capture_logs() as logs:
        together = asyncio.ensure_future(run_all({"deaf": _deaf_once(ended), "fails": fails()}))
        await asyncio.wait({together}, timeout=WAIT)
    assert together.done(), "a work that lost its cancel outlived the failure"
    with pytest.raises(ValueError, match="broke"):
        together.result()
    assert ended.is_set()
    [why] = [entry for entry in logs if entry["event"] == "work_failed_ending_the_rest"]
    assert (why["failed"], why["error"], why["ending"]) == (
        "fails",
        "ValueError('broke')",
        ["deaf"],
    )


async def test_run_all_returns_when_every_work_has_ended_well() -> None:
    done: list[str] = []

    async def work(name: str) -> None:
        await asyncio.sleep(0)
        done.append(name)

    with structlog.testing.capture_logs() as logs:
        await run_all({"a": work("a"), "b": work("b")})
    assert sorted(done) == ["a", "b"]
    assert logs == []


async def test_the_callers_cancel_ends_every_work_of_run_all() -> None:
    ended = {name: asyncio.Event() for name in "ab"}
    started = {name: asyncio.Event() for name in "ab"}

    async def work(name: str) -> str:
        started[name].set()
        return await _deaf_once(ended[name])

    together = asyncio.ensure_future(run_all({name: work(name) for name in "ab"}))
    for event in started.values():
        await event.wait()
    together.cancel()
    await asyncio.wait({together}, timeout=WAIT)
    assert together.cancelled()
    assert [event.is_set() for event in ended.values()] == [True, True]
