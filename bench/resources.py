"""Scenario 6 of issue 10: RSS and CPU seconds of each service with 10,000 objects to manage.

    python -m bench.resources [--objects 10000]

All four services run as `gati-operator run <service>` processes on one nats-server against a
fresh kubesim, as deployed. GatiHandlers are created (16 in flight) until the cluster holds
`--objects` API objects of the operator's: each handler brings the ConfigMap, Service and
Deployment rendered for it, so 10,000 objects are 2,500 handlers (the watcher itself lists and
watches the handlers and Deployments, 5,000 of them). Every handler must reach Running; then
the services get until they go quiet (timescape and the scaler still work through the
changes after the reconciler is done). Per service, and for the nats-server they share (bus,
not service: it is not held to the services' RSS target): RSS once warm and idle, peak RSS, and
CPU seconds from the first create until quiet. What grows with the objects is the peak minus the
idle RSS, given per 1,000 handlers so a larger cluster can be extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.convergence import (
    DEPLOYMENTS,
    HANDLERS,
    IN_FLIGHT,
    NAMESPACE,
    NotConverged,
    convergence,
    fresh_cluster,
    gati_operator,
    handler_body,
    warm_up,
)
from bench.harness import ResourceSampler, cpu_seconds, rss_mb
from bench.summary import RESOURCE_OBJECTS
from gati_cli.commands.run import SERVICES
from gati_contracts.handler import GatiHandler
from gati_contracts.labels import OWNER_LABEL
from gati_reconciler.manifests import render_handler

OBJECTS = RESOURCE_OBJECTS
QUIET_WINDOW = 2.0
QUIET_CPU_SHARE = 0.05
"""Quiet: the services together used under 5 % of a core over the last window."""
IDLE_LIMIT = 15.0
"""How long the services may take to settle after start-up before the idle RSS is read."""
QUIET_LIMIT = 30.0
OWNED = (DEPLOYMENTS, f"/api/v1/namespaces/{NAMESPACE}/services")
OWNED_CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def objects_per_handler() -> int:
    """The handler itself and what the reconciler renders for it."""
    body = handler_body("h")
    body["metadata"]["uid"] = "rendered-for-counting"  # the renderer owns objects by uid
    return 1 + len(render_handler(GatiHandler.model_validate(body)))


async def _count(session: aiohttp.ClientSession) -> int:
    """The operator's objects in the namespace, counted by the API server, not assumed."""
    total = 0
    for path in (HANDLERS, *OWNED, OWNED_CONFIGMAPS):
        params = {} if path == HANDLERS else {"labelSelector": OWNER_LABEL}
        async with session.get(path, params=params) as resp:
            resp.raise_for_status()
            total += len((await resp.json())["items"])
    return total


async def _until_quiet(pids: dict[str, int], deadline: float) -> float:
    """Seconds until the services' CPU falls quiet, or until `deadline`."""
    started = time.perf_counter()
    last = sum(cpu_seconds(pid) for pid in pids.values())
    while time.perf_counter() < deadline:
        await asyncio.sleep(QUIET_WINDOW)
        now = sum(cpu_seconds(pid) for pid in pids.values())
        if now - last < QUIET_WINDOW * QUIET_CPU_SHARE:
            break
        last = now
    return round(time.perf_counter() - started, 1)


async def _measure(
    url: str, handlers: int, pids: dict[str, int], kubesim: int, deadline: float
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT + 4)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:
        await warm_up(session)
        await _until_quiet(pids, min(deadline, time.perf_counter() + IDLE_LIMIT))
        idle = {name: rss_mb(pid) for name, pid in pids.items()}
        sampler = ResourceSampler({**pids, "kubesim": kubesim})
        sampler.start()
        try:
            converged = await convergence(session, handlers, deadline)
            quiet_s = await _until_quiet(pids, min(deadline, time.perf_counter() + QUIET_LIMIT))
        finally:
            used = sampler.stop()
        objects = await _count(session)
    services = {}
    for name, figures in used.items():
        row: dict[str, Any] = dict(figures)
        if name in idle:
            row["idle_rss_mb"] = round(idle[name], 1)
            growth = figures["peak_rss_mb"] - idle[name]
            row["rss_mb_per_1000_handlers"] = round(growth * 1000 / handlers, 1)
        services[name] = row
    return {
        "objects": objects,
        "handlers": handlers,
        "convergence": converged,
        "quiet_after_s": quiet_s,
        "services": services,
    }


def measure(objects: int = OBJECTS, deadline: float | None = None) -> dict[str, Any]:
    """One fresh cluster with every service; `error` says why nothing was measured."""
    handlers = -(-objects // objects_per_handler())
    if deadline is None:
        deadline = time.perf_counter() + 30.0 + handlers * 0.1
    with tempfile.TemporaryDirectory(prefix="bench-resources-") as tmp:
        work = Path(tmp)
        with fresh_cluster(work) as kubesim:
            try:
                with gati_operator(work / "kubeconfig", work, SERVICES) as pids:
                    return asyncio.run(_measure(kubesim.url, handlers, pids, kubesim.pid, deadline))
            except NotConverged as error:
                return {"error": str(error)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=OBJECTS)
    args = parser.parse_args()
    if args.objects < 1:
        parser.error(f"--objects must be at least 1, got {args.objects}")
    print(json.dumps(measure(args.objects)))


if __name__ == "__main__":
    main()
