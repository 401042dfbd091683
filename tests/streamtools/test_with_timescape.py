"""`replay --service timescape --dry-run` against what the real watcher, reconciler and
timescape recorded on kubesim and nats-server: the replay decides the same rollout steps,
decommission and rollback, and the same routing tables, from the stream alone.

The replay's clock runs on when the watcher *recorded* an object, the service's on when it
*read* it, which is earlier by the watcher's lag when a pass another event started finds an
object the stream does not hold yet; and the replay decides a deadline only once a later record
is stored. So the scenario keeps every decision clear of that lag: the versions that roll out ask
for no replicas, so readiness (read live, replayed from the Deployment's recorded event) never
decides them, and users-v1's router keeps reporting idle windows until the replay has decided
what the service did, since a report that lands before the replay drained the version is reset
by the drain (as it is in the service)."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

from kubernetes import client

from fixtures.subject_tail import WAIT
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads
from reconciler.harness import Workloads, outcomes, running_reconciler
from streamtools.test_with_reconciler import gati
from timescape.running import has_weights, routes, running_timescape
from timescape.test_service import (
    PATH,
    failing_version,
    quick_decommission,
    send_traffic,
    version,
)

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]

DECIDED = {"rollout-step", "activated", "draining", "decommissioned", "rolled-back"}
"""Outcomes that change what a version serves; health-check failures are compared by count."""


async def replay(nats_url: str) -> list[dict[str, Any]]:
    """What `replay --service timescape` decides over the whole stream so far."""
    output = await gati(
        nats_url, "replay", "--since", "1", "--service", "timescape", "--dry-run", "--json"
    )
    return [json.loads(line) for line in output.splitlines()]


async def replay_once_decided(
    nats_url: str, connection: NatsConnection, namespace: str, action: str, name: str
) -> list[dict[str, Any]]:
    """The replay, once it has decided `action` for version `name`; between runs users-v1's
    router reports an idle window (see the module), which changes nothing once users-v1 is
    decommissioned."""
    async with asyncio.timeout(WAIT):
        while True:
            replayed = await replay(nats_url)
            if any(d["action"] == action and d["target"].endswith(f"/{name}") for d in replayed):
                return replayed
            await send_traffic(connection, namespace, PATH, "v1", requests=0)


def ready_at_once(namespace: str, name: str, version_id: str, image: str) -> dict[str, Any]:
    """A version with no replicas, so readiness never decides its rollout (see the module)."""
    obj = version(namespace, name, version_id, image)
    obj["spec"]["replicas"] = 0
    return obj


def shares(versions: list[dict[str, Any]]) -> dict[str, int]:
    return {v["versionId"]: v["weight"] for v in versions if v["weight"]}


def changes(tables: list[dict[str, int]]) -> list[dict[str, int]]:
    return [t for t, before in zip(tables, [{}, *tables], strict=False) if t != before]


async def test_replay_reproduces_the_rollout_decommission_and_rollback_timescape_published(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
    nats_url: str,
) -> None:
    ns = workloads.namespace
    async with (
        routes(gati_connection) as tables,
        outcomes(gati_connection) as seen,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection),
    ):
        workloads.create(quick_decommission(ns, "users-v1", "v1"))
        workloads.create(ready_at_once(ns, "users-v1", "v1", "acme/u:1"))
        await tables.until(partial(has_weights, {"v1": 100}))
        workloads.create(ready_at_once(ns, "users-v2", "v2", "acme/u:2"))
        await send_traffic(gati_connection, ns, PATH, "v2", requests=20)
        await tables.until(partial(has_weights, {"v2": 100}))
        await send_traffic(gati_connection, ns, PATH, "v1", requests=0)
        await seen.wait_for(lambda events: any(e.action == "decommissioned" for e in events))
        await replay_once_decided(nats_url, gati_connection, ns, "decommissioned", "users-v1")
        workloads.create(failing_version(ns, "users-v3", "v3"))
        await seen.wait_for(lambda events: any(e.action == "rolled-back" for e in events))

    replayed = await replay_once_decided(nats_url, gati_connection, ns, "rolled-back", "users-v3")
    published = [e for e in seen.events if e.service == "timescape"]
    assert [(e.name, e.action, e.reason) for e in published if e.action in DECIDED] == [
        (d["target"].rsplit("/", 1)[1], d["action"], d["details"]["reason"])
        for d in replayed
        if d["action"] in DECIDED
    ]
    failed_checks = [e for e in published if e.action == "health-check"]
    assert len(failed_checks) == sum(d["action"] == "health-check" for d in replayed)
    recorded_tables = [
        shares([{"versionId": v.version_id, "weight": v.weight} for v in t.versions])
        for t in tables.events
    ]
    replayed_tables = [
        shares(d["details"]["versions"]) for d in replayed if d["action"] == "routes"
    ]
    assert changes(replayed_tables) == changes(recorded_tables)
    assert changes(replayed_tables) == [
        {"v1": 100},
        {"v1": 90, "v2": 10},
        {"v1": 50, "v2": 50},
        {"v2": 100},
    ]
