"""The embedded server is what every integration test stands on: restart and cluster faults."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType
from nats.js.errors import NoStreamResponseError

from fixtures.nats_server import ANCHOR_STREAM
from gati_runtime.embedded_nats import (
    GO_MAX_PROCS,
    EmbeddedNats,
    NatsCluster,
    NatsServerError,
    NodePorts,
)


async def test_restart_keeps_port_and_data(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        url = server.url
        client = await nats.connect(url)
        js = client.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"], storage=StorageType.FILE)
        await js.publish("keep.one", b"payload")
        await client.close()

        server.restart()

        assert server.url == url
        client = await nats.connect(url)
        msg = await client.jetstream().get_last_msg("KEEP", "keep.one")
        assert msg.data == b"payload"
        await client.close()
    finally:
        server.stop()
    assert not server.running


def test_pid_is_the_servers_own_process(tmp_path: Path, nats_server: EmbeddedNats) -> None:
    assert Path(f"/proc/{nats_server.pid}/comm").read_text().strip() == "nats-server"
    with pytest.raises(NatsServerError, match="not running"):
        _ = EmbeddedNats(tmp_path / "idle").pid


def _environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def test_an_embedded_server_runs_on_one_go_processor_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    with EmbeddedNats(tmp_path / "narrow") as narrow:
        assert _environment(narrow.pid)["GOMAXPROCS"] == GO_MAX_PROCS == "1"
    monkeypatch.setenv("GOMAXPROCS", "2")
    with EmbeddedNats(tmp_path / "wider") as wider:
        assert _environment(wider.pid)["GOMAXPROCS"] == "2"


def test_start_fails_clearly_when_port_is_taken(tmp_path: Path, nats_server: EmbeddedNats) -> None:
    clash = EmbeddedNats(tmp_path / "clash", port=nats_server.ports.client)
    with pytest.raises(NatsServerError, match="exited"):
        clash.start()


async def test_each_test_starts_with_no_streams(nats_client: Client) -> None:
    assert nats_client.is_connected
    names = [info.config.name for info in await nats_client.jsm().streams_info()]
    assert names == [ANCHOR_STREAM]


async def _publish_once_led(js: JetStreamContext, subject: str, data: bytes) -> PubAck:
    """A new or orphaned R3 stream answers only after its leader election; retry until then.
    The message id makes a retry whose first try was stored (its ack late on a loaded machine)
    a duplicate, answered with the first one's sequence, not a second copy."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await js.publish(subject, data, timeout=1, headers={"Nats-Msg-Id": subject})
        except (NoStreamResponseError, NoRespondersError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_three_node_cluster_survives_one_node_kill(nats_cluster: NatsCluster) -> None:
    client = await nats.connect(nats_cluster.urls)
    js = client.jetstream()
    await js.add_stream(name="R3", subjects=["r3.>"], num_replicas=3)
    await _publish_once_led(js, "r3.before", b"1")

    # Kill a node that is not the one we are connected to, so the test measures the
    # stream's fault tolerance, not the client's reconnect.
    assert client.connected_url is not None
    connected = client.connected_url.port
    victim = next(i for i, node in enumerate(nats_cluster.nodes) if node.ports.client != connected)
    nats_cluster.kill(victim)

    ack = await _publish_once_led(js, "r3.after", b"2")
    assert ack.seq == 2
    nats_cluster.restart(victim)
    info = await js.stream_info("R3")
    assert info.state.messages == 2
    assert info.cluster is not None
    assert len(info.cluster.replicas or []) == 2
    await client.close()


def test_ports_asked_together_are_distinct() -> None:
    ports = NodePorts.allocate_many(3, clustered=True)
    numbers = [n for p in ports for n in (p.client, p.monitor, p.cluster)]
    assert len(set(numbers)) == 9


def _taken(port: int) -> socket.socket:
    """Someone else's listener on `port`, as an outgoing connection or another test could be."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    return squatter


def test_a_port_taken_before_the_first_start_is_picked_afresh(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    taken = server.ports.client
    with _taken(taken), server:
        assert server.port_taken() is False
        assert server.ports.client != taken
        restarted_at = server.url
        server.restart()
        assert server.url == restarted_at  # once served, its ports are its URLs for good


def test_a_cluster_whose_route_port_is_taken_starts_on_fresh_ports(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "cluster")
    taken = cluster.nodes[1].ports.cluster
    assert taken is not None
    with _taken(taken), cluster:
        assert all(node.ports.cluster != taken for node in cluster.nodes)
        assert all(node.running for node in cluster.nodes)


def test_a_cluster_that_fails_to_start_leaves_no_node_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = NatsCluster(tmp_path / "cluster")
    # No time to become healthy: every node is spawned, then the start fails.
    monkeypatch.setattr(cluster, "start", lambda: NatsCluster.start(cluster, timeout=0.0))
    with pytest.raises(NatsServerError, match="not healthy"), cluster:
        pass
    assert not any(node.running for node in cluster.nodes)
