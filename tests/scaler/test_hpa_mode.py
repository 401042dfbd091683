"""Mode hpa end to end (watcher, reconciler, scaler; kubesim and nats-server): the scaler
creates the HorizontalPodAutoscaler, follows the spec and deletes it when the mode moves on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

from kubernetes import client

from fixtures.kubesim_server import kubesim_hook
from fixtures.stage import Stage
from gati_contracts.events import OutcomeEvent, OutcomeResult
from gati_contracts.ownership import owned_name
from gati_kubesim.server import ThreadedKubeSim
from reconciler.harness import handler
from scaler.running import FAST, after_ticks, reconciled, running_scaler, scaling_stack

HPA_SCALING = {"mode": "hpa", "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 70}
RESOURCES = {"requests": {"cpu": "100m"}}


def hpa_of(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """Read as plain JSON: the client's typed model insists on `status.desiredReplicas`, which
    only the HPA controller (absent from kubesim) would fill in."""
    custom = client.CustomObjectsApi(api)
    try:
        hpa = custom.get_namespaced_custom_object(
            "autoscaling", "v2", namespace, "horizontalpodautoscalers", name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return cast(dict[str, Any], hpa)


def hpa_applied_at(generation: int) -> Callable[[list[OutcomeEvent]], bool]:
    return lambda es: any(
        e.action == "hpa-applied" and e.observed_generation == generation for e in es
    )


async def test_hpa_created_updated_and_deleted_with_the_spec(stage: Stage) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    deployment = owned_name("users")
    async with scaling_stack(gati_api, gati_connection, bus_settings) as seen:
        workloads.create(handler(ns, "users", resources=RESOURCES, scaling=HPA_SCALING))
        await seen.wait_for(lambda es: any(e.action == "hpa-applied" for e in es))
        hpa = hpa_of(gati_api, ns, deployment)
        assert hpa is not None
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
        metric = hpa["spec"]["metrics"][0]["resource"]
        assert metric == {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 70},
        }
        managers = {m["manager"] for m in hpa["metadata"]["managedFields"]}
        assert managers == {"gati-operator-scaler"}

        workloads.patch_spec("GatiHandler", "users", {"scaling": HPA_SCALING | {"maxReplicas": 8}})
        await seen.wait_for(hpa_applied_at(2))
        hpa = hpa_of(gati_api, ns, deployment)
        assert hpa is not None
        assert hpa["spec"]["maxReplicas"] == 8

        events_mode = {"mode": "events", "targetRequestsPerReplica": 10, "maxReplicas": 8}
        workloads.patch_spec("GatiHandler", "users", {"scaling": events_mode})
        await seen.wait_for(lambda es: any(e.action == "hpa-deleted" for e in es))
        assert hpa_of(gati_api, ns, deployment) is None
        # The reconciler left replicas alone throughout: it omits the field under a scaler.
        live = workloads.deployment(deployment)
        owners = {
            m["manager"]
            for m in live["metadata"]["managedFields"]
            if "f:replicas" in (m.get("fieldsV1") or {}).get("f:spec", {})
        }
        assert "gati-operator" not in owners


async def test_the_holder_follows_a_spec_change_another_replica_was_handed(stage: Stage) -> None:
    """The durable gives each change to one replica; the holder hears every change anyway, so
    the HPA follows at once rather than at the next resync (two minutes here)."""
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    deployment = owned_name("users")
    slow_resync = dataclasses.replace(FAST, resync_seconds=120)
    async with (
        reconciled(gati_api, gati_connection) as seen,
        running_scaler(gati_api, bus_settings, source="s0", options=slow_resync) as first,
        running_scaler(gati_api, bus_settings, source="s1", options=slow_resync) as second,
    ):
        workloads.create(handler(ns, "users", resources=RESOURCES, scaling=HPA_SCALING))
        await seen.wait_for(lambda es: any(e.action == "hpa-applied" for e in es))
        assert len(first.scaler.held | second.scaler.held) == 1
        for generation, highest in ((2, 6), (3, 7), (4, 8)):
            spec = {"scaling": HPA_SCALING | {"maxReplicas": highest}}
            workloads.patch_spec("GatiHandler", "users", spec)
            await seen.wait_for(hpa_applied_at(generation))
        hpa = hpa_of(gati_api, ns, deployment)
        assert hpa is not None
        assert hpa["spec"]["maxReplicas"] == 8
        sources = {e.source for e in seen.events if e.action == "hpa-applied"}
        assert len(sources) == 1, "only the holder wrote the HPA"


async def test_an_hpa_the_server_refuses_fails_once_per_generation(
    gati_kubesim: ThreadedKubeSim, stage: Stage
) -> None:
    """A refusal (here an admission webhook's 422, injected) is reported, not retried every
    tick; the next generation is tried afresh."""
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    refuse = {"verb": "patch", "resource": "horizontalpodautoscalers", "code": 422}
    kubesim_hook(gati_kubesim.url, "faults", refuse)
    try:
        async with scaling_stack(gati_api, gati_connection, bus_settings) as seen:
            workloads.create(handler(ns, "users", resources=RESOURCES, scaling=HPA_SCALING))
            await seen.wait_for(lambda es: any(e.reason == "HpaRejected" for e in es))
            await after_ticks(10)
            rejected = [e for e in seen.events if e.reason == "HpaRejected"]
            assert len(rejected) == 1
            assert rejected[0].result is OutcomeResult.FAILED
            assert "422" in rejected[0].message
            kubesim_hook(gati_kubesim.url, "faults", method="DELETE")
            workloads.patch_spec("GatiHandler", "users", {"scaling": {"maxReplicas": 6}})
            await seen.wait_for(lambda es: any(e.action == "hpa-applied" for e in es))
            assert hpa_of(gati_api, ns, owned_name("users")) is not None
    finally:
        kubesim_hook(gati_kubesim.url, "faults", method="DELETE")


async def test_an_hpa_left_behind_while_no_scaler_ran_is_deleted(stage: Stage) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    async with (
        reconciled(gati_api, gati_connection) as seen,
    ):
        async with running_scaler(gati_api, bus_settings, source="s0"):
            workloads.create(handler(ns, "users", resources=RESOURCES, scaling=HPA_SCALING))
            await seen.wait_for(lambda es: any(e.action == "hpa-applied" for e in es))
        workloads.patch_spec("GatiHandler", "users", {"scaling": {"mode": "none"}})
        await seen.phase("users", "Running", generation=2)
        assert hpa_of(gati_api, ns, owned_name("users")) is not None
        async with running_scaler(gati_api, bus_settings, source="s1"):
            await seen.wait_for(lambda es: any(e.action == "hpa-deleted" for e in es))
        assert hpa_of(gati_api, ns, owned_name("users")) is None
