"""A kubesim of the watcher tests' own with the gati.dev CRDs installed (CRDs are cluster-wide,
so the shared server stays free of them), and a fresh namespace per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from fixtures.kubesim_server import (
    BOOKMARK_INTERVAL,
    READY_AFTER,
    api_client,
    install_gati_crds,
    scratch_namespace,
)
from gati_kubesim.server import ThreadedKubeSim
from watcher.helpers import Cluster


@pytest.fixture(scope="session")
def gati_kubesim() -> Iterator[ThreadedKubeSim]:
    with ThreadedKubeSim(ready_after=READY_AFTER, bookmark_interval=BOOKMARK_INTERVAL) as sim:
        with api_client(sim.url) as api:
            install_gati_crds(api)
        yield sim


@pytest.fixture
def gati_api(gati_kubesim: ThreadedKubeSim) -> Iterator[client.ApiClient]:
    with api_client(gati_kubesim.url) as api:
        yield api


@pytest.fixture
def cluster(gati_api: client.ApiClient) -> Iterator[Cluster]:
    with scratch_namespace(gati_api, "w") as name:
        yield Cluster(gati_api, name)
