"""NATS node loss: the operator runs on a three-node JetStream cluster (`GATI` with three
replicas) through a burst; mid-burst one node is killed and brought back, then the stream's
leader is. Nothing is lost (`verify` clean), the stream holds no change twice, every handler
converges, and no service process exits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest

from faults.operator import kubesim_cluster, operator_group
from faults.verdict import judge
from faults.workload import Burst, await_convergence
from fixtures.kubesim_server import api_client
from gati_contracts.subjects import STREAM
from gati_runtime.embedded_nats import NatsCluster

REPLICAS = "3"
DOWN_FOR = 3.0
"""Seconds a killed node stays down: long enough for elections and client failover."""


async def _stream_leader(url: str) -> str:
    client = await nats.connect(servers=url.split(","), name="fault-leader")
    try:
        info = await client.jsm().stream_info(STREAM)
        assert info.cluster is not None
        assert info.cluster.leader is not None
        return info.cluster.leader
    finally:
        await client.close()


def node_loss_run(tmp_path: Path, *, handlers: int, updates: int, rate: float) -> None:
    with NatsCluster(tmp_path / "cluster") as nodes, kubesim_cluster(tmp_path) as cluster:
        url = ",".join(nodes.urls)
        names = [node.name for node in nodes.nodes]
        with (
            api_client(cluster.url) as api,
            operator_group(
                tmp_path,
                nats_url=url,
                kubeconfig=cluster.kubeconfig,
                env={"GATI_STREAM_REPLICAS": REPLICAS, "GATI_METRICS_REPLICAS": REPLICAS},
            ) as operator,
        ):
            operator.await_readiness(True, timeout=90)
            burst = Burst(
                api, [f"node-{i}" for i in range(4)], handlers=handlers, updates=updates, rate=rate
            )
            burst.start()
            assert burst.halfway.wait(timeout=180), "burst never reached halfway"

            leader = asyncio.run(_stream_leader(url))
            follower = next(i for i, name in enumerate(names) if name != leader)
            killed_follower_at = burst.changes
            nodes.kill(follower)
            time.sleep(DOWN_FOR)  # the fault's duration, not a wait for a condition
            nodes.nodes[follower].start(timeout=60)

            leader = asyncio.run(_stream_leader(url))
            killed_leader_at = burst.changes
            nodes.kill(names.index(leader))
            time.sleep(DOWN_FOR)
            nodes.nodes[names.index(leader)].start(timeout=60)
            fault_over = time.monotonic()

            converged = await_convergence(api, burst, timeout=240)
            verdict = judge(operator, burst, converged, url, cluster.kubeconfig)

    verdict.conclude(
        "NATS: follower node, then stream leader killed (R3)",
        fault_over,
        follower_killed_after_changes=killed_follower_at,
        leader_killed_after_changes=killed_leader_at,
        old_leader=leader,
    )


@pytest.mark.timeout(500)
def test_operator_survives_losing_a_node_then_the_leader(tmp_path: Path) -> None:
    node_loss_run(tmp_path, handlers=10, updates=4, rate=10)


@pytest.mark.long
@pytest.mark.timeout(1200)
def test_operator_survives_node_loss_during_a_2000_change_burst(tmp_path: Path) -> None:
    node_loss_run(tmp_path, handlers=50, updates=9, rate=40)
