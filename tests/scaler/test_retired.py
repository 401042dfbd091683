"""A handler whose version timescape retired (the reconciler marks its conditions with
`VersionDecommissioned`) is left alone: without the mark, mode events would lift a Deployment
at zero replicas back to its minimum, undoing the decommission."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from gati_contracts.conditions import VERSION_DECOMMISSIONED
from gati_contracts.kinds import GATI_HANDLER, GROUP, VERSION
from gati_contracts.ownership import owned_name
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.settings import Settings
from reconciler.harness import Workloads, handler, outcomes
from scaler.running import after_ticks, create_owned_deployment, running_scaler

EVENTS_NO_ZERO = {"mode": "events", "targetRequestsPerReplica": 10, "maxReplicas": 4}


def ready_condition(reason: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": reason}


async def test_a_retired_handler_keeps_zero_replicas_until_it_is_back(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    bus_settings: Settings,
    workloads: Workloads,
) -> None:
    ns = workloads.namespace
    created = workloads.create(handler(ns, "users", scaling=EVENTS_NO_ZERO))
    custom = client.CustomObjectsApi(gati_api)

    def mark(reason: str) -> None:
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            ns,
            GATI_HANDLER.plural,
            "users",
            {"status": {"conditions": [ready_condition(reason)]}},
        )

    mark(VERSION_DECOMMISSIONED)
    create_owned_deployment(workloads, "users", created, 0)
    async with (
        outcomes(gati_connection) as seen,
        running_scaler(gati_api, bus_settings) as scaler,
    ):
        await after_ticks(10)
        assert workloads.deployment(owned_name("users"))["spec"]["replicas"] == 0
        assert not scaler.scaler.held
        assert [e for e in seen.events if e.service == "scaler"] == []

        mark("DeploymentReady")  # the version is back in service
        await seen.wait_for(lambda es: any(e.action == "scaled" for e in es))
        scaled = next(e for e in seen.events if e.action == "scaled")
        assert (scaled.reason, scaled.details["desiredReplicas"]) == ("AtMinimum", 1)
        assert workloads.deployment(owned_name("users"))["spec"]["replicas"] == 1
