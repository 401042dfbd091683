"""The connection waits for NATS, reports readiness honestly and counts reconnects."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import nats
import pytest
from structlog.testing import capture_logs

from gati_kubesim.tls import make_serving_cert
from gati_runtime.embedded_nats import EmbeddedNats, ServerTls, free_port
from gati_runtime.nats_connection import connect, tls_context, without_credentials
from gati_runtime.settings import Settings

WAIT = 15.0


async def test_first_connect_waits_for_a_late_server(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    settings = Settings.load(environ={"GATI_NATS_URL": server.url})
    pending = asyncio.create_task(connect(settings, name="late"))
    await asyncio.sleep(0.2)  # let the first attempts fail: there is nothing to wait on yet
    assert not pending.done()
    server.start()
    try:
        with capture_logs() as logs:
            connection = await asyncio.wait_for(pending, WAIT)
            assert await connection.ready()
            server.stop()
            assert not await connection.ready()
            server.start()
            await asyncio.wait_for(connection.wait_reconnected(), WAIT)
            assert await connection.ready()
            assert connection.generation == 1
            await connection.close()
    finally:
        server.stop()
    events = [entry["event"] for entry in logs if entry["event"] != "nats_error"]
    assert events == [
        "nats_connected",
        "nats_disconnected",
        "nats_reconnected",
        "nats_disconnected",  # close() disconnects, then closes
        "nats_closed",
    ]


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        (
            "nats://watcher:s3cret@gati-nats.gati-system.svc:4222",
            "nats://gati-nats.gati-system.svc:4222",
        ),
        ("tls://tok@[::1]:4222", "tls://[::1]:4222"),
        ("nats://127.0.0.1", "nats://127.0.0.1"),
    ],
)
def test_a_logged_url_never_carries_the_user_or_password(url: str, logged: str) -> None:
    assert without_credentials(urlparse(url)) == logged


def test_no_tls_unless_a_file_asks_for_it() -> None:
    assert tls_context(Settings.load(environ={})) is None


async def test_connects_over_tls_trusting_the_configured_ca(tmp_path: Path) -> None:
    cert = make_serving_cert(tmp_path / "tls", "127.0.0.1")  # self-signed: its own CA
    server = EmbeddedNats(tmp_path / "nats", tls=ServerTls(cert.cert_file, cert.key_file))
    server.start()
    try:
        settings = Settings.load(
            environ={
                "GATI_NATS_URL": server.url.replace("nats://", "tls://"),
                "GATI_NATS_TLS_CA": str(cert.cert_file),
            }
        )
        connection = await asyncio.wait_for(connect(settings, name="tls"), WAIT)
        assert await connection.ready()
        await connection.close()
    finally:
        server.stop()


def test_nats_command_serves_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gati_cli", "nats", "--port", str(port), "--store", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert f"ready at nats://127.0.0.1:{port}" in process.stdout.readline()

        async def round_trip() -> bool:
            client = await nats.connect(f"nats://127.0.0.1:{port}")
            info = await client.jsm().account_info()
            await client.close()
            return info is not None

        assert asyncio.run(round_trip())
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
