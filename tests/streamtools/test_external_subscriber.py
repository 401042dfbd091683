"""The external subscriber example, run as the read-only `tooling` user DESIGN §7 describes,
against a real nats-server: it sees a rollout, and the user it runs as cannot write the bus."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers
from gati_contracts.subjects import STREAM, cr_subject, status_subject
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings
from gati_streamtools.reader import read_range
from streamtools.recorded import NOW, outcome

EXAMPLE = Path(__file__).parents[2] / "examples" / "external_subscriber.py"
TOOLING_PUBLISH = [
    "$JS.API.INFO",
    f"$JS.API.STREAM.INFO.{STREAM}",
    f"$JS.API.CONSUMER.CREATE.{STREAM}",
    f"$JS.API.CONSUMER.CREATE.{STREAM}.>",
    f"$JS.API.CONSUMER.INFO.{STREAM}.*",
    f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.*",
    f"$JS.API.CONSUMER.DELETE.{STREAM}.*",
    f"$JS.API.DIRECT.GET.{STREAM}",
    f"$JS.API.DIRECT.GET.{STREAM}.>",
    f"$JS.FC.{STREAM}.>",
    f"$JS.ACK.{STREAM}.>",
]


class AuthNats(EmbeddedNats):
    """The embedded server with an `admin` user and DESIGN §7's read-only `tooling` user."""

    def _config_text(self) -> str:
        allow = ", ".join(f'"{subject}"' for subject in TOOLING_PUBLISH)
        return super()._config_text() + (
            "authorization { users: [\n"
            "  {user: admin, password: admin}\n"
            "  {user: tooling, password: tooling, permissions: {\n"
            f"    publish: {{allow: [{allow}]}}\n"
            '    subscribe: {allow: ["_INBOX.>"]}\n'
            "  }}\n"
            "]}\n"
        )

    def url_as(self, user: str) -> str:
        return self.url.replace("nats://", f"nats://{user}:{user}@")


@pytest.fixture
async def auth_nats(tmp_path: Path) -> AsyncIterator[tuple[AuthNats, Client]]:
    server = AuthNats(tmp_path / "nats", name="gati-test-auth")
    server.start()
    admin = await nats.connect(server.url_as("admin"))
    settings = Settings.load(environ={"GATI_NATS_URL": server.url_as("admin")})
    await provision_bus(admin.jsm(), settings)
    try:
        yield server, admin
    finally:
        await admin.close()
        server.stop()


def rollout_step() -> ChangeEvent:
    obj: dict[str, Any] = {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiVersion",
        "metadata": {
            "name": "orders-v2",
            "namespace": "shop",
            "uid": "u-v2",
            "resourceVersion": "7",
            "generation": 1,
        },
        "spec": {"versionId": "v2", "handlerRef": {"name": "orders"}},
        "status": {"phase": "Progressing", "currentWeight": 10, "currentStep": 1},
    }
    return ChangeEvent.of(ChangeType.MODIFIED, obj, source="watcher-0", observed_at=NOW)


async def consumer_created(admin: Client, durable: str) -> None:
    while True:
        try:
            await admin.jsm().consumer_info(STREAM, durable)
            return
        except NotFoundError:
            await asyncio.sleep(0.05)


async def test_example_prints_a_rollout_as_the_tooling_user(
    auth_nats: tuple[AuthNats, Client],
) -> None:
    server, admin = auth_nats
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--nats-url",
        server.url_as("tooling"),
        "--durable",
        "printer",
        "--count",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            await consumer_created(admin, "printer")
            step = rollout_step()
            await admin.jetstream().publish(
                cr_subject("GatiVersion", "shop", "orders-v2"),
                encode_event(step),
                headers=event_headers(step),
            )
            done = outcome(1, reason="StepReached")
            done = type(done)(
                **{
                    **{f: getattr(done, f) for f in done.__struct_fields__},
                    "kind": "GatiVersion",
                    "name": "orders-v2",
                    "service": "timescape",
                    "action": "rollout-step",
                }
            )
            await admin.jetstream().publish(
                status_subject("GatiVersion", "shop", "orders-v2"),
                encode_event(done),
                headers=event_headers(done),
            )
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    lines = stdout.decode().splitlines()
    assert process.returncode == 0, stderr.decode()
    assert lines == [
        "MODIFIED version shop/orders-v2 (v2): phase Progressing, weight 10%, step 1",
        "OUTCOME  version shop/orders-v2: timescape rollout-step Succeeded (StepReached)",
    ]


async def test_tooling_user_cannot_write_the_bus(auth_nats: tuple[AuthNats, Client]) -> None:
    server, admin = auth_nats
    tooling = await nats.connect(server.url_as("tooling"))
    try:
        # The server drops a denied publish (and tells the client asynchronously), so the
        # request waits for a reply that never comes.
        with pytest.raises(nats.errors.TimeoutError):
            await tooling.jetstream().publish("gati.cr.gatihandler.shop.x", b"{}", timeout=1)
        with pytest.raises(nats.errors.TimeoutError):
            await tooling.jsm().delete_stream(STREAM)
    finally:
        await tooling.close()
    assert (await admin.jsm().stream_info(STREAM)).state.messages == 0


async def test_the_stream_tools_read_as_the_tooling_user(
    auth_nats: tuple[AuthNats, Client],
) -> None:
    """A service's subjects (one covering filter, matched by the reader) and one object's
    subjects (a consumer each) are both within the read-only permissions."""
    server, admin = auth_nats
    subjects = ["gati.cr.gatihandler.shop.orders", "gati.status.gatihandler.shop.orders"]
    for subject in [*subjects, "gati.cr.gativersion.shop.orders-v2"]:
        await admin.jetstream().publish(subject, b"{}")
    tooling = await nats.connect(server.url_as("tooling"))
    try:
        service = ["gati.cr.gatihandler.>", "gati.cr.gatimodule.>"]
        for filters, expected in ((service, subjects[:1]), (subjects, subjects)):
            read = [
                m.subject
                async for batch in read_range(tooling.jetstream(), STREAM, filters)
                for m in batch
            ]
            assert read == expected
    finally:
        await tooling.close()
