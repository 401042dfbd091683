"""NATS restarts under a scaler holding a handler: the tail (an ordered consumer) and the spec
feed are started again after the reconnect, and scaling goes on from the written replicas."""

from __future__ import annotations

import asyncio

from kubernetes import client

from fixtures.nats_server import PrivateBus
from reconciler.harness import Workloads, handler, outcomes
from scaler.running import create_owned_deployment, running_scaler
from scaler.test_events_mode import PATH, reach, router, scaled

SCALING = {
    "mode": "events",
    "targetRequestsPerReplica": 10,
    "maxReplicas": 10,
    "scaleDownStabilizationSeconds": 1,
}


async def test_scaling_resumes_after_nats_restarts(
    gati_api: client.ApiClient, private_bus: PrivateBus, workloads: Workloads
) -> None:
    ns = workloads.namespace
    created = workloads.create(handler(ns, "users", handlerPath=PATH, scaling=SCALING))
    create_owned_deployment(workloads, "users", created, 1)
    bus = private_bus.connection
    async with (
        outcomes(bus) as seen,
        running_scaler(gati_api, private_bus.settings) as replica,
        router(bus, ns) as traffic,
    ):
        traffic.rate = 20
        await reach(seen, 2)
        private_bus.server.stop()
        private_bus.server.start()
        await asyncio.wait_for(replica.connection.wait_reconnected(), 30)
        traffic.rate = 60
        await reach(seen, 6)
        writes = scaled(seen.events)
        assert writes == sorted(writes), f"no step back across the restart: {writes}"
        assert replica.scaler.held
