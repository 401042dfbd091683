"""Scenario 3 of issue 10: watcher throughput and lag, against a real nats-server and kubesim.

    python -m bench.watcher [--burst 5000] [--rate 500] [--seconds 4]

The watcher runs as `gati-operator run watcher`, in its own process as in production; kubesim
and nats-server have theirs; the writers and the clients measuring share this one.
1. raw: nats-py publishing `--burst` messages into `GATI` from this process, twice: `js.publish`
   with acks gathered in windows of 256 (the issue's "raw nats-py publish rate"), and
   `js.publish_async` with 256 in flight (nats-py's fastest publish).
2. burst: the watcher's watch is held off (silenced, then refused) while `--burst` changes are
   written; once it may watch again it replays them all from the server's history. events/s is
   measured between the first and the last change arriving in the stream.
3. lag: changes written at `--rate`/s for `--seconds`; lag is from the write's response to the
   change arriving in the stream (a consumer sees it right after its PubAck). The watcher's own
   share, from reading a change off the watch to its PubAck, comes from its histogram
   `gati_watcher_change_lag_seconds` (so it is the bucket bound at or above the quantile); the
   burst's publish-to-PubAck time comes from `gati_watcher_publish_seconds` the same way. The
   lag is also split at the event's `observedAt` (reaching the watcher / storing it), and this
   process holds its own collector off meanwhile, so its pauses are not counted as lag.
CPU is the watcher process's (user + system) per 1,000 changes, for the burst and the paced
writes apart, and nats-server's beside it: the bus's own cost of storing each change, answering
its PubAck and delivering it to this process's tail. The paced figure depends on the lag
itself: changes handled one by one (p50 ~2 ms) cost 0.5-0.7 ms each in wake-ups, changes queued
behind a loaded machine share them (0.12-0.2 ms); compare it only between runs of similar lag.
The burst figure moves less.
Aims (issue 10): p99 lag < 50 ms at 500 changes/s; burst >= 70 % of the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp
import nats
from kubernetes import client
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench.harness import ChildKubeSim, cpu_seconds, percentile, rss_mb
from gati_contracts.crds import custom_resource_definitions
from gati_contracts.events import ChangeEvent, decode_event
from gati_contracts.headers import MSG_ID
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STREAM, cr_subject
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.nats_connection import connect
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings

NAMESPACE = "bench"
OBJECTS = 500
"""Changes spread over this many objects; the watcher publishes one object's changes one after
another (per-subject order), so fewer objects means less parallelism."""
WINDOW = 256
WRITERS = 16
T = TypeVar("T")
BOOKMARK_INTERVAL = 0.2


class Arrivals:
    """perf_counter of each change event's arrival in the stream, by resourceVersion and by
    `Nats-Msg-Id` (a deletion has no resourceVersion of its own); and, by resourceVersion, when
    the watcher built the event (its `observedAt`, moved onto the perf_counter scale), which
    splits a lag into the part before the watcher had the change and the part after."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.by_id: dict[str, float] = {}
        self.observed: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._wall_offset = time.time() - time.perf_counter()

    async def on_message(self, msg: Msg) -> None:
        now = time.perf_counter()
        event = decode_event(msg.data, ChangeEvent)
        self.at[event.resource_version] = now
        self.by_id[event.msg_id] = now
        self.observed[event.resource_version] = event.observed_at.timestamp() - self._wall_offset
        self.changed.set()

    async def until(self, count: int) -> None:
        while True:
            self.changed.clear()
            if len(self.at) >= count:
                return
            await self.changed.wait()

    async def until_ids(self, ids: set[str]) -> None:
        while True:
            self.changed.clear()
            if ids <= self.by_id.keys():
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


async def _raw_async_rate(nc: Client, count: int) -> float:
    js = nc.jetstream(publish_async_max_pending=WINDOW)
    payload = b"x" * 600
    started = time.perf_counter()
    for i in range(count):
        await js.publish_async(
            cr_subject("GatiHandler", "raw", f"o{i % OBJECTS}"),
            payload,
            headers={MSG_ID: f"raw-async:{i}"},
        )
    await js.publish_async_completed()
    return count / (time.perf_counter() - started)


def kubeconfig(url: str, path: Path) -> Path:
    """A kubeconfig for a plain-HTTP kubesim without auth, as `gati-operator run` reads it."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubesim", "cluster": {"server": url}}],
        "users": [{"name": "bench", "user": {}}],
        "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "bench"}}],
        "current-context": "kubesim",
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


class WatcherProcess:
    """`gati-operator run watcher` as a child process; start and stop it as often as wanted."""

    def __init__(self, nats_url: str, kubeconfig: Path, log: Path, **env: str) -> None:
        self.port = _free_port()
        self._env = {
            **os.environ,
            "GATI_NATS_URL": nats_url,
            "KUBECONFIG": str(kubeconfig),
            "GATI_INSTANCE_ID": "bench-watcher",
            "GATI_HTTP_PORT": str(self.port),
            "GATI_LOG_FORMAT": "json",
            "GATI_WATCH_BOOKMARK_INTERVAL": str(BOOKMARK_INTERVAL),
            **env,
        }
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        with self._log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gati_cli", "run", "watcher"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env,
            )
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"watcher exited with {self.process.returncode}; see {self._log}")
        self.process = None

    @contextlib.contextmanager
    def running(self) -> Iterator[int]:
        pid = self.start()
        try:
            yield pid
        finally:
            self.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


LAG_HISTOGRAM = "gati_watcher_change_lag_seconds"
PUBLISH_HISTOGRAM = "gati_watcher_publish_seconds"


async def buckets_of(
    session: aiohttp.ClientSession, port: int, histogram: str = LAG_HISTOGRAM
) -> dict[float, float]:
    """One of the watcher's histograms: cumulative count by upper bound (seconds)."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        resp.raise_for_status()
        text = await resp.text()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{histogram}_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The smallest bucket bound holding the `q` quantile of what was observed in between."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts[float("inf")]
    for bound, count in counts.items():
        if total and count >= total * q:
            return bound
    return float("inf")


def setup_cluster(url: str, namespaces: Sequence[str]) -> None:
    config = client.Configuration()
    config.host = url
    with client.ApiClient(config) as api:
        extensions = client.ApiextensionsV1Api(api)
        for crd in custom_resource_definitions():
            extensions.create_custom_resource_definition(cast(Any, crd))
        for namespace in namespaces:
            client.CoreV1Api(api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
            )


async def tail(nc: Client, arrivals: Arrivals) -> None:
    """Every change event from now on, into `arrivals`."""
    await nc.jetstream().subscribe(
        "gati.cr.>",
        stream=STREAM,
        cb=arrivals.on_message,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.NEW,
        config=ConsumerConfig(),
    )


def _handler(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"handlerPath": "/api/bench", "version": "v1", "image": "acme/b:1"},
    }


class Writer:
    def __init__(self, session: aiohttp.ClientSession, url: str, namespace: str = NAMESPACE):
        self.session = session
        self.namespace = namespace
        self.base = f"{url}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/gatihandlers"

    async def create(self, name: str) -> dict[str, Any]:
        """The created object's metadata."""
        async with self.session.post(self.base, json=_handler(self.namespace, name)) as resp:
            resp.raise_for_status()
            return cast(dict[str, Any], (await resp.json())["metadata"])

    async def patch(self, name: str, value: int) -> str:
        async with self.session.patch(
            f"{self.base}/{name}",
            json={"metadata": {"annotations": {"bench.gati.dev/seq": str(value)}}},
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            resp.raise_for_status()
            return str((await resp.json())["metadata"]["resourceVersion"])

    async def delete(self, name: str) -> None:
        async with self.session.delete(f"{self.base}/{name}") as resp:
            resp.raise_for_status()


async def _hook(
    session: aiohttp.ClientSession, url: str, hook: str, body: Any, method: str
) -> None:
    async with session.request(method, f"{url}/kubesim/{hook}", json=body) as resp:
        resp.raise_for_status()


async def run(burst: int, rate: int, seconds: float) -> dict[str, Any]:
    # Start-up objects are never garbage; frozen, no collection here (nor in kubesim, forked
    # from here) walks them in the middle of a measurement.
    gc.freeze()
    started = time.perf_counter()
    kubesim = ChildKubeSim(bookmark_interval=BOOKMARK_INTERVAL, max_history=burst + 10_000)
    url = kubesim.start()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp), name="bench") as server:
        settings = Settings.load(environ={"GATI_NATS_URL": server.url, "GATI_INSTANCE_ID": "b"})
        connection = await connect(settings, name="bench")
        await provision_bus(connection.jsm, settings)
        nc = await nats.connect(server.url)
        raw = await _raw_rate(nc, burst)
        raw_async = await _raw_async_rate(nc, burst)
        _progress(started, "raw publish")
        setup_cluster(url, (NAMESPACE,))
        arrivals = Arrivals()
        await tail(nc, arrivals)
        watcher = WatcherProcess(
            server.url, kubeconfig(url, Path(tmp) / "kubeconfig"), Path(tmp) / "watcher.log"
        )
        async with aiohttp.ClientSession() as session:
            with watcher.running() as pid:
                writer = Writer(session, url)
                names = [f"h{i}" for i in range(OBJECTS)]
                await gather_limited(writer.create(name) for name in names)
                await arrivals.until(OBJECTS)
                _progress(started, "watcher up, objects created")
                sent = await buckets_of(session, watcher.port, PUBLISH_HISTOGRAM)
                pids = {"watcher": pid, "nats-server": server.pid}
                burst_rate, burst_cpu = await _burst(
                    session, url, writer, names, arrivals, pids, burst
                )
                _progress(started, "burst")
                acked = await buckets_of(session, watcher.port, PUBLISH_HISTOGRAM)
                histogram = await buckets_of(session, watcher.port)
                lags = await _lag(writer, names, arrivals, rate, seconds, pids)
                own = await buckets_of(session, watcher.port)
                _progress(started, "lag")
        await nc.close()
        await connection.close()
    kubesim.stop()
    _progress(started, "stopped")
    return {
        "raw_publish_per_s": round(raw),
        "raw_publish_async_per_s": round(raw_async),
        "burst_changes": burst,
        "burst_events_per_s": round(burst_rate),
        "burst_vs_raw": round(burst_rate / raw, 3),
        "burst_vs_raw_async": round(burst_rate / raw_async, 3),
        "burst_watcher_cpu_s": burst_cpu["watcher"],
        "burst_publish_to_ack_p50_le_ms": bucket_quantile(sent, acked, 0.5) * 1000,
        "burst_watcher_cpu_s_per_1000": round(burst_cpu["watcher"] / burst * 1000, 3),
        "burst_nats_cpu_s_per_1000": round(burst_cpu["nats-server"] / burst * 1000, 3),
        "lag_rate_per_s": rate,
        "lag_changes": len(lags.whole),
        "lag_p50_ms": round(percentile(lags.whole, 50), 2),
        "lag_p99_ms": round(percentile(lags.whole, 99), 2),
        "lag_max_ms": round(lags.whole[-1], 2),
        "lag_reaching_watcher_p99_ms": round(percentile(lags.reaching, 99), 2),
        "lag_storing_p99_ms": round(percentile(lags.storing, 99), 2),
        "watcher_lag_p50_le_ms": bucket_quantile(histogram, own, 0.5) * 1000,
        "watcher_lag_p99_le_ms": bucket_quantile(histogram, own, 0.99) * 1000,
        "lag_watcher_cpu_s": lags.cpu_s["watcher"],
        "lag_watcher_cpu_s_per_1000": round(lags.cpu_s["watcher"] / len(lags.whole) * 1000, 3),
        "lag_nats_cpu_s_per_1000": round(lags.cpu_s["nats-server"] / len(lags.whole) * 1000, 3),
        "watcher_rss_mb": round(lags.watcher_rss_mb, 1),
    }


async def gather_limited(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await `calls`, `WRITERS` at a time (a client's connection pool, not a flood)."""
    semaphore = asyncio.Semaphore(WRITERS)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))


def _progress(started: float, what: str) -> None:
    print(f"bench.watcher: {what} at {time.perf_counter() - started:.1f} s", file=sys.stderr)


async def _burst(
    session: aiohttp.ClientSession,
    url: str,
    writer: Writer,
    names: list[str],
    arrivals: Arrivals,
    pids: Mapping[str, int],
    burst: int,
) -> tuple[float, dict[str, float]]:
    """The watch is silenced and refused while the changes are written, then let go."""
    await _hook(session, url, "faults", {"verb": "watch", "code": 503}, "POST")
    await _hook(session, url, "silence-watches", {"resource": "gatihandlers.gati.dev"}, "POST")
    before = len(arrivals.at)
    await gather_limited(writer.patch(names[i % OBJECTS], i) for i in range(burst))
    first_burst = set(arrivals.at)
    print(f"bench.watcher: {burst} changes written", file=sys.stderr)
    cpu = _cpu(pids)
    await _hook(session, url, "faults", None, "DELETE")
    await arrivals.until(before + burst)
    spent = _cpu_since(pids, cpu)
    times = sorted(t for rv, t in arrivals.at.items() if rv not in first_burst)
    return (len(times) - 1) / (times[-1] - times[0]), spent


def _cpu(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def _cpu_since(pids: Mapping[str, int], before: Mapping[str, float]) -> dict[str, float]:
    return {name: round(cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()}


@dataclass(frozen=True)
class Lags:
    """Paced writes' lags in ms, each sorted: whole (write's response to arrival in the stream),
    split at the watcher's `observedAt` into `reaching` (API server's delivery, the watch's
    read and hand-off) and `storing` (the watcher's publish, the PubAck, this tail's delivery).
    The two parts' quantiles do not add up to the whole's."""

    whole: list[float]
    reaching: list[float]
    storing: list[float]
    cpu_s: dict[str, float]
    """CPU seconds of each measured process (the watcher, nats-server) over the paced writes."""
    watcher_rss_mb: float


async def _lag(
    writer: Writer,
    names: list[str],
    arrivals: Arrivals,
    rate: int,
    seconds: float,
    pids: Mapping[str, int],
) -> Lags:
    """Writes paced at `rate`, with this process's collector held off: a collection here would
    stop the clock-reading loop and add its pause to the watcher's lag."""
    written: dict[str, float] = {}
    total = int(rate * seconds)
    before = len(arrivals.at)
    pending: set[asyncio.Task[None]] = set()

    async def timed(i: int) -> None:
        rv = await writer.patch(names[i % OBJECTS], 1_000_000 + i)
        written[rv] = time.perf_counter()

    gc.collect()
    gc.disable()
    try:
        cpu = _cpu(pids)
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(timed(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        await arrivals.until(before + total)
        spent = _cpu_since(pids, cpu)
    finally:
        gc.enable()
    observed = arrivals.observed
    return Lags(
        whole=sorted((arrivals.at[rv] - t) * 1000 for rv, t in written.items()),
        reaching=sorted((observed[rv] - t) * 1000 for rv, t in written.items()),
        storing=sorted((arrivals.at[rv] - observed[rv]) * 1000 for rv in written),
        cpu_s=spent,
        watcher_rss_mb=rss_mb(pids["watcher"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--burst", type=int, default=5_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    print_result(asyncio.run(run(args.burst, args.rate, args.seconds)))


def print_result(result: Mapping[str, Any]) -> None:
    """For a reader, then as the last line the JSON object `make bench` collects."""
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
