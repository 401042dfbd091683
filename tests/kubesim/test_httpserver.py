"""kubesim's HTTP/1.1 server over raw sockets: keep-alive, pipelining, chunked and
`Expect: 100-continue` bodies, HEAD, refusals that close only their own connection, and
watches that end with their client or the server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable

from gati_kubesim.api import WriteOptions
from gati_kubesim.http import error_body
from gati_kubesim.httpserver import Connection, HttpServer, Response
from gati_kubesim.httpwire import Request
from gati_kubesim.server import KubeSim

CM = "/api/v1/namespaces/default/configmaps"
WAIT = 60.0


async def connect(sim: KubeSim) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(sim.host, sim.port)


def request(method: str, target: str, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: kubesim", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def response(
    reader: asyncio.StreamReader, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names) and body, chunked or sized."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
    if head:
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT))[:-2], 16)
            data = await asyncio.wait_for(reader.readexactly(size + 2), WAIT)
            if size == 0:
                return status, headers, body
            body += data[:-2]
    return status, headers, await reader.readexactly(int(headers["content-length"]))


def configmap(name: str) -> bytes:
    return json.dumps({"metadata": {"name": name}, "data": {"k": "v"}}).encode()


async def until(condition: Callable[[], bool], what: str) -> None:
    """For server state no event announces (its set of open watches): ask every 10 ms."""
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} did not happen within {WAIT}s")


async def test_keep_alive_answers_many_requests_on_one_connection(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    for name in ("a", "b", "c"):
        writer.write(request("POST", CM, configmap(name), "Content-Type: application/json"))
        status, _, body = await response(reader)
        assert status == 201, body
    writer.write(request("GET", f"{CM}/b"))
    status, headers, body = await response(reader)
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body)["metadata"]["name"] == "b"
    writer.close()


async def test_pipelined_requests_are_answered_in_order(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    writer.write(
        request("POST", CM, configmap("p"), "Content-Type: application/json")
        + request("GET", f"{CM}/p")
        + request("GET", f"{CM}/none")
        + request("GET", "/healthz")
    )
    answers = [await response(reader) for _ in range(4)]
    assert [a[0] for a in answers] == [201, 200, 404, 200]
    assert json.loads(answers[1][2])["metadata"]["name"] == "p"
    assert json.loads(answers[2][2])["reason"] == "NotFound"
    assert answers[3][2] == b"ok"
    writer.close()


async def test_a_chunked_body_with_expect_continue_creates_the_object(
    kubesim_async: KubeSim,
) -> None:
    reader, writer = await connect(kubesim_async)
    body = configmap("chunked")
    writer.write(
        request(
            "POST",
            CM,
            b"",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
            "Expect: 100-continue",
        )
    )
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (5, body[:5], len(body) - 5, body[5:]))
    status, _, answer = await response(reader)
    assert status == 201, answer
    assert json.loads(answer)["data"] == {"k": "v"}
    writer.close()


async def test_head_states_the_length_without_a_body(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    writer.write(request("HEAD", "/version") + request("GET", "/healthz"))
    status, headers, _ = await response(reader, head=True)
    assert status == 200
    assert int(headers["content-length"]) > 0
    # No body followed the HEAD answer: the next bytes are the GET's answer.
    assert (await response(reader))[::2] == (200, b"ok")
    writer.close()


async def test_bad_framing_gets_a_status_and_closes_only_its_connection(
    kubesim_async: KubeSim,
) -> None:
    other_reader, other_writer = await connect(kubesim_async)
    reader, writer = await connect(kubesim_async)
    writer.write(b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n" + request("GET", "/healthz"))
    status, headers, body = await response(reader)
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(body)["kind"] == "Status"
    assert "header line" in json.loads(body)["message"]
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed, the GET never read
    other_writer.write(request("GET", "/healthz"))
    assert (await response(other_reader))[0] == 200
    other_writer.close()
    writer.close()


async def test_an_oversized_body_is_refused_before_it_is_read(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    writer.write(f"POST {CM} HTTP/1.1\r\nContent-Length: {64 * 1024**2}\r\n\r\n".encode())
    status, _, body = await response(reader)
    assert status == 413
    assert "exceeds" in json.loads(body)["message"]
    writer.close()


async def test_http_1_0_and_connection_close_end_the_connection(kubesim_async: KubeSim) -> None:
    for data in (
        b"GET /healthz HTTP/1.0\r\n\r\n",
        request("GET", "/healthz", b"", "Connection: close"),
    ):
        reader, writer = await connect(kubesim_async)
        writer.write(data)
        status, headers, body = await response(reader)
        assert (status, body, headers["connection"]) == (200, b"ok", "close")
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()


async def test_a_fixed_path_refuses_other_methods_with_a_status(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    writer.write(request("POST", "/healthz", b"{}") + request("PUT", "/apis/apps"))
    for _ in range(2):
        status, _, body = await response(reader)
        assert status == 405
        assert json.loads(body)["reason"] == "MethodNotAllowed"
    writer.write(request("GET", "/nowhere") + request("GET", "/apis//v1"))
    for _ in range(2):
        status, _, body = await response(reader)
        assert (status, json.loads(body)["reason"]) == (404, "NotFound")
    writer.close()


async def test_a_watch_is_chunked_and_ends_at_its_timeout(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    writer.write(request("POST", CM, configmap("w"), "Content-Type: application/json"))
    status, _, body = await response(reader)
    rv = json.loads(body)["metadata"]["resourceVersion"]
    before = int(rv) - 1
    writer.write(request("GET", f"{CM}?watch=1&resourceVersion={before}&timeoutSeconds=1"))
    status, headers, body = await response(reader)
    assert (status, headers["transfer-encoding"]) == (200, "chunked")
    events = [json.loads(line) for line in body.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w")]
    writer.write(request("GET", "/healthz"))  # the connection serves on after the watch
    assert (await response(reader))[2] == b"ok"
    writer.close()


async def test_a_client_that_goes_ends_its_watch(kubesim_async: KubeSim) -> None:
    reader, writer = await connect(kubesim_async)
    writer.write(request("GET", f"{CM}?watch=1&timeoutSeconds=600"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    await until(lambda: len(kubesim_async.watchers) == 1, "the watch opening")
    writer.close()
    await until(lambda: not kubesim_async.watchers, "the watch ending")


async def test_stopping_the_server_ends_open_watches_cleanly() -> None:
    async with KubeSim(ready_after=0.05) as sim:
        reader, writer = await connect(sim)
        writer.write(request("GET", f"{CM}?watch=1&timeoutSeconds=600"))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        await until(lambda: len(sim.watchers) == 1, "the watch opening")
    # The stream ended with its last chunk, then the connection closed.
    assert await asyncio.wait_for(reader.read(), WAIT) == b"0\r\n\r\n"
    writer.close()


async def test_a_failing_handler_gets_a_500_and_the_server_serves_on() -> None:
    calls: list[str] = []

    async def handler(request: Request, connection: Connection) -> Response:
        calls.append(request.path)
        if request.path == "/bug":
            raise RuntimeError("a bug")
        return Response(b"fine", content_type="text/plain")

    server = HttpServer(handler, error_body)
    port = await server.start("127.0.0.1", 0, None)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("GET", "/bug") + request("GET", "/after"))
        status, headers, body = await response(reader)
        assert (status, headers["connection"]) == (500, "close")
        assert json.loads(body)["message"] == "internal error"
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("GET", "/next"))
        assert (await response(reader))[::2] == (200, b"fine")
        writer.close()
    finally:
        await server.stop()
    assert calls == ["/bug", "/next"]


async def test_a_watch_client_that_stops_reading_gets_every_event_in_order_later(
    kubesim_async: KubeSim,
) -> None:
    """Events pile up in the server while the client's buffers are full (far more bytes than
    every buffer between them holds), then arrive whole and in order, and the watch goes on."""
    sim = kubesim_async
    configmaps = sim.api.resource("", "v1", "configmaps")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (sim.host, sim.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(request("GET", f"{CM}?watch=1&resourceVersion=0&timeoutSeconds=600"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    await until(lambda: len(sim.watchers) == 1, "the watch opening")
    names = [f"cm-{i:03}" for i in range(400)]
    payload = "x" * 64_000
    for name in names:  # ~25 MB, written in-process while the client reads nothing
        sim.api.create(
            configmaps,
            "default",
            {"metadata": {"name": name}, "data": {"k": payload}},
            WriteOptions("t"),
        )
        await asyncio.sleep(0)
    names.append("last")
    sim.api.create(configmaps, "default", {"metadata": {"name": "last"}}, WriteOptions("t"))
    got: list[str] = []
    while len(got) < len(names):
        size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT))[:-2], 16)
        assert size, "the watch ended early"
        chunk = await asyncio.wait_for(reader.readexactly(size + 2), WAIT)
        got += [json.loads(line)["object"]["metadata"]["name"] for line in chunk[:-2].splitlines()]
    assert got == names
    writer.close()
