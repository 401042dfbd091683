"""A bookmark never overtakes an event the watch already holds.

A bookmark carries the server's newest resourceVersion; written ahead of an event that woke
the watch as its wait for events ran out, it would tell the client it had seen that version,
and a client resuming from it would never get the event.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from gati_kubesim.api import WriteOptions
from gati_kubesim.server import KubeSim
from gati_kubesim.watch import Watcher

WAIT = 60.0
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def test_a_bookmark_waits_for_the_events_a_watch_holds() -> None:
    watcher = Watcher(namespace=None, matcher=None)
    assert watcher.bookmark_due(now=1.0, deadline=2.0)
    watcher.push(b'{"type":"ADDED"}\n')
    assert not watcher.bookmark_due(now=1.0, deadline=2.0)
    watcher.drain()
    assert watcher.bookmark_due(now=1.0, deadline=2.0)


def test_no_bookmark_when_silenced_closed_or_past_the_deadline() -> None:
    silenced = Watcher(namespace=None, matcher=None, silent=True)
    assert not silenced.bookmark_due(now=1.0, deadline=2.0)
    closed = Watcher(namespace=None, matcher=None)
    closed.close()
    assert not closed.bookmark_due(now=1.0, deadline=2.0)
    assert not Watcher(namespace=None, matcher=None).bookmark_due(now=2.0, deadline=2.0)


async def _next_line(stream: aiohttp.ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        line = await stream.content.readline()
    assert line, "the watch ended before the event came"
    event: dict[str, Any] = json.loads(line)
    return event


async def test_an_event_that_wakes_a_watch_as_its_wait_runs_out_comes_before_any_bookmark(
    kubesim_async: KubeSim,
) -> None:
    """The race, made to happen: the loop is held past the watch's bookmark interval, so
    its timeout fires in the same turn as a write that wakes it; the event must come first."""
    sim = kubesim_async
    configmaps = sim.api.resource("", "v1", "configmaps")
    made = sim.api.create(configmaps, "default", {"metadata": {"name": "a"}}, WriteOptions("t"))
    params = {
        "watch": "1",
        "resourceVersion": made["metadata"]["resourceVersion"],
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(int(WAIT)),
    }
    loop = asyncio.get_running_loop()

    def write() -> None:
        sim.api.create(configmaps, "default", {"metadata": {"name": "b"}}, WriteOptions("t"))

    def hold_the_loop_then_write() -> None:
        # Blocks the loop (and the watch waiting on it) past the interval: next turn the
        # watch's timeout is due and runs right after the write queued here.
        time.sleep(sim.bookmark_interval * 2)
        loop.call_soon(write)

    async with (
        aiohttp.ClientSession(base_url=sim.url) as session,
        session.get(CONFIGMAPS, params=params) as stream,
    ):
        # A first bookmark shows the watch is open and waiting for events.
        assert (await _next_line(stream))["type"] == "BOOKMARK"
        loop.call_soon(hold_the_loop_then_write)
        bookmarks: list[int] = []
        while True:
            event = await _next_line(stream)
            rv = int(event["object"]["metadata"]["resourceVersion"])
            if event["type"] != "BOOKMARK":
                break
            bookmarks.append(rv)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
    assert all(seen < rv for seen in bookmarks), (bookmarks, rv)
