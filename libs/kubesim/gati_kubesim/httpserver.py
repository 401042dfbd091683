"""kubesim's HTTP/1.1 server: connections on `asyncio.Protocol`, each request answered by one
handler coroutine, answers written whole and in order.

kubesim answers most requests from memory in tens of microseconds, so the server around them
decides much of its cost: a `GET /healthz` cost kubesim ~140 us of CPU under aiohttp's server
and ~75-80 us under this one, a bare protocol answering the same ~25 us (a kubesim child, 8
keep-alive clients, loaded 2-core machine); over bench.convergence (1,000 handlers, no update
wave) kubesim's CPU went from ~6.0 to ~4.5 s. This server does only what kubesim's clients
need: keep-alive and pipelined requests, bodies by Content-Length or chunked, `Expect:
100-continue`, HEAD, TLS through the transport, streamed (chunked) responses that respect the
client's flow control, and a stop that lets answers in progress finish. Framing is in `httpwire`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, cast

import structlog

from gati_kubesim.httpwire import (
    CONTINUE,
    LAST_CHUNK,
    HttpError,
    Request,
    RequestParser,
    encode_chunk,
    encode_response,
    encode_stream_head,
)

log = structlog.get_logger("kubesim")
JSON: Final = "application/json"


class Response:
    """A whole answer; `headers` are sent besides Content-Type and Content-Length."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        content_type: str = JSON,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers if headers is not None else []


Handler = Callable[[Request, "Connection"], Awaitable[Response | None]]
"""Answers a request with a `Response`, or with None once it has streamed its answer
through `Connection.stream`."""
ErrorBody = Callable[[int, str], bytes]
"""The body of the answer to a request that could not be read."""


class Stream:
    """A response sent in pieces (a watch): each `write` is one chunk, sent at once."""

    def __init__(
        self, connection: Connection, chunked: bool, on_lost: Callable[[], None] | None
    ) -> None:
        self._connection = connection
        self._chunked = chunked
        self._on_lost = on_lost

    async def write(self, data: bytes) -> None:
        """Send `data` now; waits while the client is not reading (its buffer full), and
        raises ConnectionResetError once the client has gone."""
        self._connection.send(encode_chunk(data) if self._chunked else data)
        await self._connection.drained()

    def send_now(self, data: bytes) -> bool:
        """Send `data` unless the client is not reading its buffer; False then, nothing sent.

        For writers that cannot wait (a watch's events, written as they are published); one
        refused waits with `write`. Raises ConnectionResetError once the client has gone.
        """
        if self._connection.paused:
            return False
        self._connection.send(encode_chunk(data) if self._chunked else data)
        return True

    def end(self) -> None:
        if self._on_lost is not None:
            self._connection.forget(self._on_lost)
        if self._chunked:
            with contextlib.suppress(ConnectionResetError):
                self._connection.send(LAST_CHUNK)
        else:
            self._connection.close()


class Connection(asyncio.Protocol):
    """One client connection: requests queue here and are answered one after another."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = RequestParser()
        self._queue: deque[Request | HttpError] = deque()
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self._broken = False
        self._on_lost: list[Callable[[], None]] = []
        self.local = ""
        """This end's `host:port`, the host a request without a Host header was sent to."""

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not derive from asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)
        sockname = transport.get_extra_info("sockname")
        if isinstance(sockname, tuple):
            self.local = f"{sockname[0]}:{sockname[1]}"
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        parser = self._parser
        parser.feed(data)
        try:
            while (request := parser.next()) is not None:
                self._queue.append(request)
        except HttpError as err:
            # Where the next request would start is unknown: answer this one and close.
            self._broken = True
            self._queue.append(err)
        if self._task is None:
            if self._queue:
                self._task = asyncio.get_running_loop().create_task(self._serve())
            elif parser.continue_due:
                self._send_continue()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._server.connections.discard(self)
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionResetError("the client closed the connection"))
        callbacks, self._on_lost = self._on_lost, []
        for callback in callbacks:
            callback()

    def pause_writing(self) -> None:
        # A client that does not read its answers sends no more requests to be answered.
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None:
            self._transport.resume_reading()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # -- for handlers ----------------------------------------------------------------------

    @property
    def serving(self) -> asyncio.Task[None] | None:
        """The task answering this connection's requests, None while it waits for one."""
        return self._task

    @property
    def paused(self) -> bool:
        """Whether the client's buffer is full: what is written now waits in ours."""
        return self._paused

    def forget(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._on_lost.remove(callback)

    def stream(
        self,
        request: Request,
        status: int,
        content_type: str,
        headers: Sequence[tuple[str, str]],
        on_lost: Callable[[], None] | None = None,
    ) -> Stream:
        """Start a response whose body follows in pieces (`Stream.write`, `Stream.end`).

        `on_lost` is called if the client goes before the stream ends (at once if it has
        gone): a stream waiting for something to send learns of it without failing a write.
        """
        chunked = request.version == "HTTP/1.1"
        if not chunked:
            request.keep_alive = False
        if on_lost is not None:
            if self._transport is None:
                on_lost()
            else:
                self._on_lost.append(on_lost)
        with contextlib.suppress(ConnectionResetError):
            self.send(encode_stream_head(status, content_type, headers, chunked))
        return Stream(self, chunked, on_lost)

    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        transport.write(data)

    async def drained(self) -> None:
        if not self._paused:
            return
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- serving ---------------------------------------------------------------------------

    def _send_continue(self) -> None:
        self._parser.continue_due = False
        with contextlib.suppress(ConnectionResetError):
            self.send(CONTINUE)

    async def _serve(self) -> None:
        try:
            while self._queue and self._transport is not None:
                item = self._queue.popleft()
                if isinstance(item, HttpError):
                    body = self._server.error_body(item.status, item.message)
                    with contextlib.suppress(ConnectionResetError):
                        self.send(encode_response(item.status, JSON, body, keep_alive=False))
                    self.close()
                    return
                if not await self._answer(item):
                    self.close()
                    return
            if self._parser.continue_due:
                self._send_continue()
        finally:
            self._task = None

    async def _answer(self, request: Request) -> bool:
        """Answer one request; False when the connection must close after it."""
        request.local = self.local
        try:
            response = await self._server.handler(request, self)
        except ConnectionResetError:
            return False  # the client went while its answer was being made
        except asyncio.CancelledError:
            raise
        except Exception:
            # The handler answers its own failures; this is a bug in it, not the request's.
            log.exception("kubesim.unanswered", method=request.method, path=request.path)
            response = Response(self._server.error_body(500, "internal error"), 500)
            request.keep_alive = False
        if response is not None:
            data = encode_response(
                response.status,
                response.content_type,
                response.body,
                response.headers,
                request.keep_alive,
                request.method == "HEAD",
            )
            with contextlib.suppress(ConnectionResetError):
                self.send(data)
                await self.drained()
        return request.keep_alive


class HttpServer:
    """Listens on a host and port and serves every connection with `handler`."""

    def __init__(self, handler: Handler, error_body: ErrorBody) -> None:
        self.handler = handler
        self.error_body = error_body
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen; returns the port (the one chosen when `port` is 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, ssl=ssl_context, reuse_address=True
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening, let answers in progress finish for up to `grace` seconds (streams
        must have been told to end), then close every connection."""
        if self._server is None:
            return
        self._server.close()
        self._server = None
        busy = [c.serving for c in self.connections if c.serving is not None]
        for connection in list(self.connections):
            if connection.serving is None:
                connection.close()
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                    await task
        for connection in list(self.connections):
            connection.close()
