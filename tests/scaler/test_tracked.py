"""The scaler keeps the spec of a handler only while it has something to do for it, so its memory
and each tick grow with the scaled handlers rather than with every handler of the cluster."""

from __future__ import annotations

from fixtures.stage import Stage
from reconciler.harness import handler
from scaler.running import after_ticks, reconciled, running_scaler

HPA_SCALING = {"mode": "hpa", "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 70}
RESOURCES = {"requests": {"cpu": "100m"}}


async def test_only_a_handler_with_something_to_scale_is_kept(stage: Stage) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    async with (
        reconciled(gati_api, gati_connection) as seen,
        running_scaler(gati_api, bus_settings) as replica,
    ):
        workloads.create(handler(ns, "plain"))
        workloads.create(handler(ns, "users", resources=RESOURCES, scaling=HPA_SCALING))
        await seen.wait_for(lambda es: any(e.action == "hpa-applied" for e in es))
        await seen.phase("plain", "Running", generation=1)
        await after_ticks(7)  # a resync (every 1 s) has listed both since
        assert replica.scaler.tracked == {(ns, "users")}

        workloads.patch_spec("GatiHandler", "users", {"scaling": {"mode": "none"}})
        await seen.wait_for(lambda es: any(e.action == "hpa-deleted" for e in es))
        await after_ticks(7)
        assert replica.scaler.tracked == frozenset()
        assert replica.scaler.held == frozenset()
