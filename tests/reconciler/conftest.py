"""The watcher tests' kubesim with the gati.dev CRDs (CRDs are cluster-wide, so the shared
server stays free of them), reused here rather than written twice; a fresh namespace per test
and the real watcher feeding the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes import client

from fixtures.kubesim_server import scratch_namespace
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads
from watcher.conftest import gati_api, gati_kubesim
from watcher.helpers import running_watcher

__all__ = ["gati_api", "gati_kubesim"]


@pytest.fixture
def workloads(gati_api: client.ApiClient) -> Iterator[Workloads]:
    with scratch_namespace(gati_api, "r") as name:
        yield Workloads(gati_api, name)


@pytest.fixture
async def watcher(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> AsyncIterator[Watcher]:
    """The real watcher of the test's namespace, feeding `gati.cr.>` and `gati.owned.>`."""
    async with running_watcher(gati_api, gati_connection, workloads.namespace) as running:
        yield running
