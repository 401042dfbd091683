"""kubesim on the test's own loop, driven by an async HTTP client as async services will."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from fixtures.kubesim_server import BOOKMARK_INTERVAL
from gati_kubesim.server import KubeSim


async def test_async_client_lists_and_watches(kubesim_async: KubeSim) -> None:
    cms = "/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession(base_url=kubesim_async.url) as session:
        async with session.post(cms, json={"metadata": {"name": "a"}}) as resp:
            assert resp.status == 201
        async with session.get(cms) as resp:
            listing = await resp.json()
        rv = listing["metadata"]["resourceVersion"]
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
        async with session.get(cms, params=params) as stream:
            async with session.post(cms, json={"metadata": {"name": "b"}}) as resp:
                assert resp.status == 201
            first = json.loads(await stream.content.readline())
            assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "b")
            second = json.loads(
                await asyncio.wait_for(stream.content.readline(), BOOKMARK_INTERVAL * 10)
            )
            assert second["type"] == "BOOKMARK"
