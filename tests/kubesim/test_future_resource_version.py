"""Reads from a resourceVersion the server has not reached: wait for it, then 504.

A client can hold a resourceVersion newer than a server's (it heard it from another
replica, or the server restarted from an older snapshot). The real server's watch cache
holds such a list or watch until it catches up and answers `504 Timeout` with cause
`ResourceVersionTooLarge` after 3s; serving it at once would show older state than asked for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from gati_kubesim.server import KubeSim

CMS = "/api/v1/namespaces/default/configmaps"


async def _create(session: aiohttp.ClientSession, name: str) -> str:
    async with session.post(CMS, json={"metadata": {"name": name}}) as resp:
        assert resp.status == 201, await resp.text()
        rv: str = (await resp.json())["metadata"]["resourceVersion"]
        return rv


async def _watch_names(session: aiohttp.ClientSession, rv: int, want: int) -> list[str]:
    params = {"watch": "1", "resourceVersion": str(rv), "timeoutSeconds": "10"}
    names: list[str] = []
    async with session.get(CMS, params=params) as resp:
        assert resp.status == 200, await resp.text()
        async for line in resp.content:
            names.append(json.loads(line)["object"]["metadata"]["name"])
            if len(names) >= want:
                break
    return names


def _on_park(sim: KubeSim, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once the server parks a read: no response tells a client that it waits."""
    parked = asyncio.Event()
    wait_for = sim.hub.wait_for

    async def spy(rv: int, within: float) -> bool:
        parked.set()
        return await wait_for(rv, within)

    monkeypatch.setattr(sim.hub, "wait_for", spy)
    return parked


def _assert_too_large(status: dict[str, Any], requested: int) -> None:
    assert status["code"] == 504
    assert status["reason"] == "Timeout"
    assert status["message"].startswith(f"Timeout: Too large resource version: {requested}, ")
    assert status["details"]["causes"] == [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    ]
    assert status["details"]["retryAfterSeconds"] == 1


async def test_a_watch_from_the_future_waits_and_then_starts_after_that_version(
    kubesim_async: KubeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    parked = _on_park(kubesim_async, monkeypatch)
    async with aiohttp.ClientSession(base_url=kubesim_async.url) as session:
        ahead = kubesim_async.store.resource_version + 1
        watch = asyncio.create_task(_watch_names(session, ahead, want=1))
        await parked.wait()
        assert int(await _create(session, "reaches-it")) == ahead
        await _create(session, "after-it")
        assert await watch == ["after-it"]


async def test_a_list_from_the_future_waits_for_the_write_that_reaches_it(
    kubesim_async: KubeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    parked = _on_park(kubesim_async, monkeypatch)
    async with aiohttp.ClientSession(base_url=kubesim_async.url) as session:
        ahead = kubesim_async.store.resource_version + 1
        params = {"resourceVersion": str(ahead), "resourceVersionMatch": "NotOlderThan"}
        listing = asyncio.create_task(session.get(CMS, params=params))
        await parked.wait()
        await _create(session, "awaited")
        async with await listing as resp:
            body = await resp.json()
        assert resp.status == 200
        assert int(body["metadata"]["resourceVersion"]) >= ahead
        assert "awaited" in [item["metadata"]["name"] for item in body["items"]]


async def test_reads_from_a_version_never_reached_get_504_too_large(
    kubesim_async: KubeSim,
) -> None:
    kubesim_async.api.freshness_timeout = 0.05
    ahead = kubesim_async.store.resource_version + 100
    async with aiohttp.ClientSession(base_url=kubesim_async.url) as session:
        for params in (
            {"watch": "1", "resourceVersion": str(ahead)},
            {"resourceVersion": str(ahead)},
            # Exact goes to storage, which refuses a future revision without waiting.
            {"resourceVersion": str(ahead), "resourceVersionMatch": "Exact"},
        ):
            async with session.get(CMS, params=params) as resp:
                assert resp.status == 504, params
                _assert_too_large(await resp.json(), ahead)
        # Nothing is left waiting, and reads at reached versions are served at once.
        assert kubesim_async.hub.waiting_reads == 0
        rv = await _create(session, "now")
        async with session.get(CMS, params={"resourceVersion": rv}) as resp:
            assert resp.status == 200
