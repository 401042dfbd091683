"""`replay --service scaler --dry-run` against what the real watcher, reconciler and scaler
recorded on kubesim and nats-server: from the stream alone (handlers, Deployments and the
samples of GATI_METRICS) the replay writes the same replica counts, in the same order."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from kubernetes import client

from gati_runtime.nats_connection import NatsConnection
from gati_runtime.settings import Settings
from gati_watcher.watcher import Watcher
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads
from reconciler.harness import Workloads, handler
from scaler.running import FAST, scaling_stack
from scaler.test_events_mode import EVENTS, PATH, reach, router, scaled

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]

SCALER_ENV = {
    "GATI_SCALER_TICK_SECONDS": str(FAST.tick_seconds),
    "GATI_SCALER_WINDOW_SECONDS": str(FAST.window_seconds),
}
"""The tuning the scaler ran with, which the replay must decide with too."""


async def replay(nats_url: str) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gati_cli",
        "replay",
        "--since",
        "1",
        "--service",
        "scaler",
        "--dry-run",
        "--json",
        "--nats-url",
        nats_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ | SCALER_ENV,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return [json.loads(line) for line in stdout.decode().splitlines()]


async def test_replay_writes_the_replica_counts_the_scaler_wrote(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    bus_settings: Settings,
    workloads: Workloads,
    watcher: Watcher,
    nats_url: str,
) -> None:
    ns = workloads.namespace
    async with scaling_stack(gati_api, gati_connection, bus_settings) as seen:
        workloads.create(handler(ns, "users", handlerPath=PATH, scaling=EVENTS))
        await seen.phase("users", "Running")
        async with router(gati_connection, ns) as traffic:
            traffic.rate = 40.0
            await reach(seen, 4)
            traffic.rate = 0.0
            await reach(seen, 0)
            traffic.rate = 20.0
            await reach(seen, 2)

    replayed = await replay(nats_url)
    written = [d["details"]["desiredReplicas"] for d in replayed if d["action"] == "scaled"]
    assert written == scaled(seen.events)
    assert written[-1] == 2
    assert 0 in written
    recorded_reasons = [
        e.reason for e in seen.events if e.service == "scaler" and e.action == "scaled"
    ]
    assert [d["details"]["reason"] for d in replayed if d["action"] == "scaled"] == (
        recorded_reasons
    )
    # Every decision recorded, not only the writes: the same (replicas, reason) in the same
    # order. The service records one again when another status write dropped it, so repeats
    # are folded; samples stored after the scaler stopped give the replay a few more.
    decided = changes([(d["details"]["desiredReplicas"], d["details"]["reason"]) for d in replayed])
    recorded = changes(
        [(e.details["desiredReplicas"], e.reason) for e in seen.events if e.service == "scaler"]
    )
    assert decided[: len(recorded)] == recorded


def changes(decisions: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [d for d, before in zip(decisions, [None, *decisions], strict=False) if d != before]
