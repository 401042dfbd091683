"""The operator run as deployed: each service its own NATS user over TLS, kubesim over HTTPS with
a bearer token, and no planted secret anywhere on the bus or in a log line.

`tests/deploy/test_nats_permissions.py` proves the same `auth.conf` on a three-node cluster
(who may publish `gati.cr.>`, that nobody purges or deletes); here the services themselves must
run with those grants, and the read-only `tooling` user must manage to read as tools do.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import nats
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import APIError, NotFoundError

from fixtures.kubesim_server import api_client, install_gati_crds
from gati_contracts.events import OutcomeEvent, decode_event
from gati_contracts.subjects import STATUS_ROOT, STREAM
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.kube_config import kube_configuration
from gati_runtime.provisioning import provision_bus
from gati_runtime.redaction import LAST_APPLIED, REDACTED
from gati_runtime.settings import Settings
from reconciler.harness import handler
from security.secure_stack import USERS, SecureNats, Service, password, running_service, secure_nats

TOKEN = "operator-token-5b7e"
FROM_SECRET = "planted-in-a-secret-91c2"
PLAIN_ENV = "planted-as-plain-env-4d7a"
LAST_APPLIED_VALUE = "planted-in-last-applied-e30f"
PLANTED = (FROM_SECRET, PLAIN_ENV, LAST_APPLIED_VALUE)
REDACT = ",".join([LAST_APPLIED, "spec.env[*]", "spec.template.spec.containers[*].env[*].value"])
WAIT = 90.0


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNats]:
    with secure_nats(tmp_path_factory.mktemp("secure-nats")) as server:
        yield server


@pytest.fixture
def kube() -> Iterator[ThreadedKubeSim]:
    with ThreadedKubeSim(token=TOKEN, ready_after=0.05, bookmark_interval=0.2) as sim:
        yield sim


def _service_env(bus: SecureNats, user: str, kubeconfig: Path) -> dict[str, str]:
    return {
        "GATI_NATS_URL": bus.url(user),
        "GATI_NATS_TLS_CA": str(bus.cert.cert_file),
        "KUBECONFIG": str(kubeconfig),
        "GATI_REDACT_FIELDS": REDACT,
        "GATI_LOG_LEVEL": "debug",
        "GATI_WATCH_BOOKMARK_INTERVAL": "0.2",
    }


def _planted_handler() -> dict[str, Any]:
    obj = handler(
        "default",
        "users",
        replicas=1,
        env={
            "DB_PASSWORD": {"valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            "API_KEY": PLAIN_ENV,
        },
    )
    # What `kubectl apply` leaves behind after a user once had the password inline.
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": f'{{"env":"{LAST_APPLIED_VALUE}"}}'
    }
    return obj


async def _await_running(tooling: Client, services: list[Service], name: str) -> OutcomeEvent:
    """The reconciler's outcome, read through a consumer as tools read (core subscribe to
    `gati.status.>` is not granted to `tooling`)."""
    async with asyncio.timeout(WAIT):
        while True:  # the services provision the stream; nothing announces it
            _assert_alive(services)
            try:
                await tooling.jsm().stream_info(STREAM)
                break
            except NotFoundError:
                await asyncio.sleep(0.1)
    subscription = await tooling.jetstream().subscribe(f"{STATUS_ROOT}.>", ordered_consumer=True)
    try:
        async with asyncio.timeout(WAIT):
            while True:
                _assert_alive(services)
                try:
                    message = await subscription.next_msg(timeout=1.0)
                except NatsError:
                    continue
                event = decode_event(message.data, OutcomeEvent)
                if event.name == name and event.details.get("phase") == "Running":
                    return event
    finally:
        await subscription.unsubscribe()


def _assert_alive(services: list[Service]) -> None:
    for service in services:
        assert service.process.poll() is None, f"{service.name} exited:\n{service.log()}"


async def _everything_stored(tooling: Client) -> list[tuple[str, str, bytes]]:
    """(stream, subject, headers + payload) of every message in every stream of the account."""
    jsm = tooling.jsm()
    stored: list[tuple[str, str, bytes]] = []
    for info in await jsm.streams_info():
        name = info.config.name or ""
        for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                message = await jsm.get_msg(name, sequence)
            except NotFoundError:
                continue
            headers = repr(message.headers or {}).encode()
            stored.append((name, message.subject or "", headers + (message.data or b"")))
    return stored


async def test_services_run_as_their_users_and_no_secret_reaches_the_bus_or_logs(
    bus: SecureNats, kube: ThreadedKubeSim, tmp_path: Path
) -> None:
    api = api_client(kube.url, TOKEN, kube.sim.ca_file)
    install_gati_crds(api)
    core = client.CoreV1Api(api)
    encoded = base64.b64encode(FROM_SECRET.encode()).decode()
    secret = {"metadata": {"name": "db"}, "data": {"password": encoded}}
    core.create_namespaced_secret("default", cast(Any, secret))
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "gati.dev", "v1alpha1", "default", "gatihandlers", _planted_handler()
    )
    kubeconfig = kube.sim.write_kubeconfig(tmp_path / "kubeconfig")

    tooling = await bus.connect("tooling")
    try:
        with (
            running_service(
                "watcher", tmp_path, _service_env(bus, "watcher", kubeconfig)
            ) as watcher,
            running_service(
                "reconciler", tmp_path, _service_env(bus, "reconciler", kubeconfig)
            ) as reconciler,
        ):
            outcome = await _await_running(tooling, [watcher, reconciler], "users")
            assert outcome.service == "reconciler"
            stored = await _everything_stored(tooling)
        assert watcher.process.returncode == 0, watcher.log()
        assert reconciler.process.returncode == 0, reconciler.log()
    finally:
        await tooling.close()

    # The secret reaches the pod through Kubernetes and the plain value through the rendered
    # ConfigMap: only the bus copy is masked, because the reconciler renders from a fresh GET.
    deployments = api.sanitize_for_serialization(
        client.AppsV1Api(api).list_namespaced_deployment("default")
    )["items"]
    env = {e["name"]: e for e in deployments[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DB_PASSWORD"] == {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
    }
    plain = env["API_KEY"]["valueFrom"]["configMapKeyRef"]
    config_map = api.sanitize_for_serialization(
        core.read_namespaced_config_map(plain["name"], "default")
    )
    assert config_map["data"][plain["key"]] == PLAIN_ENV

    subjects = {subject for stream, subject, _ in stored if stream == STREAM}
    assert any(s.startswith("gati.cr.gatihandler.") for s in subjects), subjects
    assert any(s.startswith("gati.owned.deployment.") for s in subjects), subjects
    assert any(REDACTED.encode() in data for _, _, data in stored)
    for planted in PLANTED:
        leaks = [(stream, subject) for stream, subject, data in stored if planted.encode() in data]
        assert not leaks, f"{planted} stored in {leaks}"

    logs = {"watcher": watcher.log(), "reconciler": reconciler.log()}
    logs["nats-server"] = bus.log_file.read_text(errors="replace")
    assert '"nats_connected"' in logs["watcher"]
    for source, text in logs.items():
        for planted in (*PLANTED, *(password(user) for user in USERS)):
            assert planted not in text, f"{planted} in the {source} log"


async def test_tooling_reads_through_a_durable_consumer_but_cannot_write(
    bus: SecureNats,
) -> None:
    errors: list[str] = []
    watcher = await bus.connect("watcher")
    tooling = await bus.connect("tooling", errors)
    subject = f"gati.cr.gatihandler.audit.{uuid.uuid4().hex}"
    try:
        await provision_bus(watcher.jsm(), Settings.load(environ={}))
        await watcher.jetstream().publish(subject, b'{"n":1}')
        js = tooling.jetstream(timeout=2)
        subscription = await js.pull_subscribe(subject, durable="audit", stream=STREAM)
        [message] = await subscription.fetch(1, timeout=5)
        assert message.data == b'{"n":1}'
        await message.ack_sync()
        before = (await tooling.jsm().stream_info(STREAM)).state.messages
        denied = (
            (js.publish(subject, b"forged", timeout=1), subject),
            (js.purge_stream(STREAM), f"$JS.API.STREAM.PURGE.{STREAM}"),
            (js.delete_msg(STREAM, 1), f"$JS.API.STREAM.MSG.DELETE.{STREAM}"),
            (js.delete_stream(STREAM), f"$JS.API.STREAM.DELETE.{STREAM}"),
        )
        for request, refused in denied:
            with pytest.raises((NatsError, APIError, TimeoutError)):
                await request
            assert any(
                "permissions violation" in e and refused.lower() in e.lower() for e in errors
            ), errors
        assert (await tooling.jsm().stream_info(STREAM)).state.messages == before
    finally:
        await tooling.close()
        await watcher.close()


def test_a_plain_text_client_is_refused(bus: SecureNats) -> None:
    host, port = bus.host_port.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        info = sock.recv(4096)
        assert b'"tls_required":true' in info
        sock.sendall(b'CONNECT {"user":"tooling","pass":"x"}\r\nPING\r\n')
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
    assert b"PONG" not in answer


async def test_a_client_not_trusting_the_ca_or_with_a_wrong_password_is_refused(
    bus: SecureNats,
) -> None:
    with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        await nats.connect(bus.url("tooling"), allow_reconnect=False, connect_timeout=5)
    with pytest.raises(Exception, match=r"[Aa]uthorization"):
        await nats.connect(
            bus.url().replace("tls://", "tls://tooling:wrong@"),
            tls=bus.tls(),
            allow_reconnect=False,
            connect_timeout=5,
        )


def test_the_kube_edge_presents_its_token_and_a_wrong_one_gets_401(
    kube: ThreadedKubeSim, tmp_path: Path
) -> None:
    good = kube.sim.write_kubeconfig(tmp_path / "good")
    config = kube.sim.kubeconfig(user_token="wrong-token")
    bad = tmp_path / "bad"
    bad.write_text(yaml.safe_dump(config))
    with client.ApiClient(kube_configuration(environ={"KUBECONFIG": str(good)})) as api:
        namespace = api.sanitize_for_serialization(client.CoreV1Api(api).read_namespace("default"))
        assert namespace["metadata"]["name"] == "default"
    with (
        client.ApiClient(kube_configuration(environ={"KUBECONFIG": str(bad)})) as api,
        pytest.raises(ApiException) as denied,
    ):
        client.CoreV1Api(api).read_namespace("default")
    assert denied.value.status == 401
