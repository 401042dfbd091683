"""`gati-operator verify` over real servers: human and JSON output, exit codes; and a stream
message the watcher cannot read is repaired by a relist instead of crashing it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from kubernetes import client
from nats.aio.client import Client

from gati_cli.main import main as cli_main
from gati_contracts.headers import MSG_ID
from gati_contracts.subjects import cr_subject
from gati_runtime.nats_connection import NatsConnection
from watcher.helpers import Cluster, drift, handler, running_watcher, sample, stream_tail


async def test_verify_reports_drift_then_none_after_the_watcher_ran(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
    nats_url: str,
    gati_kubeconfig: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster.create(handler(cluster.namespace, "users.v1"))
    argv = ["verify", "--nats-url", nats_url, "--namespaces", cluster.namespace]

    assert await asyncio.to_thread(cli_main, [*argv, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] is False
    assert [(d["drift"], d["name"]) for d in report["drift"]] == [("missing", "users.v1")]

    async with running_watcher(gati_api, gati_connection, cluster.namespace):
        pass
    capsys.readouterr()  # the watcher's logs
    assert await asyncio.to_thread(cli_main, argv) == 0
    assert capsys.readouterr().out.startswith("no drift: 1 objects")


async def test_verify_without_a_stream_is_an_error_not_a_verdict(
    cluster: Cluster,
    nats_client: Client,
    nats_url: str,
    gati_kubeconfig: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["verify", "--nats-url", nats_url, "--namespaces", cluster.namespace]
    assert await asyncio.to_thread(cli_main, argv) == 2
    assert "could not check" in capsys.readouterr().err


async def test_an_unreadable_stream_message_is_repaired_not_fatal(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
) -> None:
    created = cluster.create(handler(cluster.namespace, "users"))
    subject = cr_subject("GatiHandler", cluster.namespace, "users")
    await gati_bus.jetstream().publish(subject, b"{not json", headers={MSG_ID: "garbage"})
    before = sample("gati_watcher_skipped_total", kind="gatihandler", reason="undecodable")
    async with stream_tail(gati_bus) as tail:
        async with running_watcher(gati_api, gati_connection, cluster.namespace):
            pass
        await tail.wait_for(lambda events: len(events) == 1)
    assert tail.events[0][1].uid == created["metadata"]["uid"]
    after = sample("gati_watcher_skipped_total", kind="gatihandler", reason="undecodable")
    assert after == before + 1
    assert (await drift(gati_api, gati_connection, cluster.namespace)).clean
