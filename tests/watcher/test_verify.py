"""`gati-operator verify` over real servers: human and JSON output, exit codes, a stream read
bounded by a clear timeout; and a stream message the watcher cannot read is repaired by a
relist instead of crashing it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from kubernetes import client
from nats.aio.client import Client

from gati_cli.main import main as cli_main
from gati_contracts.headers import MSG_ID
from gati_contracts.subjects import STREAM, cr_subject
from gati_runtime.cancellation import within
from gati_runtime.nats_connection import NatsConnection
from gati_watcher import verify as verify_module
from gati_watcher.checkpoint import Checkpoint
from gati_watcher.verify import StreamReadTimeout, verify
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


async def _stalled_read(*_: object) -> Checkpoint:
    """A read of the last events that loses its first cancel (a nats-py `wait_for`,
    gh-86296), then waits for a last message that never comes."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
    await asyncio.Event().wait()
    raise AssertionError("a stalled read never returns")


async def test_a_stalled_stream_read_ends_at_its_timeout_naming_it(
    cluster: Cluster,
    gati_api: client.ApiClient,
    gati_bus: Client,
    gati_connection: NatsConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify_module, "last_events", _stalled_read)
    checked = verify(gati_api, gati_connection.js, STREAM, (cluster.namespace,), read_timeout=0.2)
    with pytest.raises(StreamReadTimeout, match=rf"in stream {STREAM} were not read within 0\.2s"):
        await within(checked, 30)  # unbounded, the read would wait for good


async def test_verify_whose_stream_read_stalls_is_an_error_naming_the_fix(
    cluster: Cluster,
    gati_bus: Client,
    nats_url: str,
    gati_kubeconfig: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify_module, "last_events", _stalled_read)
    argv = ["verify", "--nats-url", nats_url, "--namespaces", cluster.namespace]
    assert await asyncio.to_thread(cli_main, [*argv, "--read-timeout", "0.2"]) == 2
    error = capsys.readouterr().err
    assert "could not check: the last events of gati." in error
    assert "not read within 0.2s" in error
    assert "allow more time with --read-timeout (now 0.2)" in error


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_verify_refuses_a_read_timeout_that_is_no_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main(["verify", "--read-timeout", value])
    assert exit_.value.code == 2
    assert f"{value!r} is not a positive number of seconds" in capsys.readouterr().err


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
