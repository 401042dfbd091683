"""The operator run as deployed: each service its own NATS user over TLS, kubesim over HTTPS with
a bearer token, and no planted secret anywhere on the bus or in a log line.

`tests/deploy/test_nats_permissions.py` proves the same `auth.conf` on a three-node cluster
(who may publish `gati.cr.>`, that nobody purges or deletes); here the services themselves must
run with those grants, and the read-only `tooling` user must manage to read as tools do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import uuid
from dataclasses import dataclass
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
from fixtures.service_processes import running_service
from gati_contracts.events import OutcomeEvent
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STREAM
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.kube_config import kube_configuration
from gati_runtime.provisioning import provision_bus
from gati_runtime.redaction import LAST_APPLIED, REDACTED
from gati_runtime.settings import Settings
from reconciler.harness import handler
from security.secure_stack import (
    TOKEN,
    USERS,
    WAIT,
    SecureNats,
    await_clients,
    await_outcome,
    password,
)

FROM_SECRET = "planted-in-a-secret-91c2"
PLAIN_ENV = "planted-as-plain-env-4d7a"
LAST_APPLIED_VALUE = "planted-in-last-applied-e30f"
IN_INVALID_ENV = "planted-in-an-invalid-env-77b1"
SERVICES = ("watcher", "reconciler", "scaler", "timescape")
PLANTED = (FROM_SECRET, PLAIN_ENV, LAST_APPLIED_VALUE, IN_INVALID_ENV)
REDACT = ",".join([LAST_APPLIED, "spec.env[*]", "spec.template.spec.containers[*].env[*].value"])
pytestmark = pytest.mark.timeout(300)
"""The shared run awaits the stream and two outcomes, each for up to WAIT (90 s): the suite's
120 s cut a slow or failing run off with a stack trace instead of the outcome it was missing."""


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


def _invalid_handler() -> dict[str, Any]:
    """A value and a reference at once: the CRD lets it through (env values are schemaless),
    the contracts refuse it, and the refusal must not quote the value."""
    both = {"value": IN_INVALID_ENV, "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
    return handler("default", "leaky", replicas=1, env={"TOKEN": both})


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


@dataclass(frozen=True)
class OperatorRun:
    """What one run of watcher + reconciler left behind, for the tests below to judge."""

    outcome: OutcomeEvent
    refusal: OutcomeEvent
    """The reconciler's answer to the handler whose env the contracts refuse."""
    refused_status: dict[str, Any]
    event_notes: list[str]
    """Notes of the Kubernetes Events the reconciler posted."""
    users: dict[str, str]
    """NATS client name -> the user the server authenticated it as."""
    stored: list[tuple[str, str, bytes]]
    logs: dict[str, str]
    exit_codes: dict[str, int | None]
    deployment: dict[str, Any]
    config_maps: dict[str, dict[str, Any]]


async def _run_operator(bus: SecureNats, kube: ThreadedKubeSim, workdir: Path) -> OperatorRun:
    api = api_client(kube.url, TOKEN, kube.sim.ca_file)
    install_gati_crds(api)
    core = client.CoreV1Api(api)
    encoded = base64.b64encode(FROM_SECRET.encode()).decode()
    secret = {"metadata": {"name": "db"}, "data": {"password": encoded}}
    core.create_namespaced_secret("default", cast(Any, secret))
    custom = client.CustomObjectsApi(api)
    for obj in (_planted_handler(), _invalid_handler()):
        custom.create_namespaced_custom_object(
            "gati.dev", "v1alpha1", "default", "gatihandlers", obj
        )
    kubeconfig = kube.sim.write_kubeconfig(workdir / "kubeconfig")
    tooling = await bus.connect("tooling")
    try:
        with contextlib.ExitStack() as stack:
            services = [
                stack.enter_context(
                    running_service(name, workdir, _service_env(bus, name, kubeconfig))
                )
                for name in SERVICES
            ]
            outcome = await await_outcome(tooling, "users", services)
            refusal = await await_outcome(tooling, "leaky", services, ("Failed",))
            # Awaited before the services are stopped: a SIGTERM must find each one started.
            users = await await_clients(bus, [f"{n}/{n}" for n in SERVICES], services, WAIT)
            stored = await _everything_stored(tooling)
    finally:
        await tooling.close()
    logs = {service.name: service.log() for service in services}
    logs["nats-server"] = bus.log_file.read_text(errors="replace")
    deployments = client.AppsV1Api(api).list_namespaced_deployment("default")
    config_maps = core.list_namespaced_config_map("default")
    leaky = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "gatihandlers", "leaky")
    events = client.EventsV1Api(api).list_namespaced_event("default")
    return OperatorRun(
        outcome=outcome,
        refusal=refusal,
        refused_status=cast(dict[str, Any], leaky)["status"],
        event_notes=[
            item.get("note") or "" for item in api.sanitize_for_serialization(events)["items"]
        ],
        users=users,
        stored=stored,
        logs=logs,
        exit_codes={service.name: service.exit_code for service in services},
        deployment=api.sanitize_for_serialization(deployments)["items"][0],
        config_maps={
            item["metadata"]["name"]: item
            for item in api.sanitize_for_serialization(config_maps)["items"]
        },
    )


@pytest.fixture(scope="module")
def run(bus: SecureNats, tmp_path_factory: pytest.TempPathFactory) -> OperatorRun:
    """One run shared by the checks below: starting the services is the expensive part."""
    with ThreadedKubeSim(token=TOKEN, ready_after=0.05, bookmark_interval=0.2) as kube:
        return asyncio.run(_run_operator(bus, kube, tmp_path_factory.mktemp("operator")))


def test_services_run_as_their_own_users_and_stop_cleanly(run: OperatorRun) -> None:
    assert run.outcome.service == "reconciler"
    assert run.exit_codes == dict.fromkeys(SERVICES, 0), run.logs
    # Client names are `<service>/<instance>` (the instance id is the service name here).
    assert {name: run.users.get(f"{name}/{name}") for name in SERVICES} == {
        name: name for name in SERVICES
    }


def test_secrets_reach_the_pod_through_kubernetes_only(run: OperatorRun) -> None:
    """Only the bus copy is masked: the reconciler renders from a fresh GET, so the Secret
    reference and the plain value (moved to the rendered ConfigMap) still reach the pod."""
    containers = run.deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in containers[0]["env"]}
    assert env["DB_PASSWORD"] == {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
    }
    plain = env["API_KEY"]["valueFrom"]["configMapKeyRef"]
    assert run.config_maps[plain["name"]]["data"][plain["key"]] == PLAIN_ENV


def test_no_planted_secret_is_stored_in_any_stream(run: OperatorRun) -> None:
    subjects = {subject for stream, subject, _ in run.stored if stream == STREAM}
    assert any(s.startswith("gati.cr.gatihandler.") for s in subjects), subjects
    assert any(s.startswith("gati.owned.deployment.") for s in subjects), subjects
    assert any(REDACTED.encode() in data for _, _, data in run.stored)
    for planted in PLANTED:
        leaks = [
            (stream, subject) for stream, subject, data in run.stored if planted.encode() in data
        ]
        assert not leaks, f"{planted} stored in {leaks}"


def test_a_refused_env_is_named_but_its_value_never_quoted(run: OperatorRun) -> None:
    assert run.refusal.reason == "InvalidSpec"
    assert "spec.env" in run.refusal.message, run.refusal.message
    conditions = run.refused_status["conditions"]
    assert run.refused_status["phase"] == "Failed"
    assert any("spec.env" in (c.get("message") or "") for c in conditions), conditions
    assert any("spec.env" in note for note in run.event_notes), run.event_notes
    shown = [run.refusal.message, *(c.get("message") or "" for c in conditions), *run.event_notes]
    assert not [text for text in shown if IN_INVALID_ENV in text]


def test_no_planted_secret_password_or_token_is_logged(run: OperatorRun) -> None:
    for source, text in run.logs.items():
        for planted in (*PLANTED, TOKEN, *(password(user) for user in USERS)):
            assert planted not in text, f"{planted} in the {source} log"


def test_services_need_no_permission_they_lack(run: OperatorRun) -> None:
    for service in SERVICES:
        violations = [
            line for line in run.logs[service].splitlines() if "permissions violation" in line
        ]
        assert not violations, violations


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
        # What tooling may do gets the answer's time; what it may not is refused without one.
        js = tooling.jetstream(timeout=WAIT)
        subscription = await js.pull_subscribe(subject, durable="audit", stream=STREAM)
        [message] = await subscription.fetch(1, timeout=WAIT)
        assert message.data == b'{"n":1}'
        await message.ack_sync(timeout=WAIT)
        before = (await tooling.jsm().stream_info(STREAM)).state.messages
        refusing = tooling.jetstream(timeout=0.5)
        denied = (
            (refusing.publish(subject, b"forged"), subject),
            (refusing.purge_stream(STREAM), f"$JS.API.STREAM.PURGE.{STREAM}"),
            (refusing.delete_msg(STREAM, 1), f"$JS.API.STREAM.MSG.DELETE.{STREAM}"),
            (refusing.delete_stream(STREAM), f"$JS.API.STREAM.DELETE.{STREAM}"),
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
