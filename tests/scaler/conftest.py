"""The reconciler tests' kubesim with CRDs, namespace and real watcher, reused for the scaler,
and the `stage` the end-to-end scaler tests take them as."""

from __future__ import annotations

import pytest
from kubernetes import client

from gati_runtime.nats_connection import NatsConnection
from gati_runtime.settings import Settings
from gati_watcher.watcher import Watcher
from reconciler.conftest import gati_api, gati_kubesim, watcher, workloads
from reconciler.harness import Workloads
from scaler.running import Stage

__all__ = ["gati_api", "gati_kubesim", "watcher", "workloads"]


@pytest.fixture
def stage(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    bus_settings: Settings,
    workloads: Workloads,
    watcher: Watcher,
) -> Stage:
    return Stage(gati_api, gati_connection, bus_settings, workloads)
