"""`gati_watcher.service.main`, the entry point `gati-operator run watcher` calls, configured as
in production: KUBECONFIG, GATI_NAMESPACES, readiness once every target has relisted."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.health import HealthServer
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.publisher import Publisher
from gati_runtime.service import ServiceContext
from gati_runtime.settings import Settings
from gati_watcher.service import main
from watcher.helpers import Cluster, handler, stream_tail


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """`main` tunes this process's collector for a long-lived service; the suite runs on."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
async def test_main_watches_the_configured_namespace_until_stopped(
    cluster: Cluster,
    gati_kubesim: ThreadedKubeSim,
    gati_bus: Client,
    gati_connection: NatsConnection,
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(gati_kubesim.sim.write_kubeconfig(tmp_path / "kc")))
    monkeypatch.setenv("GATI_WATCH_BOOKMARK_INTERVAL", "0.2")
    settings = Settings.load(
        environ={"GATI_NATS_URL": nats_url, "GATI_NAMESPACES": cluster.namespace}
    )
    health = HealthServer(0, host="127.0.0.1")
    ctx = ServiceContext(
        "watcher", settings, gati_connection, health, asyncio.Event(), Publisher(gati_connection)
    )
    async with stream_tail(gati_bus) as tail:
        running = asyncio.create_task(main(ctx))
        cluster.create(handler(cluster.namespace, "users"))
        await tail.wait_for(lambda events: len(events) == 1)
        ctx.stop.set()
        async with asyncio.timeout(10):
            await running
    assert tail.events[0][1].name == "users"
