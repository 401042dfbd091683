"""history and replay against what the real watcher and reconciler recorded, on kubesim and
nats-server: the outcome is linked to the spec change, and the replay renders the manifests the
reconciler applied."""

from __future__ import annotations

import asyncio
import json
import sys

from kubernetes import client

from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads
from reconciler.harness import Workloads, handler, outcomes, running_reconciler

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]


async def gati(nats_url: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gati_cli",
        *args,
        "--nats-url",
        nats_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


async def test_history_and_replay_match_what_the_reconciler_did(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
    nats_url: str,
) -> None:
    ns = workloads.namespace
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        workloads.create(handler(ns, "users", replicas=2))
        await seen.phase("users", "Running", generation=1)
        workloads.patch_spec("GatiHandler", "users", {"image": "acme/u:2"})
        await seen.phase("users", "Running", generation=2)
    live = workloads.deployment("users")

    timeline = json.loads(await gati(nats_url, "history", f"gh/{ns}/users", "--json"))
    [changed] = [
        entry
        for entry in timeline
        if '~ spec.image: "acme/u:1" -> "acme/u:2"' in entry["specChanges"]
    ]
    assert {o["event"]["service"] for o in changed["outcomes"]} == {"reconciler"}
    assert all(o["event"]["inputSequence"] == changed["sequence"] for o in changed["outcomes"])

    replayed = await gati(
        nats_url,
        "replay",
        "--since",
        "1",
        "--service",
        "reconciler",
        "--dry-run",
        "--json",
        "--filter",
        f"gati.cr.gatihandler.{ns}.users",
    )
    last = [json.loads(line) for line in replayed.splitlines()][-1]
    [rendered] = [m for m in last["manifests"] if m["kind"] == "Deployment"]
    template, applied = rendered["spec"]["template"], live["spec"]["template"]
    assert template["metadata"]["annotations"] == applied["metadata"]["annotations"]
    assert template["spec"]["containers"][0]["image"] == "acme/u:2"
    assert template["spec"]["containers"][0]["image"] == applied["spec"]["containers"][0]["image"]
