"""A TLS NATS server with the deployed permissions per test module (no user may delete a stream,
so a module's events would otherwise reach the next module's watcher as deletions to publish),
and an HTTPS kubesim that demands a bearer token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.kubesim_server import api_client, install_gati_crds
from gati_kubesim.server import ThreadedKubeSim
from security.secure_stack import TOKEN, SecureNats, secure_nats


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNats]:
    with secure_nats(tmp_path_factory.mktemp("secure-nats")) as server:
        yield server


@pytest.fixture
def kube() -> Iterator[ThreadedKubeSim]:
    """A server of its own with the gati.dev CRDs installed (CRDs are cluster-wide)."""
    with ThreadedKubeSim(token=TOKEN, ready_after=0.05, bookmark_interval=0.2) as sim:
        with api_client(sim.url, TOKEN, sim.sim.ca_file) as api:
            install_gati_crds(api)
        yield sim
