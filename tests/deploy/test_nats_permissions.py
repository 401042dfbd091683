"""The NATS config in deploy/nats, run as a real three-node cluster, grants each user only its part.

The test starts nats-server from the very files the StatefulSet mounts; only addresses, ports and
the store directory are rewritten, so the permissions proven here are the ones deployed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from gati_runtime.embedded_nats import EmbeddedNats, NodePorts, find_nats_server

NATS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nats"
USERS = ("watcher", "reconciler", "scaler", "timescape", "tooling")


def _password(user: str) -> str:
    return f"pw-{user}"


def _node_config(ports: NodePorts, routes: list[int], store: Path) -> str:
    text = (NATS_DIR / "nats.conf").read_text()
    text = text.replace('"0.0.0.0:4222"', f'"127.0.0.1:{ports.client}"')
    text = text.replace('"0.0.0.0:8222"', f'"127.0.0.1:{ports.monitor}"')
    text = text.replace('"0.0.0.0:6222"', f'"127.0.0.1:{ports.cluster}"')
    text = text.replace('"/data/jetstream"', f'"{store / "js"}"')
    route_list = "\n".join(f'    "nats://127.0.0.1:{port}"' for port in routes)
    return re.sub(r"routes: \[[^\]]*\]", f"routes: [\n{route_list}\n  ]", text)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    base = tmp_path_factory.mktemp("nats-deploy")
    all_ports = [NodePorts.allocate(clustered=True) for _ in range(3)]
    env = {**os.environ, **{f"GATI_NATS_{u.upper()}_PASSWORD": _password(u) for u in USERS}}
    processes: list[subprocess.Popen[bytes]] = []
    nodes: list[EmbeddedNats] = []
    try:
        for index, ports in enumerate(all_ports):
            store = base / f"n{index}"
            store.mkdir()
            routes = [p.cluster for p in all_ports if p is not ports and p.cluster is not None]
            # nats-server resolves includes relative to the config, so auth.conf sits beside it.
            shutil.copyfile(NATS_DIR / "auth.conf", store / "auth.conf")
            conf = store / "nats.conf"
            conf.write_text(_node_config(ports, routes, store))
            log = (store / "nats-server.log").open("ab")
            node_env = {**env, "POD_NAME": f"gati-nats-{index}"}
            processes.append(
                subprocess.Popen(
                    [str(find_nats_server()), "-c", str(conf)],
                    env=node_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            # Reuse the health wait of the embedded server: it polls /healthz on these ports.
            node = EmbeddedNats(store, name=f"gati-nats-{index}", ports=ports)
            node._process = processes[-1]
            nodes.append(node)
        for node in nodes:
            node.wait_ready(timeout=30.0)
        yield [node.url for node in nodes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)


async def _connect(urls: list[str], user: str, errors: list[str] | None = None) -> Client:
    async def record(error: Exception) -> None:
        if errors is not None:
            errors.append(str(error))

    return await nats.connect(
        servers=urls,
        user=user,
        password=_password(user),
        allow_reconnect=False,
        error_cb=record,
    )


async def _assert_denied(request: Awaitable[object], errors: list[str], subject: str) -> None:
    """The server refuses by reporting a permissions violation; the request itself times out."""
    with pytest.raises((NatsError, APIError, TimeoutError)):
        await request
    assert any("permissions violation" in e and subject.lower() in e.lower() for e in errors), (
        f"no permissions violation for {subject} in {errors}"
    )


async def _provision(urls: list[str]) -> None:
    nc = await _connect(urls, "watcher")
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(
                name="GATI",
                subjects=["gati.cr.>", "gati.owned.>", "gati.status.>", "gati.routes.>"],
                num_replicas=3,
            )
        )
        await js.publish("gati.cr.gatihandler.default.h1", b"{}")
    finally:
        await nc.close()


async def test_stream_runs_with_three_replicas_and_watcher_publishes(cluster: list[str]) -> None:
    await _provision(cluster)
    nc = await _connect(cluster, "tooling")
    try:
        info = await nc.jetstream().stream_info("GATI")
        assert info.config.num_replicas == 3
        assert info.cluster is not None
        assert len(info.cluster.replicas or []) == 2
        assert info.state.messages >= 1
    finally:
        await nc.close()


async def test_tooling_reads_and_creates_consumers_but_cannot_write(cluster: list[str]) -> None:
    await _provision(cluster)
    errors: list[str] = []
    nc = await _connect(cluster, "tooling", errors)
    try:
        js = nc.jetstream(timeout=1)
        sub = await js.subscribe("gati.cr.>", ordered_consumer=True)
        message = await sub.next_msg(timeout=10)
        assert message.subject.startswith("gati.cr.")
        await sub.unsubscribe()
        assert (await js.get_last_msg("GATI", "gati.cr.gatihandler.default.h1")).data == b"{}"

        denials = (
            (js.publish("gati.cr.gatihandler.default.h1", b"x", timeout=1), "gati.cr."),
            (js.purge_stream("GATI"), "$JS.API.STREAM.PURGE.GATI"),
            (js.delete_stream("GATI"), "$JS.API.STREAM.DELETE.GATI"),
            (js.delete_msg("GATI", 1), "$JS.API.STREAM.MSG.DELETE.GATI"),
            (js.add_stream(StreamConfig(name="T", subjects=["t.>"])), "$JS.API.STREAM.CREATE.T"),
        )
        for request, subject in denials:
            await _assert_denied(request, errors, subject)
    finally:
        await nc.close()
    assert "GATI" in await _stream_names(cluster)


async def _stream_names(urls: list[str]) -> list[str]:
    nc = await _connect(urls, "watcher")
    try:
        return [str(s.config.name) for s in await nc.jetstream().streams_info()]
    finally:
        await nc.close()


@pytest.mark.parametrize("user", ["reconciler", "scaler", "timescape", "tooling"])
async def test_only_the_watcher_publishes_cr_and_owned(cluster: list[str], user: str) -> None:
    await _provision(cluster)
    errors: list[str] = []
    nc = await _connect(cluster, user, errors)
    try:
        js = nc.jetstream()
        for subject in ("gati.cr.gatihandler.default.h1", "gati.owned.deployment.default.d1"):
            await _assert_denied(js.publish(subject, b"forged", timeout=1), errors, subject)
        if user != "tooling":
            ack = await js.publish("gati.status.gatihandler.default.h1", b"{}")
            assert ack.stream == "GATI"
    finally:
        await nc.close()


async def test_no_service_user_can_purge_or_delete(cluster: list[str]) -> None:
    await _provision(cluster)
    for user in ("watcher", "reconciler", "scaler", "timescape"):
        errors: list[str] = []
        nc = await _connect(cluster, user, errors)
        try:
            js = nc.jetstream(timeout=1)
            await _assert_denied(js.purge_stream("GATI"), errors, "$JS.API.STREAM.PURGE.GATI")
            await _assert_denied(js.delete_stream("GATI"), errors, "$JS.API.STREAM.DELETE.GATI")
        finally:
            await nc.close()
