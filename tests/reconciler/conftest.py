"""A kubesim with the gati.dev CRDs for the reconciler's integration tests (CRDs are
cluster-wide, so the shared server stays free of them), and a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from kubernetes import client

from fixtures.kubesim_server import BOOKMARK_INTERVAL, READY_AFTER, api_client
from gati_contracts.crds import custom_resource_definitions
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads
from watcher.helpers import running_watcher


@pytest.fixture(scope="session")
def crd_kubesim() -> Iterator[ThreadedKubeSim]:
    with ThreadedKubeSim(ready_after=READY_AFTER, bookmark_interval=BOOKMARK_INTERVAL) as sim:
        with api_client(sim.url) as api:
            extensions = client.ApiextensionsV1Api(api)
            for crd in custom_resource_definitions():
                extensions.create_custom_resource_definition(cast(Any, crd))
        yield sim


@pytest.fixture
def crd_api(crd_kubesim: ThreadedKubeSim) -> Iterator[client.ApiClient]:
    with api_client(crd_kubesim.url) as api:
        yield api


@pytest.fixture
def workloads(crd_api: client.ApiClient) -> Iterator[Workloads]:
    name = f"r-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(crd_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield Workloads(crd_api, name)
    core.delete_namespace(name)


@pytest.fixture
async def watcher(
    crd_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> AsyncIterator[Watcher]:
    """The real watcher of the test's namespace, feeding `gati.cr.>` and `gati.owned.>`."""
    async with running_watcher(crd_api, gati_connection, workloads.namespace) as running:
        yield running
