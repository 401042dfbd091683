"""The NATS config in deploy/nats, run as a real three-node cluster, grants each user only its part.

The test starts nats-server from the very files the StatefulSet mounts; only addresses, ports and
the store directory are rewritten, so the permissions proven here are the ones deployed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from deploy.rendering import find, needs_kubectl, render
from gati_contracts.subjects import (
    LEASES_BUCKET,
    METRICS_STREAM,
    ROUTES_BUCKET,
    STREAM,
    traffic_subject,
)
from gati_runtime.embedded_nats import EmbeddedNats, NodePorts, find_nats_server
from gati_runtime.lease import Leases
from gati_runtime.nats_connection import connect
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings

NATS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nats"
SERVICE_USERS = ("watcher", "reconciler", "scaler", "timescape")
USERS = (*SERVICE_USERS, "tooling", "admin", "traffic")
# Replicas of these services must not act on one object at once (gati_runtime.lease).
LEASE_HOLDERS = ("reconciler", "scaler")
ALLOWED = 30.0
"""Seconds a permitted JetStream request may take: the streams are R3 on a fresh 3-node
cluster, which a loaded CI machine can make slow to answer."""
REFUSED = 1.0
"""Seconds a refused request waits: the server drops it with a permissions violation and it
never gets an answer, so this only bounds the test's time."""


def _password(user: str) -> str:
    return f"pw-{user}"


def _node_config(conf: str, ports: NodePorts, routes: list[int], store: Path) -> str:
    text = (NATS_DIR / conf).read_text()
    text = text.replace('"0.0.0.0:4222"', f'"127.0.0.1:{ports.client}"')
    text = text.replace('"0.0.0.0:8222"', f'"127.0.0.1:{ports.monitor}"')
    text = text.replace('"0.0.0.0:6222"', f'"127.0.0.1:{ports.cluster}"')
    text = text.replace('"/data/jetstream"', f'"{store / "js"}"')
    route_list = "\n".join(f'    "nats://127.0.0.1:{port}"' for port in routes)
    return re.sub(r"routes: \[[^\]]*\]", f"routes: [\n{route_list}\n  ]", text)


@contextlib.contextmanager
def _servers(
    conf: str, base: Path, size: int, secret_env: Mapping[str, str] | None = None
) -> Iterator[list[str]]:
    """`size` nodes started from `deploy/nats/<conf>` with the Secret's passwords in their
    environment, as the StatefulSet starts them; yields their client URLs once all are healthy."""
    all_ports = [NodePorts.allocate(clustered=size > 1) for _ in range(size)]
    if secret_env is None:
        secret_env = {f"GATI_NATS_{u.upper()}_PASSWORD": _password(u) for u in USERS}
    env = {**os.environ, **secret_env}
    processes: list[subprocess.Popen[bytes]] = []
    nodes: list[EmbeddedNats] = []
    try:
        for index, ports in enumerate(all_ports):
            store = base / f"n{index}"
            store.mkdir()
            routes = [p.cluster for p in all_ports if p is not ports and p.cluster is not None]
            # nats-server resolves includes relative to the config, so auth.conf sits beside it.
            shutil.copyfile(NATS_DIR / "auth.conf", store / "auth.conf")
            config = store / conf
            config.write_text(_node_config(conf, ports, routes, store))
            log = (store / "nats-server.log").open("ab")
            node_env = {**env, "POD_NAME": f"gati-nats-{index}"}
            processes.append(
                subprocess.Popen(
                    [str(find_nats_server()), "-c", str(config)],
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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    with _servers("nats.conf", tmp_path_factory.mktemp("nats-deploy"), 3) as urls:
        yield urls


@pytest.fixture
def single_node(tmp_path: Path) -> Iterator[list[str]]:
    """The dev overlay's one node (nats-single.conf), fresh for each test."""
    with _servers("nats-single.conf", tmp_path, 1) as urls:
        yield urls


async def _connect(
    urls: list[str],
    user: str,
    errors: list[str] | None = None,
    noticed: asyncio.Event | None = None,
) -> Client:
    async def record(error: Exception) -> None:
        if errors is not None:
            errors.append(str(error))
        if noticed is not None:
            noticed.set()

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


def _settings(urls: list[str], replicas: int) -> Settings:
    return Settings.load(
        environ={
            "GATI_NATS_URL": ",".join(urls),
            "GATI_STREAM_REPLICAS": str(replicas),
            "GATI_METRICS_REPLICAS": str(replicas),
        }
    )


async def _provision(urls: list[str]) -> None:
    """The bus as the services provision it, with the production replica count."""
    nc = await _connect(urls, "watcher")
    try:
        await provision_bus(nc.jsm(), _settings(urls, 3))
        await nc.jetstream().publish("gati.cr.gatihandler.default.h1", b"{}")
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
        js = nc.jetstream(timeout=ALLOWED)
        sub = await js.subscribe("gati.cr.>", ordered_consumer=True)
        message = await sub.next_msg(timeout=ALLOWED)
        assert message.subject.startswith("gati.cr.")
        await sub.unsubscribe()
        assert (await js.get_last_msg("GATI", "gati.cr.gatihandler.default.h1")).data == b"{}"

        refused = nc.jetstream(timeout=REFUSED)
        denials = (
            (refused.publish("gati.cr.gatihandler.default.h1", b"x"), "gati.cr."),
            (refused.purge_stream("GATI"), "$JS.API.STREAM.PURGE.GATI"),
            (refused.delete_stream("GATI"), "$JS.API.STREAM.DELETE.GATI"),
            (refused.delete_msg("GATI", 1), "$JS.API.STREAM.MSG.DELETE.GATI"),
            (
                refused.add_stream(StreamConfig(name="T", subjects=["t.>"])),
                "$JS.API.STREAM.CREATE.T",
            ),
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
        js = nc.jetstream(timeout=ALLOWED)
        for subject in ("gati.cr.gatihandler.default.h1", "gati.owned.deployment.default.d1"):
            await _assert_denied(js.publish(subject, b"forged", timeout=REFUSED), errors, subject)
        if user != "tooling":
            ack = await js.publish("gati.status.gatihandler.default.h1", b"{}")
            assert ack.stream == "GATI"
    finally:
        await nc.close()


async def test_no_service_user_can_purge_or_delete(cluster: list[str]) -> None:
    await _provision(cluster)
    for user in SERVICE_USERS:
        errors: list[str] = []
        nc = await _connect(cluster, user, errors)
        try:
            js = nc.jetstream(timeout=REFUSED)
            await _assert_denied(js.purge_stream("GATI"), errors, "$JS.API.STREAM.PURGE.GATI")
            await _assert_denied(js.delete_stream("GATI"), errors, "$JS.API.STREAM.DELETE.GATI")
        finally:
            await nc.close()


@pytest.mark.parametrize("user", SERVICE_USERS)
async def test_any_service_starting_first_provisions_the_whole_bus(
    single_node: list[str], user: str
) -> None:
    """Whichever replica starts first creates every stream and bucket, so each user may."""
    nc = await _connect(single_node, user)
    try:
        changes = await provision_bus(nc.jsm(), _settings(single_node, 1))
    finally:
        await nc.close()
    assert [(c.name, c.action) for c in changes] == [
        (STREAM, "created"),
        (METRICS_STREAM, "created"),
        (f"KV_{ROUTES_BUCKET}", "created"),
        (f"KV_{LEASES_BUCKET}", "created"),
    ]


@pytest.mark.parametrize("user", SERVICE_USERS)
async def test_only_reconciler_and_scaler_take_leases(cluster: list[str], user: str) -> None:
    await _provision(cluster)
    errors: list[str] = []
    nc = await _connect(cluster, user, errors)
    try:
        timeout = ALLOWED if user in LEASE_HOLDERS else REFUSED
        leases = Leases(nc, f"{user}-0", scope="permissions-test", timeout=timeout)
        if user in LEASE_HOLDERS:
            lease = await leases.acquire(f"{user}-key", ttl=5)
            assert lease is not None
            await leases.release(lease)
        else:
            subject = f"$KV.{LEASES_BUCKET}."
            await _assert_denied(leases.acquire(f"{user}-key", ttl=5), errors, subject)
    finally:
        await nc.close()


def _pod_env(
    container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """A container's environment as the kubelet builds it: Secret keys resolved, then `$(VAR)`
    replaced by variables defined earlier in the list (later or unknown ones stay as written)."""
    env: dict[str, str] = {}
    for var in container.get("env") or ():
        if "value" in var:
            env[var["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"]
            )
        elif (ref := var.get("valueFrom", {}).get("secretKeyRef")) is not None:
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


@needs_kubectl
async def test_the_dev_secret_lets_each_service_and_tooling_connect_as_itself(
    tmp_path: Path,
) -> None:
    """One Secret feeds both sides: the NATS pods' password variables and each service's URL."""
    docs = render("dev")
    secrets = {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        for d in docs
        if d["kind"] == "Secret"
    }
    nats_pod = find(docs, "StatefulSet", "gati-nats")["spec"]["template"]["spec"]
    secret_env = _pod_env(nats_pod["containers"][0], secrets)
    secret_env.pop("POD_NAME", None)
    with _servers("nats-single.conf", tmp_path, 1, secret_env) as urls:
        port = urlsplit(urls[0]).port
        for service in SERVICE_USERS:
            pod = find(docs, "Deployment", f"gati-{service}")["spec"]["template"]["spec"]
            url = urlsplit(_pod_env(pod["containers"][0], secrets)["GATI_NATS_URL"])
            assert (url.username, url.hostname) == (service, "gati-nats.gati-system.svc")
            local = url._replace(netloc=f"{service}:{url.password}@127.0.0.1:{port}").geturl()
            settings = Settings.load(environ={"GATI_NATS_URL": local})
            async with asyncio.timeout(10):
                connection = await connect(settings, name=service)
            try:
                assert await connection.ready()
            finally:
                await connection.close()
        (users,) = (s for name, s in secrets.items() if name.startswith("gati-nats-users"))
        tooling = await nats.connect(
            urls[0], user="tooling", password=users["tooling"], allow_reconnect=False
        )
        await tooling.close()


async def _snapshot(nc: Client, answer_within: float) -> tuple[dict[str, Any], bytes]:
    """Start a snapshot of GATI as `nats stream backup` does: the answer, and its first chunk."""
    inbox = nc.new_inbox()
    chunks = await nc.subscribe(inbox)
    try:
        request = json.dumps({"deliver_subject": inbox, "chunk_size": 65536}).encode()
        answer = await nc.request(
            f"$JS.API.STREAM.SNAPSHOT.{STREAM}", request, timeout=answer_within
        )
        first = await chunks.next_msg(timeout=10)
    finally:
        await chunks.unsubscribe()
    return json.loads(answer.data), first.data


async def test_admin_can_back_up_the_stream_and_tooling_cannot(single_node: list[str]) -> None:
    """docs/operations.md backs up with the admin user; the read-only user must not."""
    admin = await _connect(single_node, "admin")
    try:
        await provision_bus(admin.jsm(), _settings(single_node, 1))
        await admin.jetstream().publish("gati.cr.gatihandler.default.h1", b"{}")
        answer, chunk = await _snapshot(admin, ALLOWED)
    finally:
        await admin.close()
    assert "error" not in answer, answer
    assert answer["config"]["name"] == STREAM
    assert chunk
    errors: list[str] = []
    tooling = await _connect(single_node, "tooling", errors)
    try:
        subject = f"$JS.API.STREAM.SNAPSHOT.{STREAM}"
        await _assert_denied(_snapshot(tooling, REFUSED), errors, subject)
    finally:
        await tooling.close()


async def test_the_traffic_user_publishes_samples_and_nothing_else(cluster: list[str]) -> None:
    await _provision(cluster)
    errors: list[str] = []
    nc = await _connect(cluster, "traffic", errors)
    try:
        ack = await nc.jetstream(timeout=ALLOWED).publish(
            traffic_subject("shop", "/api/users", "v1"), b"{}"
        )
        assert ack.stream == METRICS_STREAM
        refused = nc.jetstream(timeout=REFUSED)
        for subject in ("gati.status.gatihandler.default.h1", "gati.cr.gatihandler.default.h1"):
            await _assert_denied(refused.publish(subject, b"forged"), errors, subject)
        await _assert_denied(refused.stream_info(STREAM), errors, "$JS.API.STREAM.INFO.GATI")
    finally:
        await nc.close()


@pytest.mark.parametrize("user", [*SERVICE_USERS, "tooling"])
async def test_services_may_hear_max_deliveries_advisories(cluster: list[str], user: str) -> None:
    """A consumer loop learns of a message it gave up on from this advisory; only services
    consume, so tooling (the control that a refusal is seen) is refused it."""
    errors: list[str] = []
    noticed = asyncio.Event()
    nc = await _connect(cluster, user, errors, noticed)
    subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{user}"
    expected = user == "tooling"
    try:
        await nc.subscribe(subject)
        await nc.flush(timeout=5)  # the server answers a refused SUB before this PING's PONG
        # nats-py hands that answer to error_cb through tasks of its own, which may run some
        # loop turns later: wait for it (briefly, when none should come) before closing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(noticed.wait(), 5.0 if expected else 0.2)
    finally:
        await nc.close()
    refused = [e for e in errors if "permissions violation" in e and subject.lower() in e.lower()]
    assert bool(refused) == expected, errors
