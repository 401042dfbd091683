"""Scenarios 1 and 2 of issue 10, for gati-operator and the kopf baseline in the same run.

1. convergence: N GatiHandlers created at once (16 writes in flight), until every one shows
   `status.phase: Running`; per-object latency is from its create request to the watch event
   that shows it Running.
2. update wave: the image of all N changed at once, until every Deployment carries the new image.

Each run gets a fresh kubesim process (same `--ready-after` for both contenders), the CRDs and a
namespace, then the contender's processes, then one warm-up handler that must converge before the
clock starts, so start-up and first list are not billed to the scenario. The measuring client is
this process; kubesim and every operator process (gati's nats-server too) run apart, and their
peak RSS and CPU seconds over both scenarios are sampled from /proc, so what bounds a contender
(one process's core, or the machine's two) can be read off. kubesim's /metrics, read before and
after, gives the contender's API calls per handler by verb and resource, the benchmark's own
requests taken out.

    python -m bench.convergence [--operator kopf|gati] [--n 100] [--no-update]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import ResourceSampler, api_requests, calls_per_object, percentile
from gati_contracts.crds import custom_resource_definitions
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.labels import OWNER_LABEL
from gati_kubesim.process import KubeSimProcess

NAMESPACE = "bench"
READY_AFTER = 0.5
IN_FLIGHT = 16
IMAGE = "ghcr.io/gati-framework/bench/echo:1.0.0"
NEW_IMAGE = "ghcr.io/gati-framework/bench/echo:2.0.0"
WARMUP_TIMEOUT = 60.0
PROGRESS_EVERY = 30.0
"""A long scenario says how far it got this often, so a slow run is told from a hung one."""
HANDLERS = f"/apis/{GATI_HANDLER.api_version}/namespaces/{NAMESPACE}/{GATI_HANDLER.plural}"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
KOPF_OPERATOR = Path(__file__).parent / "baseline_kopf" / "operator.py"
OPERATORS = ("gati", "kopf")


class NotConverged(RuntimeError):
    """The contender could not bring even one handler to Running: nothing to measure."""


def scenario_timeout(n: int) -> float:
    """Twice today's slower contender (~25 s per 1,000 on a quiet machine) plus start-up slack:
    a slow run still finishes, a hung one is cut off and recorded with what converged in time."""
    return 30.0 + n * 0.05


def _limit(n: int, deadline: float | None) -> float:
    """The scenario's own timeout, cut short by the part's deadline (a perf_counter instant)."""
    if deadline is None:
        return scenario_timeout(n)
    return max(0.0, min(scenario_timeout(n), deadline - time.perf_counter()))


def handler_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": GATI_HANDLER.api_version,
        "kind": GATI_HANDLER.kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"handlerPath": f"/{name}", "version": "v1", "image": IMAGE, "port": 8080},
    }


def is_running(obj: dict[str, Any]) -> bool:
    return bool((obj.get("status") or {}).get("phase") == "Running")


def deployment_image(obj: dict[str, Any]) -> str | None:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return containers[0].get("image") if containers else None


class Arrivals:
    """When each awaited name first met its condition, fed from a watch stream."""

    def __init__(self, names: set[str], key: Callable[[dict[str, Any]], str | None]) -> None:
        self.pending = set(names)
        self.at: dict[str, float] = {}
        self.key = key
        self.done = asyncio.Event()
        if not self.pending:
            self.done.set()

    def see(self, obj: dict[str, Any], met: bool) -> None:
        name = self.key(obj)
        if met and name in self.pending:
            self.pending.discard(name)
            self.at[name] = time.perf_counter()
            if not self.pending:
                self.done.set()


async def _watch(
    session: aiohttp.ClientSession,
    path: str,
    rv: str,
    on_object: Callable[[dict[str, Any]], None],
) -> None:
    params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
    async with session.get(path, params=params, timeout=aiohttp.ClientTimeout()) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            event = json.loads(line)
            if event["type"] in ("ADDED", "MODIFIED"):
                on_object(event["object"])
            elif event["type"] == "ERROR":
                raise RuntimeError(f"watch of {path} failed: {event['object']}")


async def _list_rv(session: aiohttp.ClientSession, path: str) -> str:
    async with session.get(path, params={"limit": "1"}) as resp:
        resp.raise_for_status()
        return str((await resp.json())["metadata"]["resourceVersion"])


async def _in_flight(n: int, op: Callable[[int], Awaitable[None]]) -> None:
    indexes = iter(range(n))

    async def worker() -> None:
        for i in indexes:
            await op(i)

    await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, n))))


async def _await_arrivals(
    session: aiohttp.ClientSession,
    path: str,
    arrivals: Arrivals,
    met: Callable[[dict[str, Any]], bool],
    writes: Callable[[], Coroutine[Any, Any, None]],
    limit_s: float,
) -> bool:
    """Whether every awaited object arrived within `limit_s`, the writes' own time included."""
    until = time.perf_counter() + limit_s
    rv = await _list_rv(session, path)
    watch = asyncio.create_task(_watch(session, path, rv, lambda o: arrivals.see(o, met(o))))
    writing = asyncio.create_task(writes())
    finished = asyncio.create_task(arrivals.done.wait())
    pending: set[asyncio.Task[Any]] = {watch, writing, finished}
    began = time.perf_counter()
    try:
        while finished in pending and watch in pending and time.perf_counter() < until:
            done, pending = await asyncio.wait(
                pending,
                timeout=min(until - time.perf_counter(), PROGRESS_EVERY),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done - {finished}:
                # a broken watch or a refused write is a harness failure, not a slow contender
                task.result()
            if not done:
                done_count, kind = len(arrivals.at), path.rsplit("/", 1)[-1]
                of = done_count + len(arrivals.pending)
                waited = time.perf_counter() - began
                print(f"bench   {kind}: {done_count}/{of} after {waited:.0f} s", flush=True)
        return arrivals.done.is_set()
    finally:
        for task in (watch, writing, finished):
            task.cancel()


def _latencies(
    sent: dict[str, float], arrivals: Arrivals, started: float, of: int
) -> dict[str, Any]:
    lat = [arrivals.at[name] - sent[name] for name in arrivals.at]
    result: dict[str, Any] = {
        "converged": len(arrivals.at),
        "of": of,
        "written": len(sent),
        "total_s": round(max(arrivals.at.values(), default=started) - started, 3),
    }
    if lat:
        result["p50_s"] = round(percentile(lat, 50), 3)
        result["p99_s"] = round(percentile(lat, 99), 3)
    return result


def _name_of(obj: dict[str, Any]) -> str | None:
    name = obj.get("metadata", {}).get("name")
    return str(name) if name is not None else None


def _owner_of(obj: dict[str, Any]) -> str | None:
    owner = obj.get("metadata", {}).get("labels", {}).get(OWNER_LABEL)
    return str(owner) if owner is not None else None


async def warm_up(session: aiohttp.ClientSession) -> None:
    arrivals = Arrivals({"warmup"}, _name_of)

    async def create() -> None:
        async with session.post(HANDLERS, json=handler_body("warmup")) as resp:
            resp.raise_for_status()

    if not await _await_arrivals(session, HANDLERS, arrivals, is_running, create, WARMUP_TIMEOUT):
        raise NotConverged(f"a single GatiHandler did not reach Running in {WARMUP_TIMEOUT:.0f} s")


async def convergence(
    session: aiohttp.ClientSession, n: int, deadline: float | None = None
) -> dict[str, Any]:
    names = [f"h{i:05d}" for i in range(n)]
    arrivals = Arrivals(set(names), _name_of)
    sent: dict[str, float] = {}

    async def create(i: int) -> None:
        sent[names[i]] = time.perf_counter()
        async with session.post(HANDLERS, json=handler_body(names[i])) as resp:
            resp.raise_for_status()

    started = time.perf_counter()
    await _await_arrivals(
        session,
        HANDLERS,
        arrivals,
        is_running,
        lambda: _in_flight(n, create),
        _limit(n, deadline),
    )
    return _latencies(sent, arrivals, started, n)


async def update_wave(
    session: aiohttp.ClientSession, n: int, deadline: float | None = None
) -> dict[str, Any]:
    names = [f"h{i:05d}" for i in range(n)]
    arrivals = Arrivals(set(names), _owner_of)
    sent: dict[str, float] = {}
    patch = {"spec": {"image": NEW_IMAGE}}
    headers = {"Content-Type": "application/merge-patch+json"}

    async def change(i: int) -> None:
        sent[names[i]] = time.perf_counter()
        async with session.patch(
            f"{HANDLERS}/{names[i]}", data=json.dumps(patch), headers=headers
        ) as resp:
            resp.raise_for_status()

    started = time.perf_counter()
    await _await_arrivals(
        session,
        DEPLOYMENTS,
        arrivals,
        lambda obj: deployment_image(obj) == NEW_IMAGE,
        lambda: _in_flight(n, change),
        _limit(n, deadline),
    )
    return _latencies(sent, arrivals, started, n)


async def _prepare_cluster(session: aiohttp.ClientSession) -> None:
    for crd in custom_resource_definitions():
        async with session.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd
        ) as resp:
            resp.raise_for_status()
    async with session.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}) as r:
        r.raise_for_status()


STOP_GRACE = 2.0
"""The figures are taken by then: a contender's graceful exit (kopf's takes ~10 s) is not
measured, so it is not waited for either; `make bench` spends the time on repeats instead."""


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )


@contextmanager
def kopf_operator(kubeconfig: Path, work: Path) -> Iterator[dict[str, int]]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    argv = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--quiet",
        "--standalone",
        "--namespace",
        NAMESPACE,
    ]
    processes = {"kopf": _spawn([*argv, str(KOPF_OPERATOR)], env, work / "kopf.log")}
    try:
        yield {name: p.pid for name, p in processes.items()}
    finally:
        _stop(processes)


GATI_SERVICES = ("watcher", "reconciler")
"""What does the job kopf's baseline does; the scaler and timescape have no kopf counterpart."""


@contextmanager
def gati_operator(
    kubeconfig: Path, work: Path, services: tuple[str, ...] = GATI_SERVICES
) -> Iterator[dict[str, int]]:
    """Services as `gati-operator run` processes on an embedded NATS, as deployed."""
    from gati_cli.commands.run import ServiceNotBuiltError, load_service
    from gati_runtime.embedded_nats import EmbeddedNats

    for service in services:
        try:
            load_service(service)
        except ServiceNotBuiltError as error:
            raise NotConverged(str(error)) from error
    with EmbeddedNats(work / "nats") as nats:
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for service in services:
                env = {
                    **os.environ,
                    "GATI_NATS_URL": nats.url,
                    "KUBECONFIG": str(kubeconfig),
                    "GATI_INSTANCE_ID": f"{service}-1",
                    "GATI_HTTP_PORT": "0",
                    "GATI_LOG_FORMAT": "json",
                }
                argv = [sys.executable, "-m", "gati_cli", "run", service]
                processes[service] = _spawn(argv, env, work / f"{service}.log")
            yield {**{name: p.pid for name, p in processes.items()}, "nats-server": nats.pid}
        finally:
            _stop(processes)


CONTENDERS = {"gati": gati_operator, "kopf": kopf_operator}


async def _requests(session: aiohttp.ClientSession) -> Counter[str]:
    async with session.get("/metrics") as resp:
        resp.raise_for_status()
        return api_requests(await resp.text())


def _own_requests(result: dict[str, Any]) -> dict[str, int]:
    """The benchmark's creates and image changes, the list that starts each scenario's watch,
    and its first read of /metrics: none of them are the contender's calls."""
    return {
        "create gatihandlers": result.get("convergence", {}).get("written", 0),
        "patch gatihandlers": result.get("update", {}).get("written", 0),
        "list gatihandlers": int("convergence" in result),
        "list deployments": int("update" in result),
        "get -": 1,
    }


async def _scenarios(
    url: str, n: int, sampler: ResourceSampler, update: bool, deadline: float | None
) -> dict[str, Any]:
    """Both scenarios, with what the contender's processes used meanwhile: CPU and RSS, the
    wall time they were sampled over, and the API calls per handler by verb and resource."""
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT + 4)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:
        await warm_up(session)
        result: dict[str, Any] = {}
        before = await _requests(session)
        sampler.start()
        began = time.perf_counter()
        try:
            result["convergence"] = await convergence(session, n, deadline)
            if update:
                result["update"] = await update_wave(session, n, deadline)
        finally:
            result["resources"] = sampler.stop()
            result["sampled_s"] = round(time.perf_counter() - began, 3)
        after = await _requests(session)
        result["api_calls"] = calls_per_object(before, after, n, _own_requests(result))
    return result


@contextmanager
def fresh_cluster(work: Path) -> Iterator[KubeSimProcess]:
    """A kubesim process of its own with the CRDs and the namespace; kubeconfig in `work`."""
    kubesim = KubeSimProcess(
        "--kubeconfig-out", str(work / "kubeconfig"), "--ready-after", str(READY_AFTER)
    )
    with kubesim:

        async def prepare() -> None:
            async with aiohttp.ClientSession(base_url=kubesim.url) as session:
                await _prepare_cluster(session)

        asyncio.run(prepare())
        yield kubesim


def run_once(
    operator: str,
    n: int,
    *,
    update: bool = True,
    deadline: float | None = None,
    sampler: Callable[[dict[str, int]], ResourceSampler] = ResourceSampler,
) -> dict[str, Any]:
    """One fresh cluster, one contender, scenario 1 and (with `update`) 2; `error` says why
    nothing was measured. `deadline` (a perf_counter instant) cuts the scenarios' waits short.
    `sampler` builds what watches the processes (by name, PID) over exactly the scenarios, so
    bench.profile can attach its profiler to the same window without a copy of this run."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{operator}-") as tmp:
        work = Path(tmp)
        with fresh_cluster(work) as kubesim:
            try:
                with CONTENDERS[operator](work / "kubeconfig", work) as pids:
                    watching = sampler({**pids, "kubesim": kubesim.pid})
                    return asyncio.run(_scenarios(kubesim.url, n, watching, update, deadline))
            except NotConverged as error:
                return {"error": str(error), "logs": _log_tails(work)}


def _log_tails(work: Path, lines: int = 5) -> dict[str, list[str]]:
    """The end of each contender's log, so a failed run says why in the results."""
    return {
        log.stem: log.read_text(errors="replace").splitlines()[-lines:]
        for log in sorted(work.glob("*.log"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operator", choices=OPERATORS, default="kopf")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--no-update", action="store_true", help="scenario 1 only")
    args = parser.parse_args()
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    print(json.dumps(run_once(args.operator, args.n, update=not args.no_update)))


if __name__ == "__main__":
    main()
