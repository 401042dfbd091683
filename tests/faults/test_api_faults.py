"""API faults: kubesim answers 10 % of requests with 500 and delays every one by 100 ms while the
operator works through a burst. It converges, no service exits, and retries back off: once
converged, the operator's request rate under the same faults is a trickle, not a retry storm."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from faults.figures import api_requests
from faults.ledger import await_drained
from faults.operator import single_node_stack
from faults.verdict import judge
from faults.workload import Burst, await_convergence
from fixtures.kubesim_server import kubesim_hook
from gati_runtime.consumer import ConsumerOptions
from gati_timescape.service import CONSUMER

ERROR_RATE = 0.1
LATENCY = 0.1
QUIET_WINDOW = 5.0
MAX_REQUESTS_PER_CHANGE = 12.0
"""The reconciler needs a handful of requests per change (read, apply, status, the Deployment's
echo); retries of 10 % failures may add a few, a retry storm adds orders of magnitude."""
MAX_QUIET_RATE = 5.0
"""Requests/s once converged: resyncs and watch restarts, no request is being retried."""
NAMESPACES = ["api-a", "api-b", "api-c", "api-d"]
DRAIN_BUDGET = (
    sum(ConsumerOptions().backoff.delay(n).total_seconds() for n in range(1, CONSUMER.max_deliver))
    + CONSUMER.max_deliver * CONSUMER.ack_wait.total_seconds()
)
"""Convergence to drained consumers is bounded by the longest a message can stay unacknowledged
on timescape's durable (the default backoff; the reconciler's is shorter): every pause between
its `max_deliver` deliveries (1 + 2 + ... + 64 s) and each delivery's `ack_wait`, 207 s. Under
10 % errors a timescape pass (a dozen calls) fails often enough that among ~500 events one
sometimes goes through all eight deliveries: timescape drained 4 to 122 s after convergence over
ten runs, so the former 150 s budget measured luck and load, not a backlog (before passes were
coalesced, 211-295 timescape events were still pending 60 s after convergence)."""


def inject_api_faults(url: str) -> None:
    """Every request 100 ms late, one in ten of them then answered 500."""
    kubesim_hook(url, "faults", {"code": 500, "probability": ERROR_RATE, "latency": LATENCY})
    kubesim_hook(url, "faults", {"latency": LATENCY})


@pytest.mark.timeout(500)
def test_operator_converges_through_api_errors_and_latency(tmp_path: Path) -> None:
    with single_node_stack(tmp_path, "fault-api") as (server, cluster, api, operator):
        before = api_requests(cluster.url)
        started = time.monotonic()
        inject_api_faults(cluster.url)
        burst = Burst(api, NAMESPACES, handlers=10, updates=4)
        burst.start()
        converged = await_convergence(api, burst, timeout=180)
        during = api_requests(cluster.url) - before - burst.changes - converged.requests
        busy_seconds = converged.at - started

        drained = await_drained(server.url, timeout=DRAIN_BUDGET)
        quiet_from = api_requests(cluster.url)
        time.sleep(QUIET_WINDOW)  # a rate needs a window: nothing to await here
        quiet_rate = (api_requests(cluster.url) - quiet_from) / QUIET_WINDOW

        kubesim_hook(cluster.url, "faults", method="DELETE")
        verdict = judge(operator, burst, converged, server.url, cluster.kubeconfig)

    verdict.conclude(
        "API: 10 % 5xx + 100 ms latency",
        fault_over=burst.finished_at,
        operator_requests=during,
        requests_per_change=round(during / burst.changes, 2),
        requests_per_s=round(during / busy_seconds, 1),
        quiet_requests_per_s=round(quiet_rate, 2),
        drained_after_converged_s=round(drained - converged.at, 1),
    )
    assert during / burst.changes <= MAX_REQUESTS_PER_CHANGE
    assert quiet_rate <= MAX_QUIET_RATE
