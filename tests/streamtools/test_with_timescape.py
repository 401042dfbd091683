"""`replay --service timescape --dry-run` against what the real watcher, reconciler and
timescape recorded on kubesim and nats-server: the replay decides the same rollout steps,
decommission and rollback, and the same routing tables, from the stream alone."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from kubernetes import client

from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads
from reconciler.harness import Workloads, outcomes, running_reconciler
from streamtools.test_with_reconciler import gati
from timescape.running import has_weights, routes, running_timescape
from timescape.test_service import PATH, send_traffic, version

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]

DECIDED = {"rollout-step", "activated", "draining", "decommissioned", "rolled-back"}
"""Outcomes that change what a version serves; health-check failures are compared by count."""


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
        workloads.create(
            {
                "apiVersion": "gati.dev/v1alpha1",
                "kind": "GatiVersion",
                "metadata": {"name": "users-v1", "namespace": ns},
                "spec": {
                    "versionId": "v1",
                    "handlerRef": {"name": "users-v1"},
                    "decommission": {"graceSeconds": 1, "idleSamples": 1},
                },
            }
        )
        workloads.create(version(ns, "users-v1", "v1", "acme/u:1"))
        await tables.until(partial(has_weights, {"v1": 100}))
        workloads.create(version(ns, "users-v2", "v2", "acme/u:2"))
        await send_traffic(gati_connection, ns, PATH, "v2", requests=20)
        await tables.until(partial(has_weights, {"v2": 100}))
        await send_traffic(gati_connection, ns, PATH, "v1", requests=0)
        await seen.wait_for(lambda events: any(e.action == "decommissioned" for e in events))
        workloads.create(version(ns, "users-v3", "v3", "acme/u:3-failing"))
        await seen.wait_for(lambda events: any(e.action == "rolled-back" for e in events))

    replayed = [
        json.loads(line)
        for line in (
            await gati(
                nats_url, "replay", "--since", "1", "--service", "timescape", "--dry-run", "--json"
            )
        ).splitlines()
    ]
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
