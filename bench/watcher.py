"""Watcher throughput and lag against a real nats-server and a kubesim in its own process.

    python -m bench.watcher [--burst 10000] [--rate 500] [--seconds 6]

1. raw: nats-py publishing `--burst` messages into `GATI` with gathered acks (the ceiling).
2. burst: the watcher's watch is held off (silenced, then refused) while `--burst` changes are
   written; once it may watch again it replays them all from the server's history. events/s is
   measured between the first and the last change arriving in the stream.
3. lag: changes written at `--rate`/s for `--seconds`; lag is from the write's response to the
   change arriving in the stream (a consumer sees it right after its PubAck).
The watcher and the measuring clients share this process; kubesim and nats-server do not.
Aims (issue 4): p99 lag < 50 ms at 500 changes/s; burst >= 70 % of the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
import nats
from kubernetes import client
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench.harness import ChildKubeSim
from gati_contracts.crds import custom_resource_definitions
from gati_contracts.events import ChangeEvent, decode_event
from gati_contracts.headers import MSG_ID
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STREAM, cr_subject
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.nats_connection import connect
from gati_runtime.provisioning import provision_bus
from gati_runtime.publisher import Publisher
from gati_runtime.settings import Settings
from gati_watcher.policy import Inactivity
from gati_watcher.watcher import Watcher, WatcherOptions

NAMESPACE = "bench"
OBJECTS = 500
"""Changes spread over this many objects; the watcher publishes one object's changes one after
another (per-subject order), so fewer objects means less parallelism."""
WINDOW = 256
BOOKMARK_INTERVAL = 0.2


class Arrivals:
    """perf_counter of each change event's arrival in the stream, by resourceVersion."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        self.at[decode_event(msg.data, ChangeEvent).resource_version] = time.perf_counter()
        self.changed.set()

    async def until(self, count: int) -> None:
        while True:
            self.changed.clear()
            if len(self.at) >= count:
                return
            await self.changed.wait()


async def _raw_rate(nc: Client, count: int) -> float:
    js = nc.jetstream()
    payload = b"x" * 600
    started = time.perf_counter()
    for first in range(0, count, WINDOW):
        await asyncio.gather(
            *(
                js.publish(
                    cr_subject("GatiHandler", "raw", f"o{i % OBJECTS}"),
                    payload,
                    headers={MSG_ID: f"raw:{i}"},
                )
                for i in range(first, min(first + WINDOW, count))
            )
        )
    return count / (time.perf_counter() - started)


def _handler(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"handlerPath": "/api/bench", "version": "v1", "image": "acme/b:1"},
    }


class Writer:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.base = f"{url}/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/gatihandlers"

    async def create(self, name: str) -> str:
        async with self.session.post(self.base, json=_handler(name)) as resp:
            resp.raise_for_status()
            return str((await resp.json())["metadata"]["resourceVersion"])

    async def patch(self, name: str, value: int) -> str:
        async with self.session.patch(
            f"{self.base}/{name}",
            json={"metadata": {"annotations": {"bench.gati.dev/seq": str(value)}}},
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            resp.raise_for_status()
            return str((await resp.json())["metadata"]["resourceVersion"])


async def _hook(
    session: aiohttp.ClientSession, url: str, hook: str, body: Any, method: str
) -> None:
    async with session.request(method, f"{url}/kubesim/{hook}", json=body) as resp:
        resp.raise_for_status()


async def run(burst: int, rate: int, seconds: float) -> dict[str, Any]:
    kubesim = ChildKubeSim(bookmark_interval=BOOKMARK_INTERVAL, max_history=100_000)
    url = kubesim.start()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp), name="bench") as server:
        settings = Settings.load(environ={"GATI_NATS_URL": server.url, "GATI_INSTANCE_ID": "b"})
        connection = await connect(settings, name="bench-watcher")
        await provision_bus(connection.jsm, settings)
        tail_client = await nats.connect(server.url)
        raw = await _raw_rate(tail_client, burst)

        config = client.Configuration()
        config.host = url
        api = client.ApiClient(config)
        extensions = client.ApiextensionsV1Api(api)
        for crd in custom_resource_definitions():
            extensions.create_custom_resource_definition(cast(Any, crd))
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        )
        options = WatcherOptions(inactivity=Inactivity(bookmark_interval=BOOKMARK_INTERVAL))
        watcher = Watcher(
            api,
            connection,
            Publisher(connection),
            stream=STREAM,
            source="bench",
            namespaces=(NAMESPACE,),
            options=options,
        )
        running = asyncio.create_task(watcher.run())
        await asyncio.gather(*(target.synced.wait() for target in watcher.targets))
        arrivals = Arrivals()
        await tail_client.jetstream().subscribe(
            cr_subject("GatiHandler", NAMESPACE, "x").rpartition(".")[0] + ".*",
            stream=STREAM,
            cb=arrivals.on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            config=ConsumerConfig(),
        )
        async with aiohttp.ClientSession() as session:
            writer = Writer(session, url)
            names = [f"h{i}" for i in range(OBJECTS)]
            for name in names:
                await writer.create(name)
            await arrivals.until(OBJECTS)

            # Burst: the watch is silenced and refused while the changes are written.
            await _hook(session, url, "faults", {"verb": "watch", "code": 503}, "POST")
            await _hook(
                session, url, "silence-watches", {"resource": "gatihandlers.gati.dev"}, "POST"
            )
            before = len(arrivals.at)
            semaphore = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                async with semaphore:
                    await writer.patch(names[i % OBJECTS], i)

            await asyncio.gather(*(one(i) for i in range(burst)))
            first_burst = set(arrivals.at)
            await _hook(session, url, "faults", None, "DELETE")
            await arrivals.until(before + burst)
            times = sorted(t for rv, t in arrivals.at.items() if rv not in first_burst)
            burst_rate = (len(times) - 1) / (times[-1] - times[0])

            # Lag: paced writes.
            written: dict[str, float] = {}
            total = int(rate * seconds)
            start = time.perf_counter()
            pending: set[asyncio.Task[None]] = set()

            async def timed(i: int) -> None:
                rv = await writer.patch(names[i % OBJECTS], burst + i)
                written[rv] = time.perf_counter()

            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(timed(i))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            await arrivals.until(before + burst + total)
            lags = sorted((arrivals.at[rv] - t) * 1000 for rv, t in written.items())
        watcher.stop.set()
        await running
        await tail_client.close()
        await connection.close()
        api.close()
    kubesim.stop()
    return {
        "raw_publish_per_s": round(raw),
        "burst_changes": burst,
        "burst_events_per_s": round(burst_rate),
        "burst_vs_raw": round(burst_rate / raw, 3),
        "lag_rate_per_s": rate,
        "lag_changes": len(lags),
        "lag_p50_ms": round(statistics.median(lags), 2),
        "lag_p99_ms": round(lags[int(len(lags) * 0.99) - 1], 2),
        "lag_max_ms": round(lags[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.burst, args.rate, args.seconds))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
