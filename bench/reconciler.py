"""Reconciler convergence: N handlers created at once until every one reports `Running`.

    python -m bench.reconciler [--handlers 100 300] [--replicas 1]

Run by hand, not by `make bench`: scenario 1 (`bench.convergence`) measures convergence with
the services as deployed, against kopf. This one keeps the watcher and the reconciler replicas in
one process, so a profiler attached to it (py-spy) sees the whole gati side of a convergence.

kubesim (pods ready 50 ms after a Deployment changes) and nats-server run in their own
processes; the watcher, the reconciler replicas and the measuring client share this one, so RSS
is theirs together. Per-object latency runs from the create's response to the first outcome on
`gati.status.>` reporting `Running` for that object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
from kubernetes import client
from nats.aio.msg import Msg

from bench.harness import ChildKubeSim
from gati_contracts.crds import custom_resource_definitions
from gati_contracts.events import OutcomeEvent, decode_event
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STATUS_ROOT, STREAM
from gati_reconciler.reconcile import LEASE_SCOPE, Reconciler
from gati_reconciler.service import CONSUMER, OPTIONS, decode_change
from gati_reconciler.stream_state import StreamState
from gati_runtime.consumer import ConsumerLoop
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.kube_api import Kube
from gati_runtime.lease import Leases
from gati_runtime.nats_connection import connect
from gati_runtime.provisioning import provision_bus
from gati_runtime.publisher import Publisher
from gati_runtime.settings import Settings
from gati_watcher.watcher import Watcher

NAMESPACE = "bench"
READY_AFTER = 0.05
CREATE_WINDOW = 64
"""Creates in flight at once: 'all at once' as a client with a connection pool would send them."""


class Running:
    """perf_counter of the first `Running` outcome per handler."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        event = decode_event(msg.data, OutcomeEvent)
        if event.details.get("phase") == "Running" and event.name not in self.at:
            self.at[event.name] = time.perf_counter()
            self.changed.set()

    async def until(self, count: int) -> None:
        while len(self.at) < count:
            self.changed.clear()
            await self.changed.wait()


def _handler(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"handlerPath": f"/api/{name}", "version": "v1", "image": "acme/u:1"},
    }


async def _create_all(url: str, names: list[str]) -> dict[str, float]:
    base = f"{url}/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/gatihandlers"
    created: dict[str, float] = {}
    window = asyncio.Semaphore(CREATE_WINDOW)
    async with aiohttp.ClientSession() as session:

        async def create(name: str) -> None:
            async with window, session.post(base, json=_handler(name)) as response:
                response.raise_for_status()
                created[name] = time.perf_counter()

        await asyncio.gather(*(create(name) for name in names))
    return created


async def run(handlers: int, replicas: int) -> dict[str, Any]:
    kubesim = ChildKubeSim(ready_after=READY_AFTER, max_history=1_000_000)
    url = kubesim.start()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp), name="bench") as server:
        settings = Settings.load(environ={"GATI_NATS_URL": server.url, "GATI_INSTANCE_ID": "b"})
        connection = await connect(settings, name="bench")
        await provision_bus(connection.jsm, settings)
        config = client.Configuration()
        config.host = url
        api = client.ApiClient(config)
        for crd in custom_resource_definitions():
            client.ApiextensionsV1Api(api).create_custom_resource_definition(cast(Any, crd))
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        )
        watcher = Watcher(
            api,
            connection,
            Publisher(connection),
            stream=STREAM,
            source="bench",
            namespaces=(NAMESPACE,),
        )
        watching = asyncio.create_task(watcher.run())
        await asyncio.gather(*(target.synced.wait() for target in watcher.targets))
        stop = asyncio.Event()
        loops = []
        for index in range(replicas):
            replica_config = client.Configuration()
            replica_config.host = url
            kube = Kube(client.ApiClient(replica_config), workers=16)
            reconciler = Reconciler(
                kube,
                Publisher(connection),
                streams=StreamState(connection.client, STREAM),
                leases=Leases(connection.client, f"bench-{index}", scope=LEASE_SCOPE),
                source=f"bench-{index}",
                stream=STREAM,
            )
            loop = ConsumerLoop(
                connection,
                STREAM,
                CONSUMER,
                decode=decode_change,
                handler=reconciler.handle,
                on_poison=reconciler.on_poison,
                options=OPTIONS,
            )
            loops.append(asyncio.create_task(loop.run(stop)))
        running = Running()
        await connection.client.subscribe(f"{STATUS_ROOT}.>", cb=running.on_message)
        names = [f"h{index}" for index in range(handlers)]
        started = time.perf_counter()
        created = await _create_all(url, names)
        await running.until(handlers)
        total = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*loops)
        watcher.stop.set()
        await watching
        await connection.close()
    kubesim.stop()
    latencies = sorted((running.at[name] - created[name]) * 1000 for name in names)
    return {
        "handlers": handlers,
        "replicas": replicas,
        "all_running_s": round(total, 2),
        "handlers_per_s": round(handlers / total, 1),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p99_ms": round(latencies[max(int(len(latencies) * 0.99) - 1, 0)], 1),
        "latency_max_ms": round(latencies[-1], 1),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--handlers", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    results = [asyncio.run(run(count, args.replicas)) for count in args.handlers]
    keys = list(results[0])
    width = max(map(len, keys))
    for key in keys:
        print(f"{key:<{width}}  " + "  ".join(f"{r[key]:>10}" for r in results))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
