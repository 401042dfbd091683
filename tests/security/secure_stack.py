"""NATS as deployed (deploy/nats permissions) behind TLS, and services run as their own users.

The server runs `deploy/nats/nats-single.conf` with the very `auth.conf` the StatefulSet mounts;
only addresses and the store directory are rewritten and a `tls {}` block is added, with a
certificate made for the test. Services (fixtures.service_processes) get settings that
carry their own user, the CA and a kubeconfig holding a bearer token: what a pod gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from fixtures.service_processes import STOP_TIMEOUT, ServiceProcess
from gati_contracts.events import OutcomeEvent, OutcomeResult, decode_event
from gati_contracts.subjects import STATUS_ROOT, STREAM
from gati_kubesim.tls import ServingCert, make_serving_cert
from gati_runtime.embedded_nats import LOOPBACK, EmbeddedNats, NodePorts, find_nats_server

NATS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nats"
# Every user auth.conf names, read from its `$GATI_NATS_<USER>_PASSWORD` references, so a user
# added there is started (and checked for leaks) here too.
USERS = tuple(
    dict.fromkeys(
        name.lower()
        for name in re.findall(
            r"\$GATI_NATS_([A-Z]+)_PASSWORD", (NATS_DIR / "auth.conf").read_text()
        )
    )
)
TOKEN = "operator-token-5b7e"
"""The bearer token kubesim demands in these tests."""
WAIT = 90.0
"""Seconds an awaited outcome may take (never reached when healthy)."""


def password(user: str) -> str:
    return f"pw-{user}-0c1d9e"


@dataclass(frozen=True)
class SecureNats:
    host_port: str
    monitor_port: int
    cert: ServingCert
    log_file: Path

    def url(self, user: str | None = None) -> str:
        credentials = f"{user}:{password(user)}@" if user else ""
        return f"tls://{credentials}{self.host_port}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert.cert_file))

    def users_by_client(self) -> dict[str, str]:
        """Who each connected client authenticated as, from the server's own `/connz`."""
        url = f"http://{LOOPBACK}:{self.monitor_port}/connz?auth=true&limit=1024"
        with urllib.request.urlopen(url, timeout=10) as response:
            connz = json.loads(response.read())
        return {c.get("name", ""): c.get("authorized_user", "") for c in connz["connections"]}

    async def connect(self, user: str, errors: list[str] | None = None) -> Client:
        async def record(error: Exception) -> None:
            if errors is not None:
                errors.append(str(error))

        return await nats.connect(
            servers=[self.url()],
            user=user,
            password=password(user),
            tls=self.tls(),
            allow_reconnect=False,
            error_cb=record,
        )


def _config(ports: NodePorts, store: Path, cert: ServingCert) -> str:
    text = (NATS_DIR / "nats-single.conf").read_text()
    text = text.replace('"0.0.0.0:4222"', f'"{LOOPBACK}:{ports.client}"')
    text = text.replace('"0.0.0.0:8222"', f'"{LOOPBACK}:{ports.monitor}"')
    text = text.replace('"/data/jetstream"', json.dumps(str(store / "js")))
    tls = f"tls {{ cert_file: {json.dumps(str(cert.cert_file))}, "
    tls += f"key_file: {json.dumps(str(cert.key_file))} }}\n"
    return text + tls


@contextmanager
def secure_nats(workdir: Path) -> Iterator[SecureNats]:
    """TLS required, one user per service, passwords from the environment as in the pod."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert = make_serving_cert(workdir / "tls", LOOPBACK)
    ports = NodePorts.allocate()
    shutil.copyfile(NATS_DIR / "auth.conf", workdir / "auth.conf")
    conf = workdir / "nats.conf"
    conf.write_text(_config(ports, workdir, cert))
    env = {**os.environ, "POD_NAME": "gati-nats-0"}
    env |= {f"GATI_NATS_{user.upper()}_PASSWORD": password(user) for user in USERS}
    log_file = workdir / "nats-server.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(find_nats_server()), "-c", str(conf)], env=env, stdout=log, stderr=log
        )
    try:
        # Reuse the embedded server's health wait: it polls /healthz on these ports.
        node = EmbeddedNats(workdir, name="gati-nats-0", ports=ports)
        node._process = process
        node.wait_ready(timeout=30.0)
        yield SecureNats(f"{LOOPBACK}:{ports.client}", ports.monitor, cert, log_file)
    finally:
        process.terminate()
        process.wait(timeout=STOP_TIMEOUT)


def outcome_phase(outcome: OutcomeEvent) -> str | None:
    """A success names the phase it observed; a failure is `Failed` (its status says so)."""
    if outcome.result is OutcomeResult.FAILED:
        return "Failed"
    phase = outcome.details.get("phase")
    return phase if isinstance(phase, str) else None


def assert_alive(services: Sequence[ServiceProcess]) -> None:
    for service in services:
        service.check_alive()
        assert not service.unexpected_exits, f"{service.name} exited:\n{service.log()}"


async def await_stream(reader: Client, services: Sequence[ServiceProcess], seconds: float) -> None:
    """Until the services have provisioned `GATI` at start-up, which nothing announces."""
    async with asyncio.timeout(seconds):
        while True:
            assert_alive(services)
            try:
                await reader.jsm().stream_info(STREAM)
                return
            except NotFoundError:
                await asyncio.sleep(0.1)


async def await_clients(
    bus: SecureNats, names: Collection[str], services: Sequence[ServiceProcess], seconds: float
) -> dict[str, str]:
    """Who each client authenticated as, once every one of `names` is connected. A service
    whose work nothing awaits (the timescape of a run that awaits the reconciler's outcomes)
    may still be starting on a loaded machine when the rest are done: not connected yet, nor
    past installing its SIGTERM handler. Only the server's `/connz` says a client is in."""
    clients: dict[str, str] = {}
    try:
        async with asyncio.timeout(seconds):
            while True:
                assert_alive(services)
                clients = await asyncio.to_thread(bus.users_by_client)
                if all(name in clients for name in names):
                    return clients
                await asyncio.sleep(0.1)
    except TimeoutError:
        missing = sorted(set(names) - set(clients))
        raise AssertionError(f"{missing} not connected within {seconds} s: {clients}") from None


async def await_outcome(
    reader: Client,
    name: str,
    services: Sequence[ServiceProcess] = (),
    phases: Collection[str] = ("Running",),
    seconds: float = WAIT,
) -> OutcomeEvent:
    """The first outcome for `name` reporting one of `phases`, read through an ordered consumer
    as tools read (`tooling` may not subscribe to `gati.status.>` directly)."""
    await await_stream(reader, services, seconds)
    subscription = await reader.jetstream().subscribe(f"{STATUS_ROOT}.>", ordered_consumer=True)
    seen: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                assert_alive(services)
                try:
                    message = await subscription.next_msg(timeout=1.0)
                except NatsError:
                    continue
                event = decode_event(message.data, OutcomeEvent)
                if event.name == name and outcome_phase(event) in phases:
                    return event
                if event.name == name:
                    seen.append(f"{event.service} {event.action} {event.reason}: {event.message}")
    except TimeoutError:
        raise AssertionError(
            f"no {'/'.join(phases)} outcome for {name} within {seconds} s; its outcomes: {seen}"
        ) from None
    finally:
        await subscription.unsubscribe()
