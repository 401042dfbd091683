"""A kubesim of the watcher tests' own with the gati.dev CRDs installed (CRDs are cluster-wide,
so the shared server stays free of them), and a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes import client

from fixtures.kubesim_server import BOOKMARK_INTERVAL, READY_AFTER, api_client
from gati_contracts.crds import custom_resource_definitions
from gati_kubesim.server import ThreadedKubeSim
from watcher.helpers import Cluster


@pytest.fixture(scope="session")
def gati_kubesim() -> Iterator[ThreadedKubeSim]:
    with ThreadedKubeSim(ready_after=READY_AFTER, bookmark_interval=BOOKMARK_INTERVAL) as sim:
        with api_client(sim.url) as api:
            extensions = client.ApiextensionsV1Api(api)
            for crd in custom_resource_definitions():
                extensions.create_custom_resource_definition(cast(Any, crd))
        yield sim


@pytest.fixture
def gati_api(gati_kubesim: ThreadedKubeSim) -> Iterator[client.ApiClient]:
    with api_client(gati_kubesim.url) as api:
        yield api


@pytest.fixture
def cluster(gati_api: client.ApiClient) -> Iterator[Cluster]:
    name = f"w-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(gati_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield Cluster(gati_api, name)
    core.delete_namespace(name)
