"""A watch read on the event loop: the stream's framing and ends from bytes fed by hand, and
TLS with a bearer token against a real kubesim serving HTTPS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading

import pytest
from kubernetes import client

from fixtures.kubesim_server import api_client, scratch_namespace
from gati_contracts.kinds import DEPLOYMENT
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.http1 import Head
from gati_runtime.kube_transport import StreamedBody
from gati_watcher import kube
from gati_watcher.handoff import Handoff
from gati_watcher.kube import KubeReader, WatchItem, WatchMessage, WatchStopped, watch_transport
from gati_watcher.policy import WatchEnd
from gati_watcher.targets import WatchTarget
from watcher.helpers import Cluster, deployment

CHUNKED = Head(200, None, True, True, None)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def line(kind: str, name: str, rv: str) -> bytes:
    return b'{"type":"%s","object":{"metadata":{"name":"%s","resourceVersion":"%s"}}}\n' % (
        kind.encode(),
        name.encode(),
        rv.encode(),
    )


def fed(head: Head = CHUNKED) -> tuple[StreamedBody, asyncio.StreamReader]:
    reader = asyncio.StreamReader()
    return StreamedBody(head, reader, reader.feed_eof), reader


async def read_all(
    body: StreamedBody, capacity: int = 16, read_timeout: float = 30.0
) -> tuple[list[WatchMessage], WatchStopped]:
    handoff: Handoff[WatchMessage] = Handoff(capacity)
    stopped = await kube._read(body, read_timeout, handoff)
    items: list[WatchMessage] = []
    while (item := handoff.get_nowait()) is not None:
        items.append(item)
    return items, stopped


def names(items: list[WatchMessage]) -> list[str]:
    return [item.obj["metadata"]["name"] for item in items if isinstance(item, WatchItem)]


async def test_lines_split_across_chunks_and_reads_arrive_whole_and_in_order() -> None:
    body, reader = fed()
    stream = line("ADDED", "a", "1") + line("MODIFIED", "b", "2") + line("BOOKMARK", "", "3")
    # A line cut in three chunks, the cuts falling in the framing's reads too.
    reader.feed_data(chunk(stream[:10]) + chunk(stream[10:70])[:4])
    reader.feed_data(chunk(stream[10:70])[4:] + chunk(stream[70:]))
    reader.feed_data(b"0\r\n\r\n")
    items, stopped = await read_all(body)
    assert names(items) == ["a", "b", ""]
    assert [item.resource_version for item in items if isinstance(item, WatchItem)] == [
        "1",
        "2",
        "3",
    ]
    assert stopped.end is WatchEnd.CLOSED  # the server ended the body: resume from rv 3


async def test_an_error_event_ends_the_watch_after_the_changes_before_it() -> None:
    body, reader = fed()
    gone = b'{"type":"ERROR","object":{"code":410,"reason":"Expired","message":"too old"}}\n'
    reader.feed_data(chunk(line("ADDED", "a", "1") + gone + line("ADDED", "b", "2")))
    items, stopped = await read_all(body)
    assert names(items) == ["a"]
    assert stopped.end is WatchEnd.EXPIRED
    assert "410 Expired: too old" in stopped.detail


@pytest.mark.parametrize(
    ("data", "end", "detail"),
    [
        (chunk(line("ADDED", "a", "1")), WatchEnd.FAILED, "mid-stream"),
        (b"zz\r\n", WatchEnd.FAILED, "chunk size"),
        (chunk(b"{not json}\n"), WatchEnd.FAILED, "unreadable watch event"),
    ],
)
async def test_a_stream_cut_or_garbled_ends_the_watch_as_failed(
    data: bytes, end: WatchEnd, detail: str
) -> None:
    body, reader = fed()
    reader.feed_data(data)
    reader.feed_eof()
    _, stopped = await read_all(body)
    assert stopped.end is end
    assert detail in stopped.detail


async def test_a_body_without_chunks_runs_to_the_connections_end() -> None:
    body, reader = fed(Head(200, None, False, False, None))
    reader.feed_data(line("ADDED", "a", "1") + line("ADDED", "b", "2")[:9])
    reader.feed_data(line("ADDED", "b", "2")[9:])
    reader.feed_eof()
    items, stopped = await read_all(body)
    assert names(items) == ["a", "b"]
    assert stopped.end is WatchEnd.CLOSED


async def test_a_silent_stream_is_cut_once_nothing_came_for_the_read_timeout() -> None:
    body, reader = fed()
    reader.feed_data(chunk(line("ADDED", "a", "1")))
    async with asyncio.timeout(30):
        items, stopped = await read_all(body, read_timeout=0.05)
    assert names(items) == ["a"]
    assert stopped.end is WatchEnd.SILENT


async def test_a_full_handoff_holds_the_reader_without_counting_as_silence() -> None:
    body, reader = fed()
    reader.feed_data(chunk(b"".join(line("ADDED", str(n), str(n)) for n in range(6))))
    handoff: Handoff[WatchMessage] = Handoff(capacity=2)
    reading = asyncio.create_task(kube._read(body, 0.05, handoff))
    taken: list[str] = []
    while len(taken) < 6:
        await handoff.wait()
        while (item := handoff.get_nowait()) is not None:
            assert isinstance(item, WatchItem)
            taken.append(item.obj["metadata"]["name"])
        assert handoff.in_flight <= 2
        if len(taken) < 6:
            await asyncio.sleep(0.1)  # past the read timeout, while the reader waits for room
        for _ in range(handoff.in_flight):
            handoff.release()
    reader.feed_data(b"0\r\n\r\n")  # before the reader runs again: it cannot be silent
    async with asyncio.timeout(30):
        stopped = await reading
    assert taken == [str(n) for n in range(6)]
    assert stopped.end is WatchEnd.CLOSED
    assert handoff.high_water == 2


async def next_message(handoff: Handoff[WatchMessage]) -> WatchMessage:
    async with asyncio.timeout(30):
        while (item := handoff.get_nowait()) is None:
            await handoff.wait()
    handoff.release()
    return item


async def test_a_watch_goes_over_tls_with_the_clients_bearer_token() -> None:
    with ThreadedKubeSim(token="s3cret") as sim:
        ca = sim.sim.ca_file
        with (
            api_client(sim.url, "s3cret", ca) as api,
            scratch_namespace(api, "tls") as namespace,
        ):
            reader = KubeReader(api, WatchTarget(DEPLOYMENT, namespace))
            listing = await asyncio.to_thread(reader.list_objects)
            handoff: Handoff[WatchMessage] = Handoff(4)
            cut = reader.start_watch(listing.resource_version, 30.0, handoff)
            try:
                Cluster(api, namespace).create(deployment(namespace, "over-tls"))
                item = await next_message(handoff)
                while isinstance(item, WatchItem) and item.type == "BOOKMARK":
                    item = await next_message(handoff)
            finally:
                cut()
            assert isinstance(item, WatchItem)
            assert (item.type, item.obj["metadata"]["name"]) == ("ADDED", "over-tls")

        with api_client(sim.url, "wrong", ca) as api:
            refused = await watch_end(api)
        assert refused.end is WatchEnd.FAILED
        assert "watch refused: 401" in refused.detail
        with api_client(sim.url, "s3cret") as api:  # the cluster's CA not trusted
            untrusted = await watch_end(api)
        assert untrusted.end is WatchEnd.FAILED
        assert "could not connect" in untrusted.detail


async def watch_end(api: client.ApiClient) -> WatchStopped:
    """How a watch that cannot start ends."""
    reader = KubeReader(api, WatchTarget(DEPLOYMENT, "default"), transport=watch_transport(api))
    handoff: Handoff[WatchMessage] = Handoff(4)
    cut = reader.start_watch("", 30.0, handoff)
    try:
        message = await next_message(handoff)
    finally:
        cut()
    assert isinstance(message, WatchStopped)
    return message


async def test_a_silent_tls_peer_is_cut_without_waiting_for_its_goodbye() -> None:
    """A peer that is gone (a partition, a dead node) never answers TLS's close_notify: the
    cut is an abort, or the silent watch would hang on until the TLS shutdown timed out."""
    with ThreadedKubeSim(token="s3cret") as sim:  # for its certificate alone
        cert = sim.sim.cert
        assert cert is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert_file, cert.key_file)
        listener = socket.create_server(("127.0.0.1", 0))
        finished = threading.Event()

        def deaf_server() -> None:
            connection, _ = listener.accept()
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1 << 16)
                tls.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                finished.wait(60)  # reads nothing more, answers nothing

        server = threading.Thread(target=deaf_server, daemon=True)
        server.start()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        try:
            with api_client(url, "s3cret", sim.sim.ca_file) as api:
                reader = KubeReader(api, WatchTarget(DEPLOYMENT, "default"))
                handoff: Handoff[WatchMessage] = Handoff(4)
                cut = reader.start_watch("1", 0.2, handoff)
                try:
                    async with asyncio.timeout(15):  # TLS waits 30 s for a goodbye
                        while (message := handoff.get_nowait()) is None:
                            await handoff.wait()
                finally:
                    cut()
        finally:
            finished.set()
            listener.close()
            await asyncio.to_thread(server.join, 10)
    assert isinstance(message, WatchStopped)
    assert message.end is WatchEnd.SILENT


async def test_a_watch_whose_credentials_cannot_be_had_ends_failed_instead_of_hanging(
    gati_api: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_token(*args: object) -> None:
        raise RuntimeError("exec plugin: no token")

    monkeypatch.setattr(gati_api, "update_params_for_auth", no_token)
    stopped = await watch_end(gati_api)
    assert stopped.end is WatchEnd.FAILED
    assert "exec plugin: no token" in stopped.detail
