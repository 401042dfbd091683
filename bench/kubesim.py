"""kubesim throughput and memory: creates/s, gets/s, watch events/s, RSS at N objects.

Runs `gati-operator kubesim` as a separate process (so its RSS is its own) and drives it over
HTTP with aiohttp, as clients do. Prints a table and one JSON line.

    python -m bench.kubesim [--objects 10000] [--concurrency 32] [--watchers 10]

Targets (issue 3): >= 1,000 creates/s, >= 5,000 watch events/s delivered, < 300 MB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from gati_kubesim.process import KubeSimProcess

NAMESPACE = "bench"


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: a cost per request that, unlike
    the rates, holds still when other work shares the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _in_batches(n: int, concurrency: int, op: Any) -> float:
    """Run op(i) for i in range(n) with `concurrency` in flight; returns elapsed seconds."""
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await op(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def _watch(
    session: aiohttp.ClientSession, url: str, rv: str, want: int, done: asyncio.Event
) -> int:
    got = 0
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "600"}
    async with session.get(url, params=params) as resp:
        async for _line in resp.content:
            got += 1
            if got >= want:
                break
    done.set()
    return got


async def run(objects: int, concurrency: int, watchers: int) -> dict[str, Any]:
    proc = KubeSimProcess()
    base = proc.start()
    try:
        connector = aiohttp.TCPConnector(limit=concurrency + watchers + 4)
        async with aiohttp.ClientSession(base_url=base, connector=connector) as session:
            async with session.post(
                "/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}
            ) as r:
                r.raise_for_status()
                start_rv = (await r.json())["metadata"]["resourceVersion"]
            coll = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
            rss_empty = _rss_mb(proc.pid)

            # Live fan-out: watchers open before the creates see every one of them.
            live_done = [asyncio.Event() for _ in range(watchers)]
            live = [
                asyncio.create_task(_watch(session, coll, start_rv, objects, live_done[i]))
                for i in range(watchers)
            ]
            await asyncio.sleep(0.2)

            async def create(i: int) -> None:
                body = {
                    "metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "yes"}},
                    "data": {"key": f"value-{i}", "other": "x" * 64},
                }
                async with session.post(coll, json=body) as resp:
                    if resp.status != 201:
                        raise SystemExit(f"create failed: {resp.status} {await resp.text()}")

            live_started = time.perf_counter()
            cpu_started = _cpu_s(proc.pid)
            create_s = await _in_batches(objects, concurrency, create)
            await asyncio.gather(*live)
            live_s = time.perf_counter() - live_started
            create_cpu = _cpu_s(proc.pid) - cpu_started
            rss_full = _rss_mb(proc.pid)

            async def get(i: int) -> None:
                async with session.get(f"{coll}/cm-{i:05d}") as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"get failed: {resp.status}")

            cpu_started = _cpu_s(proc.pid)
            get_s = await _in_batches(objects, concurrency, get)
            get_cpu = _cpu_s(proc.pid) - cpu_started

            list_started = time.perf_counter()
            async with session.get(coll) as resp:
                listed = len((await resp.json())["items"])
            list_s = time.perf_counter() - list_started

            # Replay: one watcher resumes from before the creates and reads the history.
            replay_started = time.perf_counter()
            replayed = await _watch(session, coll, start_rv, objects, asyncio.Event())
            replay_s = time.perf_counter() - replay_started
            rss_end = _rss_mb(proc.pid)
    finally:
        proc.stop()
    return {
        "objects": objects,
        "concurrency": concurrency,
        "watchers": watchers,
        "creates_per_s": round(objects / create_s),
        "gets_per_s": round(objects / get_s),
        # Server CPU per request; creates include fanning each event out to the watchers.
        "server_cpu_us_per_create": round(create_cpu / objects * 1e6),
        "server_cpu_us_per_get": round(get_cpu / objects * 1e6),
        "list_all_s": round(list_s, 3),
        "listed": listed,
        "live_watch_events_per_s": round(watchers * objects / live_s),
        "replay_watch_events_per_s": round(replayed / replay_s),
        "rss_mb_empty": round(rss_empty, 1),
        "rss_mb_at_objects": round(rss_full, 1),
        "rss_mb_end": round(rss_end, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watchers", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(run(args.objects, args.concurrency, args.watchers))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
