"""Process crashes: during a burst every service is SIGKILLed ten times at random moments (and
restarted at once, as a Deployment's pod would be). After the last restart the operator
converges, `verify` finds no drift, and the stream holds no change twice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from faults.operator import single_node_stack
from faults.verdict import judge
from faults.workload import Burst, await_convergence

KILLS_PER_SERVICE = 10
GAP = (0.2, 1.2)
"""Seconds between two kills: random, so a kill lands at start-up, mid-fetch or mid-effect."""


def crash_run(tmp_path: Path, *, handlers: int, updates: int, rate: float, seed: int) -> None:
    print(f"crash schedule seed: {seed}")  # shown with a failure, to replay the same kills
    rng = random.Random(seed)
    with single_node_stack(tmp_path, "fault-crash") as (server, cluster, api, operator):
        victims = [name for name in operator.services for _ in range(KILLS_PER_SERVICE)]
        rng.shuffle(victims)
        burst = Burst(
            api, [f"crash-{i}" for i in range(4)], handlers=handlers, updates=updates, rate=rate
        )
        burst.start()
        kills_during_burst = 0
        for name in victims:
            time.sleep(rng.uniform(*GAP))  # the random point of the next crash
            victim = operator.services[name]
            victim.kill()
            victim.start()
            kills_during_burst += not burst.done.is_set()
        last_restart = time.monotonic()
        converged = await_convergence(api, burst, timeout=240)
        verdict = judge(operator, burst, converged, server.url, cluster.kubeconfig)

    verdict.conclude(
        f"SIGKILL: {len(operator.services)} services x {KILLS_PER_SERVICE}",
        last_restart,
        services=",".join(operator.services),
        kills=len(victims),
        kills_during_burst=kills_during_burst,
        seed=seed,
    )
    assert {s.kills for s in operator.services.values()} == {KILLS_PER_SERVICE}


@pytest.mark.timeout(400)
def test_every_service_killed_ten_times_during_a_burst(tmp_path: Path) -> None:
    crash_run(tmp_path, handlers=10, updates=4, rate=10, seed=random.randrange(2**32))


@pytest.mark.long
@pytest.mark.timeout(900)
def test_every_service_killed_ten_times_during_a_2000_change_burst(tmp_path: Path) -> None:
    crash_run(tmp_path, handlers=50, updates=9, rate=40, seed=random.randrange(2**32))
