"""Two scaler replicas; the one holding the handler is killed mid-ramp (no drain, no release).
The other takes the lease when it lapses, rebuilds the window from GATI_METRICS and carries on
from where the first stopped: the replica counts written never step back during the ramp up."""

from __future__ import annotations

from fixtures.stage import Stage
from reconciler.harness import handler
from scaler.running import reconciled, running_scaler
from scaler.test_events_mode import EVENTS, PATH, reach, replicas_of, router


async def test_killing_the_active_scaler_mid_ramp_hands_over_without_a_jump(stage: Stage) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    async with (
        reconciled(gati_api, gati_connection) as seen,
        running_scaler(gati_api, bus_settings, source="s0") as first,
        running_scaler(gati_api, bus_settings, source="s1") as second,
    ):
        workloads.create(handler(ns, "users", handlerPath=PATH, scaling=EVENTS))
        await seen.phase("users", "Running")
        async with router(gati_connection, ns) as traffic:
            traffic.rate = 20
            await reach(seen, 2)
            holder, other = (first, second) if first.scaler.held else (second, first)
            assert holder.scaler.held
            assert not other.scaler.held, "one active scaler per handler"
            traffic.rate = 60
            before = len(seen.events)
            await seen.wait_for(
                lambda es: any(
                    e.action == "scaled" and e.details["desiredReplicas"] > 2 for e in es[before:]
                )
            )
            await holder.kill()
            await reach(seen, 6)
        writes = [
            (e.source, e.details["currentReplicas"], e.details["desiredReplicas"])
            for e in seen.events
            if e.service == "scaler" and e.action == "scaled"
        ]
        sources = [source for source, _, _ in writes]
        taken_over = sources.index(other.scaler_source)
        assert taken_over > 0, writes
        assert set(sources[:taken_over]) == {holder.scaler_source}, writes
        desired = [d for _, _, d in writes]
        assert desired == sorted(desired), f"a jump back during the ramp up: {writes}"
        # The successor started from the replicas its predecessor had written.
        assert writes[taken_over][1] == writes[taken_over - 1][2], writes
        assert replicas_of(workloads, "users") == 6
        assert other.scaler.held
