"""HTTP/1.1 to the API server on the event loop: keep-alive connections, TLS, a proxy and the
retry policy, all as the official client's `Configuration` names them.

The official client is synchronous; running it in worker threads cost each call a hand-off
and the GIL fights that came with it, and aiohttp's general client spends most of a call on
what an API call never uses. Measured against kubesim (bench/kube_api.py, process CPU per call
at 8 in flight): urllib3 in threads ~500-580 us, aiohttp ~270-440 us, `Kube` over this module
~110-160 us (a bare exchange on asyncio streams ~70-90 us). So a call here is one write and a
few stream reads on a connection kept open for the next one.

A connection the server closed while it sat idle is found before it is used; one that closed
just as a request went out (no byte of an answer came) is reopened and the request sent again
only for an idempotent verb (RFC 9110 §9.2.2): a POST or PATCH may have been seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

from kubernetes import client
from kubernetes.client import rest
from kubernetes.utils.keepalive import tcp_keepalive_socket_options

from gati_runtime.http1 import (
    Answer,
    ClosedBeforeAnswer,
    Head,
    ProtocolError,
    read_answer,
    read_body,
    read_head,
    request_head,
)
from gati_runtime.kube_retry import NOTHING_SPENT, RetryPolicy

REQUEST_TIMEOUT: Final = 30.0
"""Per attempt, connecting included, as urllib3's `Timeout(total=...)` was."""
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_READ_LIMIT: Final = 1 << 20
"""The longest answer head or chunk-size line accepted."""
_TARGET_SAFE: Final = "/:@!$&'()*+,;=?%-._~"


@dataclass(frozen=True, slots=True)
class StreamedBody:
    """A 2xx answer whose body is still on `reader`, framed as `head` says."""

    head: Head
    reader: asyncio.StreamReader
    close: Callable[[], None]
    """Drops the stream's connection at once (never reused: its body has no end to read up
    to). An abort, not a TLS goodbye: a peer that is gone never answers close_notify, and the
    read in progress would wait out the TLS shutdown timeout (30 s) before it saw the end.
    Bound to the connection, which keeps its writer alive: a writer collected closes it."""


class ConnectFailed(ConnectionError):
    """No connection to the API server (or through its proxy) could be made: the request
    never left, so any verb may be sent again."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def open(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # its loop is already closed
            self.writer.close()

    def abort(self) -> None:
        """Drop it at once, without TLS's goodbye (see `StreamedBody.close`)."""
        with contextlib.suppress(RuntimeError):  # its loop is already closed
            self.writer.transport.abort()


def _tls_context(configuration: client.Configuration) -> ssl.SSLContext:
    """Trust and identity as urllib3 built them from the same fields; a file that cannot be
    read is named with the field that points at it."""
    try:
        context = ssl.create_default_context(
            cafile=configuration.ssl_ca_cert, cadata=configuration.ca_cert_data
        )
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Configuration.ssl_ca_cert {configuration.ssl_ca_cert!r} / ca_cert_data: cannot "
            f"load the CA certificates ({error}); point it at a PEM file of the cluster's CA"
        ) from error
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    if configuration.cert_file:
        try:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"Configuration.cert_file {configuration.cert_file!r} / key_file "
                f"{configuration.key_file!r}: cannot load the client certificate ({error})"
            ) from error
    return context


def _target(path: str) -> str:
    """The path as it may stand in a request line (urllib3 percent-encoded the same way)."""
    return path if path.isascii() and " " not in path else quote(path, safe=_TARGET_SAFE)


class KubeTransport:
    """At most `connections` connections to the API server, each reused while it stays open."""

    def __init__(
        self,
        configuration: client.Configuration,
        *,
        connections: int,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        """`timeout`: seconds each attempt may take, connecting included."""
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        self._timeout = timeout
        url = urlsplit(configuration.host)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"Configuration.host must be an http:// or https:// URL, got {configuration.host!r}"
            )
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._authority = url.netloc.rpartition("@")[2]
        # A host may carry a path (an API server behind a proxy that routes by prefix).
        self._prefix = url.path.rstrip("/")
        self._tls = _tls_context(configuration) if url.scheme == "https" else None
        self._server_name = configuration.tls_server_name or (
            configuration.assert_hostname
            if isinstance(configuration.assert_hostname, str)
            else self._host
        )
        self._proxy: tuple[str, int] | None = None
        self._proxy_headers: dict[str, str] = {}
        self._origin = ""  # before the path: the absolute form a plain-HTTP proxy needs
        if configuration.proxy and not rest.should_bypass_proxies(
            configuration.host, configuration.no_proxy or ""
        ):
            proxy = urlsplit(configuration.proxy)
            if proxy.scheme != "http" or not proxy.hostname:
                raise ValueError(
                    f"Configuration.proxy must be an http:// proxy URL, got "
                    f"{configuration.proxy!r}; HTTPS and SOCKS proxies are not supported"
                )
            self._proxy = (proxy.hostname, proxy.port or 80)
            self._proxy_headers = dict(configuration.proxy_headers or {})
            if self._tls is None:
                self._origin = f"http://{self._authority}"
        if configuration.socket_options is not None:
            self._socket_options = list(configuration.socket_options)
        elif getattr(configuration, "keep_alive", False):
            self._socket_options = tcp_keepalive_socket_options()
        else:
            self._socket_options = []
        self._retries = RetryPolicy(configuration.retries)
        self._size = connections
        self._open = 0
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False
        self._expired: set[asyncio.Task[Any]] = set()

    async def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        """The final answer, after the retries the policy allows. A connection that could not
        be made raises `ConnectFailed`, an answer that never came `ConnectionError` or
        `TimeoutError` (all of them `OSError`); bad headers raise `ValueError`."""
        message = self._message(method, path, headers, body)
        spent = NOTHING_SPENT
        while True:
            try:
                answer = await self._attempt(method, message)
            except ConnectFailed:
                decision = self._retries.after_connect_error(spent)
                if decision is None:
                    raise
            except OSError:  # sent, and no answer (or a broken one) came back
                decision = self._retries.after_read_error(method, spent)
                if decision is None:
                    raise
            else:
                if answer.code < 400:
                    return answer
                decision = self._retries.after_answer(
                    method, answer.code, answer.retry_after, spent
                )
                if decision is None:
                    return answer
            pause, spent = decision
            await asyncio.sleep(pause)

    async def open_stream(self, path: str, headers: Mapping[str, str]) -> Answer | StreamedBody:
        """A GET whose body is read as it comes (a watch), on a connection of its own outside
        the pool, which the caller closes. A refusal (any answer but 2xx) comes back whole, its
        connection closed. Never retried: a stream's owner decides when to open it again.
        Connecting and the answer's head take at most the transport's `timeout`; a connection
        that cannot be made raises `ConnectFailed`, a head that never came `TimeoutError` or
        `ConnectionError`."""
        message = self._message("GET", path, headers, None)
        connection: _Connection | None = None
        streaming = False
        try:
            async with asyncio.timeout(self._timeout):
                connection = await self._open_connection()
                connection.writer.write(message)
                await connection.writer.drain()
                head = await read_head(connection.reader, "GET")
                if not 200 <= head.code <= 299:
                    return await read_body(connection.reader, "GET", head)
                streaming = True
                return StreamedBody(head, connection.reader, connection.abort)
        except TimeoutError:
            if connection is None:
                raise ConnectFailed(f"connecting timed out after {self._timeout} s") from None
            raise TimeoutError(f"no answer's head within {self._timeout} s") from None
        finally:
            if connection is not None and not streaming:
                connection.close()

    def _message(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        if self._closed:
            raise RuntimeError("the API client is closed")
        if self._origin and self._proxy_headers:
            headers = {**headers, **self._proxy_headers}
        length = None if body is None and method in ("GET", "HEAD", "DELETE") else len(body or b"")
        head = request_head(
            method, f"{self._origin}{self._prefix}{_target(path)}", self._authority, headers, length
        )
        return head if body is None else head + body

    async def _attempt(self, method: str, message: bytes) -> Answer:
        # A timer of our own instead of asyncio.timeout, which cost ~20 us a call (15 %).
        task = cast("asyncio.Task[Any]", asyncio.current_task())
        expiry = asyncio.get_running_loop().call_later(self._timeout, self._expire, task)
        connecting = True
        try:
            connection, reused = await self._acquire()
            connecting = False
            try:
                try:
                    answer = await self._exchange(connection, method, message)
                except ClosedBeforeAnswer:
                    if not (reused and method in _IDEMPOTENT):
                        raise
                    # The server dropped it as the request went out: once more, on a new
                    # connection in the same slot.
                    connection.close()
                    connecting = True
                    connection = await self._open_connection()
                    connecting = False
                    answer = await self._exchange(connection, method, message)
            except BaseException:
                self._discard(connection)  # its state is unknown: never reuse it
                raise
            self._release(connection, answer.reusable)
            return answer
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            if task.uncancel() > 0:  # cancelled by its caller as well: that cancel stands
                raise
            if connecting:
                raise ConnectFailed(f"connecting timed out after {self._timeout} s") from None
            raise TimeoutError(f"no answer within {self._timeout} s") from None
        finally:
            expiry.cancel()

    def _expire(self, task: asyncio.Task[Any]) -> None:
        self._expired.add(task)
        task.cancel()

    @staticmethod
    async def _exchange(connection: _Connection, method: str, message: bytes) -> Answer:
        connection.writer.write(message)
        try:
            await connection.writer.drain()
        except (ConnectionResetError, BrokenPipeError) as error:
            raise ClosedBeforeAnswer(f"the server reset the connection: {error}") from error
        return await read_answer(connection.reader, method)

    async def _acquire(self) -> tuple[_Connection, bool]:
        """An open idle connection (most recently used first), a new one while fewer than
        `connections` are open, or the next one released."""
        while self._idle:
            connection = self._idle.pop()
            if connection.open:
                return connection, True
            self._discard(connection)
        if self._open < self._size:
            self._open += 1
            return await self._open_in_slot(), False
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                passed = waiter.result()  # handed over just as we were cancelled
                if passed is None:
                    self._open -= 1
                    self._wake()
                else:
                    self._release(passed, True)
            raise
        if handed is not None:
            return handed, True
        return await self._open_in_slot(), False  # a slot was freed for us: open our own

    async def _open_in_slot(self) -> _Connection:
        """A new connection in a slot already counted, given back if none can be made."""
        try:
            return await self._open_connection()
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _open_connection(self) -> _Connection:
        if self._closed:
            raise RuntimeError("the API client is closed")
        try:
            if self._proxy is None:
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._tls,
                    server_hostname=self._server_name if self._tls else None,
                    limit=_READ_LIMIT,
                )
            else:
                reader, writer = await self._through_proxy(*self._proxy)
        except (OSError, ProtocolError) as error:  # refused, unreachable, TLS, proxy refusal
            raise ConnectFailed(f"cannot connect to {self._authority}: {error!r}") from error
        sock = writer.get_extra_info("socket")
        for level, option, value in self._socket_options:
            sock.setsockopt(level, option, value)
        return _Connection(reader, writer)

    async def _through_proxy(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, port, limit=_READ_LIMIT)
        if self._tls is None:  # plain HTTP: each request names its absolute URL
            return reader, writer
        try:
            writer.write(
                request_head("CONNECT", self._authority, self._authority, self._proxy_headers, None)
            )
            answer = await read_answer(reader, "CONNECT")
            if answer.code != 200:
                raise ProtocolError(
                    f"the proxy refused to tunnel to {self._authority}: {answer.code}"
                )
            await writer.start_tls(self._tls, server_hostname=self._server_name)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    def _release(self, connection: _Connection, reusable: bool) -> None:
        if not reusable or self._closed:
            self._discard(connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        """Give a freed slot to the next waiter, which opens a connection of its own."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close idle connections now and busy ones as their calls end; later calls fail."""
        self._closed = True
        while self._idle:
            self._discard(self._idle.pop())
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the API client is closed"))
