"""kubesim throughput and memory: creates/s, gets/s, watch events/s, RSS at N objects.

Runs `gati-operator kubesim` as a separate process (so its RSS is its own) and drives it over
HTTP with aiohttp, as clients do. Prints a table and one JSON line.

    python -m bench.kubesim [--objects 10000] [--concurrency 32] [--watchers 10] [--handlers 300]

`server_cpu_ms_per_handler` is the server's CPU for the requests an operator makes to bring
one handler up and roll it once (create, server-side apply of its ConfigMap, Service and
Deployment, an event, status reads and writes, the update wave's patch and re-apply) plus the
Deployment-readiness writes kubesim makes itself and the fan-out to two watches: what
`bench.convergence` bills to kubesim per handler, without running an operator.
`server_cpu_us_per_probe` is a `GET /healthz`: the HTTP layer's own cost per request (server,
routing, authentication, metrics), which every API request pays on top of its work; ~100-140
us under aiohttp's server, ~40-55 us under kubesim's own (loaded 2-core machine).

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

from gati_contracts.crds import custom_resource_definitions
from gati_contracts.kinds import GATI_HANDLER
from gati_kubesim.process import KubeSimProcess

NAMESPACE = "bench"
OPERATOR = "gati-operator"
HANDLERS = f"/apis/{GATI_HANDLER.api_version}/namespaces/{NAMESPACE}/{GATI_HANDLER.plural}"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"


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

            async def probe(i: int) -> None:
                async with session.get("/healthz") as resp:
                    await resp.read()

            # The HTTP layer alone: a probe is parsed, routed, counted and answered, no more.
            cpu_started = _cpu_s(proc.pid)
            await _in_batches(objects, concurrency, probe)
            probe_cpu = _cpu_s(proc.pid) - cpu_started

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
        "server_cpu_us_per_probe": round(probe_cpu / objects * 1e6),
        "list_all_s": round(list_s, 3),
        "listed": listed,
        "live_watch_events_per_s": round(watchers * objects / live_s),
        "replay_watch_events_per_s": round(replayed / replay_s),
        "rss_mb_empty": round(rss_empty, 1),
        "rss_mb_at_objects": round(rss_full, 1),
        "rss_mb_end": round(rss_end, 1),
    }


def _labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": OPERATOR,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "handler",
        "gati.dev/kind": "gatihandler",
        "gati.dev/owner": name,
    }


def _owned_meta(name: str, uid: str) -> dict[str, Any]:
    owner = {"apiVersion": GATI_HANDLER.api_version, "kind": GATI_HANDLER.kind, "name": name}
    return {
        "name": name,
        "namespace": NAMESPACE,
        "labels": _labels(name),
        "annotations": {"gati.dev/handler-path": f"/{name}"},
        "ownerReferences": [{**owner, "uid": uid, "controller": True, "blockOwnerDeletion": True}],
    }


def _applied(name: str, uid: str, image: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, apply body) of the ConfigMap, Service and Deployment an operator keeps."""
    core = f"/api/v1/namespaces/{NAMESPACE}"
    probe = {"tcpSocket": {"port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    container = {
        "name": "handler",
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    selector = {"gati.dev/kind": "gatihandler", "gati.dev/owner": name}
    return [
        (
            f"{core}/configmaps/{name}-env",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {**_owned_meta(name, uid), "name": f"{name}-env"},
                "data": {"GATI_HANDLER_PATH": f"/{name}"},
            },
        ),
        (
            f"{core}/services/{name}",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _owned_meta(name, uid),
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [
                        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
                    ],
                },
            },
        ),
        (
            f"{DEPLOYMENTS}/{name}",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": _owned_meta(name, uid),
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": selector},
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
                    },
                    "template": {
                        "metadata": {
                            "labels": _labels(name),
                            "annotations": {"gati.dev/config-hash": image},
                        },
                        "spec": {
                            "automountServiceAccountToken": False,
                            "securityContext": {"runAsNonRoot": True},
                            "containers": [container],
                        },
                    },
                },
            },
        ),
    ]


def _handler_status(phase: str, generation: int) -> dict[str, Any]:
    conditions = [
        {
            "type": kind,
            "status": "True" if (kind == "Ready") == (phase == "Running") else "False",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": phase,
            "message": f"handler is {phase}",
            "observedGeneration": generation,
        }
        for kind in ("Ready", "Progressing", "Degraded")
    ]
    return {
        "phase": phase,
        "replicas": 1,
        "observedGeneration": generation,
        "conditions": conditions,
    }


async def _count_available(
    session: aiohttp.ClientSession, rv: str, image: str, want: int, done: asyncio.Event
) -> None:
    """Watch Deployments until `want` of them run `image` and are available."""
    ready: set[str] = set()
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "600"}
    async with session.get(DEPLOYMENTS, params=params) as resp:
        async for line in resp.content:
            obj = json.loads(line)["object"]
            spec = obj["spec"]["template"]["spec"]["containers"][0]
            available = (obj.get("status") or {}).get("availableReplicas") == 1
            if spec["image"] == image and available:
                ready.add(obj["metadata"]["name"])
                if len(ready) >= want:
                    break
    done.set()


async def _drain(session: aiohttp.ClientSession, path: str, rv: str) -> None:
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "600"}
    async with session.get(path, params=params) as resp:
        async for _line in resp.content:
            pass


async def operator_mix(handlers: int, concurrency: int = 16) -> dict[str, Any]:
    """Server CPU per handler for an operator's requests (see the module docstring)."""
    proc = KubeSimProcess("--ready-after", "0.05")
    base = proc.start()
    try:
        async with aiohttp.ClientSession(base_url=base) as session:
            for crd in custom_resource_definitions():
                path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
                async with session.post(path, json=crd) as r:
                    r.raise_for_status()
            async with session.post(
                "/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}
            ) as r:
                r.raise_for_status()
                rv = (await r.json())["metadata"]["resourceVersion"]
            uids: dict[int, str] = {}
            apply = {"Content-Type": "application/apply-patch+yaml"}
            params = {"fieldManager": OPERATOR, "force": "true"}

            async def write_status(i: int, phase: str) -> None:
                async with session.get(f"{HANDLERS}/h-{i:05d}") as resp:
                    obj = await resp.json()
                obj["status"] = _handler_status(phase, obj["metadata"]["generation"])
                async with session.put(f"{HANDLERS}/h-{i:05d}/status", json=obj) as resp:
                    resp.raise_for_status()

            async def reconcile(i: int, image: str) -> None:
                name = f"h-{i:05d}"
                for path, body in _applied(name, uids[i], image):
                    async with session.patch(
                        path, data=json.dumps(body), headers=apply, params=params
                    ) as resp:
                        resp.raise_for_status()
                event = {
                    "metadata": {"generateName": f"{name}."},
                    "eventTime": "2026-01-01T00:00:00.000000Z",
                    "reportingController": "gati.dev/reconciler",
                    "reportingInstance": "reconciler-1",
                    "action": "Reconcile",
                    "reason": "Applied",
                    "note": f"applied {image}",
                    "type": "Normal",
                    "regarding": {"kind": GATI_HANDLER.kind, "name": name, "uid": uids[i]},
                }
                events = f"/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"
                async with session.post(events, json=event) as resp:
                    resp.raise_for_status()
                await write_status(i, "Progressing")

            async def create(i: int) -> None:
                body = {
                    "apiVersion": GATI_HANDLER.api_version,
                    "kind": GATI_HANDLER.kind,
                    "metadata": {"name": f"h-{i:05d}", "namespace": NAMESPACE},
                    "spec": {
                        "handlerPath": f"/h-{i}",
                        "version": "v1",
                        "image": "v1",
                        "port": 8080,
                    },
                }
                async with session.post(HANDLERS, json=body) as resp:
                    resp.raise_for_status()
                    uids[i] = (await resp.json())["metadata"]["uid"]
                await reconcile(i, "echo:1")

            async def change(i: int) -> None:
                patch = {"spec": {"image": "v2"}}
                headers = {"Content-Type": "application/merge-patch+json"}
                async with session.patch(
                    f"{HANDLERS}/h-{i:05d}", data=json.dumps(patch), headers=headers
                ) as resp:
                    resp.raise_for_status()
                await reconcile(i, "echo:2")

            watches = [
                asyncio.create_task(_drain(session, HANDLERS, rv)),
                asyncio.create_task(_drain(session, DEPLOYMENTS, rv)),
            ]
            cpu_started = _cpu_s(proc.pid)
            started = time.perf_counter()
            for image, step in (("echo:1", create), ("echo:2", change)):
                ready = asyncio.Event()
                waiter = asyncio.create_task(_count_available(session, rv, image, handlers, ready))
                await _in_batches(handlers, concurrency, step)
                await waiter
                await _in_batches(handlers, concurrency, lambda i: write_status(i, "Running"))
            elapsed = time.perf_counter() - started
            cpu = _cpu_s(proc.pid) - cpu_started
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
    finally:
        proc.stop()
    return {
        "handlers": handlers,
        "mix_s": round(elapsed, 2),
        "server_cpu_s_mix": round(cpu, 2),
        "server_cpu_ms_per_handler": round(cpu / handlers * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--handlers", type=int, default=300, help="0 skips the operator mix")
    args = parser.parse_args()
    result = asyncio.run(run(args.objects, args.concurrency, args.watchers))
    if args.handlers:
        result |= asyncio.run(operator_mix(args.handlers))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
