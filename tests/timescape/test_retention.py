"""Decommissioned records beyond the retention setting are deleted, oldest first, against
kubesim; a record whose handler still exists is never deleted."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client

from gati_contracts.kinds import GATI_VERSION, GROUP, VERSION
from gati_runtime.nats_connection import NatsConnection
from reconciler.harness import Workloads, handler
from timescape.running import recorded_version, running_timescape

PATH = "/api/users"


def decommissioned(workloads: Workloads, name: str, at: str) -> None:
    status = {"phase": "Decommissioned", "handlerPath": PATH, "decommissionedAt": at}
    recorded_version(workloads, name, name.removeprefix("users-"), status)


def names(workloads: Workloads) -> set[str]:
    listed = cast(
        dict[str, Any],
        workloads.custom.list_namespaced_custom_object(
            GROUP, VERSION, workloads.namespace, GATI_VERSION.plural
        ),
    )
    return {item["metadata"]["name"] for item in listed["items"]}


async def test_the_oldest_records_beyond_retention_go_and_a_used_one_stays(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    for number in range(4):
        decommissioned(workloads, f"users-v{number}", f"2026-01-0{number + 1}T00:00:00Z")
    # The oldest one's handler still exists: its record is what keeps it from being deployed.
    workloads.create(handler(workloads.namespace, "users-v0", handlerPath=PATH, version="v0"))
    async with running_timescape(gati_api, gati_connection, retention=2) as timescape:
        await timescape.reconcile(workloads.namespace)
        assert names(workloads) == {"users-v0", "users-v2", "users-v3"}
        await timescape.reconcile(workloads.namespace)  # nothing more to delete
    assert names(workloads) == {"users-v0", "users-v2", "users-v3"}
    kept = workloads.get("GatiVersion", "users-v0")["status"]
    assert kept["phase"] == "Decommissioned"
