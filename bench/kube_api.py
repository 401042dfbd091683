"""CPU per Kubernetes API call on the client side: `Kube` (gati_runtime.kube_transport) and,
for reference, the same requests through an aiohttp `ClientSession`.

kubesim runs as its own process, so this process's CPU time is the client's alone. Each verb
is the shape the reconciler sends: a GET decoded whole, a status PUT and a server-side apply
whose answers are not decoded. Calls run `--concurrency` at a time, as a reconciler's do.

    python -m bench.kube_api [--calls 2000] [--concurrency 8]

At the change to the asyncio transport (loaded 2-core machine, 8 in flight), the official
client's urllib3 pool in worker threads cost ~500-580 us per call; aiohttp ~270-440 us;
`Kube` on asyncio streams ~110-160 us, of which the bare exchange is ~70-90 us.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec
import uvloop
from kubernetes import client

from gati_kubesim.process import KubeSimProcess
from gati_runtime.kube_api import APPLY_PATCH, JSON, Kube, collection_path

MAPS = collection_path("v1", "configmaps", "default")
NAME = "bench"
CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": NAME, "namespace": "default"},
    "data": {"key": "v" * 500},
}


async def cpu_us_per_call(
    calls: int, concurrency: int, call: Callable[[], Awaitable[object]]
) -> float:
    left = iter(range(calls))

    async def worker() -> None:
        for _ in left:
            await call()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / calls * 1e6


async def measure(url: str, calls: int, concurrency: int) -> dict[str, float]:
    configuration = client.Configuration()
    configuration.host = url
    path = f"{MAPS}/{NAME}"
    apply_query = "?fieldManager=bench&force=true"
    with client.ApiClient(configuration) as api:
        kube = Kube(api, workers=concurrency)
        live = await kube.create(MAPS, CONFIG_MAP)
        stale_free = {**live, "metadata": {"name": NAME, "namespace": "default"}}
        body = msgspec.json.encode(stale_free)
        kube_calls: dict[str, Callable[[], Awaitable[object]]] = {
            "kube get": lambda: kube.get(path),
            "kube put": lambda: kube.replace(path, stale_free, answer=False),
            "kube apply": lambda: kube.apply(path, CONFIG_MAP, field_manager="bench", answer=False),
        }
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector) as session:

            async def session_call(
                method: str, target: str, data: bytes | None, ctype: str
            ) -> None:
                headers = {"Accept": JSON, "Content-Type": ctype}
                async with session.request(method, target, data=data, headers=headers) as resp:
                    answer = await resp.read()
                    if method == "GET":
                        msgspec.json.decode(answer)

            aiohttp_calls: dict[str, Callable[[], Awaitable[object]]] = {
                "aiohttp get": lambda: session_call("GET", path, None, JSON),
                "aiohttp put": lambda: session_call("PUT", path, body, JSON),
                "aiohttp apply": lambda: session_call(
                    "PATCH", path + apply_query, msgspec.json.encode(CONFIG_MAP), APPLY_PATCH
                ),
            }
            results: dict[str, float] = {}
            for name, call in {**kube_calls, **aiohttp_calls}.items():
                await cpu_us_per_call(calls // 10, concurrency, call)  # warm connections, caches
                results[name] = round(await cpu_us_per_call(calls, concurrency, call), 1)
        kube.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with KubeSimProcess() as sim:
        results = uvloop.run(measure(sim.url, args.calls, args.concurrency))
    for name, value in results.items():
        print(f"{name:14} {value:8.1f} us CPU per call")
    print(json.dumps({"cpu_us_per_call": results}))


if __name__ == "__main__":
    main()
