"""NATS outage: the only server stops for 30 s in the middle of a burst. Every service's
`/readyz` turns not-ready during it and ready again by itself once NATS is back; the changes
made meanwhile reach the stream (`verify` clean), every handler converges, nothing exits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from faults.operator import single_node_stack
from faults.verdict import judge
from faults.workload import Burst, await_convergence

OUTAGE = 30.0
NOTICE = 15.0
"""Seconds a service may take to report the outage on /readyz."""
RECOVER = 60.0


@pytest.mark.timeout(400)
def test_services_are_not_ready_while_nats_is_down_and_recover_alone(tmp_path: Path) -> None:
    with single_node_stack(tmp_path, "fault-outage") as (server, cluster, api, operator):
        burst = Burst(api, [f"out-{i}" for i in range(4)], handlers=10, updates=9, rate=10)
        burst.start()
        assert burst.halfway.wait(timeout=120), "burst never reached halfway"
        changes_before = burst.changes
        server.stop()
        down_at = time.monotonic()
        not_ready_at = operator.await_readiness(False, timeout=NOTICE)
        time.sleep(max(OUTAGE - (time.monotonic() - down_at), 0.0))  # the outage itself
        still_down = operator.readiness()
        changes_during = burst.changes - changes_before
        server.start()
        back_at = time.monotonic()
        ready_at = operator.await_readiness(True, timeout=RECOVER)
        converged = await_convergence(api, burst, timeout=240)
        verdict = judge(operator, burst, converged, server.url, cluster.kubeconfig)

    verdict.conclude(
        f"NATS: only server down {OUTAGE:.0f} s",
        back_at,
        changes_during_outage=changes_during,
        not_ready_after_s=round(not_ready_at - down_at, 1),
        ready_after_restart_s=round(ready_at - back_at, 1),
    )
    assert set(still_down.values()) == {False}, f"ready while NATS was down: {still_down}"
    assert changes_during > 0, "the outage must fall inside the burst"
