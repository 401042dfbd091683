"""HTTP/1.1 on the wire: requests parsed from the bytes a connection received, responses
encoded to the bytes it sends (RFC 9112).

Pure byte handling, apart from the connection (`httpserver`) so every framing rule is tested
without sockets. Parsing is strict where leniency would let two parties read one message
differently (a body both chunked and sized, folded or spaced header names, a size that is not
a plain number): such a request gets a 4xx and its connection is closed, since where the
next request starts is then unknown.
"""

from __future__ import annotations

import functools
import http
import time
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

MAX_HEAD: Final = 64 * 1024
"""Request line and headers together; more gets 431."""
MAX_BODY: Final = 32 * 1024**2
"""What a request body may hold (the real server's limit for an object is far below)."""
_TOKEN: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")


class HttpError(Exception):
    """A request that cannot be read; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Query(dict[str, str]):
    """A query string's parameters, the first value of each, with every value at hand for
    the few parameters that repeat (`dryRun`)."""

    __slots__ = ("_every",)

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self._every: dict[str, list[str]] = {}
        for name, value in pairs:
            self.setdefault(name, value)
            self._every.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        return list(self._every.get(name, ()))


@functools.lru_cache(maxsize=1024)
def parse_query(raw: str) -> Query:
    """Clients send the same few query strings (their field manager, their selectors) over
    and over, so each is parsed once; a `Query` is never changed after this."""
    return Query(parse_qsl(raw, keep_blank_values=True))


class Request:
    """One request, read whole: kubesim answers every request from its complete body."""

    __slots__ = (
        "body",
        "decoded",
        "headers",
        "keep_alive",
        "local",
        "method",
        "path",
        "query_string",
        "target",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> None:
        self.method = method
        self.target = target
        path, _, self.query_string = target.partition("?")
        self.path = unquote(path) if "%" in path else path
        self.headers = headers
        self.body = body
        self.decoded: Any = None
        """The body as a layer above decoded it, when it is not JSON (kubesim: protobuf)."""
        self.local = ""
        """The `host:port` the request came in on (the host it was sent to, lacking `Host`)."""
        self.version = version
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection

    @property
    def query(self) -> Query:
        return parse_query(self.query_string)

    def header(self, name: str, default: str = "") -> str:
        """A header by its lower-case name (repeats joined by commas, as RFC 9110 allows)."""
        return self.headers.get(name, default)


class RequestParser:
    """Turns a connection's bytes into requests, in order (so pipelined requests work)."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self._buffer = bytearray()
        self._max_body = max_body
        self._pending: tuple[str, str, str, dict[str, str], int] | None = None
        """The head already read of a request whose body has not all arrived."""
        self.continue_due = False
        """A client sent `Expect: 100-continue` and waits for leave to send its body."""

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> Request | None:
        """The next complete request, None until one has arrived; `HttpError` if it cannot
        be read (the caller answers and closes: nothing after it can be trusted)."""
        if self._pending is None:
            # RFC 9112 2.2: empty lines before a request line are ignored.
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise HttpError(431, "request headers too large")
                return None
            if end > MAX_HEAD:
                raise HttpError(431, "request headers too large")
            head = bytes(self._buffer[:end]).decode("latin-1")
            del self._buffer[: end + 4]
            self._pending = self._head(head)
            headers = self._pending[3]
            self.continue_due = headers.get("expect", "").lower() == "100-continue"
        method, target, version, headers, length = self._pending
        if length >= 0:
            if len(self._buffer) < length:
                return None
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
        else:
            chunked = self._chunked()
            if chunked is None:
                return None
            body = chunked
        self._pending = None
        self.continue_due = False
        return Request(method, target, headers, body, version)

    def _head(self, head: str) -> tuple[str, str, str, dict[str, str], int]:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[0] or not _TOKEN.issuperset(parts[0]):
            raise HttpError(400, f"malformed request line {lines[0][:100]!r}")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            if version.startswith("HTTP/"):
                raise HttpError(505, f"HTTP version {version[:20]!r} not supported; use HTTP/1.1")
            raise HttpError(400, f"malformed request line {lines[0][:100]!r}")
        if not target.startswith("/"):
            target = _origin_form(target)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or not _TOKEN.issuperset(name):
                raise HttpError(400, f"malformed header line {line[:100]!r}")
            name = name.lower()
            value = value.strip(" \t")
            if name in headers:
                headers[name] = f"{headers[name]}, {value}"
            else:
                headers[name] = value
        return method, target, version, headers, self._length(headers)

    def _length(self, headers: dict[str, str]) -> int:
        """The body's size, or -1 for a chunked body."""
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if "content-length" in headers:
                raise HttpError(
                    400, "a request may not carry both Transfer-Encoding and Content-Length"
                )
            if coding.lower() != "chunked":
                raise HttpError(
                    501,
                    f"Transfer-Encoding {coding[:50]!r} not supported; "
                    "send chunked or a Content-Length",
                )
            return -1
        raw = headers.get("content-length")
        if raw is None:
            return 0
        sizes = {size.strip() for size in raw.split(",")}
        size = sizes.pop()
        if sizes or not size.isdigit() or not size.isascii():
            raise HttpError(400, f"Content-Length {raw[:50]!r} is not one plain size")
        length = int(size)
        if length > self._max_body:
            raise HttpError(413, f"request body of {length} bytes exceeds {self._max_body}")
        return length

    def _chunked(self) -> bytes | None:
        """A whole chunked body from the buffer (consumed), or None until it has arrived."""
        buf = self._buffer
        pos = 0
        body = bytearray()
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                if len(buf) - pos > 1024:
                    raise HttpError(400, "chunk size line too long")
                return None
            size_field = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            if not size_field or not _HEX.issuperset(size_field):
                raise HttpError(400, f"malformed chunk size {size_field[:20]!r}")
            size = int(size_field, 16)
            pos = line_end + 2
            if size == 0:
                break
            if len(body) + size > self._max_body:
                raise HttpError(413, f"request body exceeds {self._max_body} bytes")
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size : pos + size + 2] != b"\r\n":
                raise HttpError(400, "chunk data not followed by CRLF")
            body += buf[pos : pos + size]
            pos += size + 2
        # Trailer fields, ignored, up to the empty line.
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            empty = line_end == pos
            pos = line_end + 2
            if empty:
                break
        del buf[:pos]
        return bytes(body)


def _origin_form(target: str) -> str:
    """The path and query of an absolute-form target, which clients send through a proxy
    and a server must accept (RFC 9112 3.2.2)."""
    scheme, sep, rest = target.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise HttpError(400, f"request target {target[:100]!r} must be a path or an http URL")
    slash = rest.find("/")
    query = rest.find("?")
    if slash < 0 or 0 <= query < slash:
        return "/" + rest[query:] if query >= 0 else "/"
    return rest[slash:]


_REASONS: Final = {s.value: s.phrase for s in http.HTTPStatus}
_date: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """`Date`, as RFC 9110 asks of a server with a clock; formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, f"Date: {formatdate(now, usegmt=True)}\r\n".encode())
    return _date[1]


@functools.lru_cache(maxsize=64)
def _status_line(status: int, content_type: str) -> bytes:
    reason = _REASONS.get(status, "Unknown")
    return f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n".encode("latin-1")


def encode_response(
    status: int,
    content_type: str,
    body: bytes,
    headers: Sequence[tuple[str, str]] = (),
    keep_alive: bool = True,
    head: bool = False,
) -> bytes:
    """A whole response in one buffer, so it leaves in one write. `head`: the answer to a
    HEAD request, which states the body's length but carries none."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")
    return b"".join(
        (
            _status_line(status, content_type),
            _date_header(),
            extra,
            b"" if keep_alive else b"Connection: close\r\n",
            b"Content-Length: %d\r\n\r\n" % len(body),
            b"" if head else body,
        )
    )


def encode_stream_head(
    status: int, content_type: str, headers: Sequence[tuple[str, str]], chunked: bool
) -> bytes:
    """The head of a response whose body follows in pieces: chunked, or (to an HTTP/1.0
    client, which cannot read chunks) delimited by closing the connection."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")
    framing = b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Connection: close\r\n\r\n"
    return _status_line(status, content_type) + _date_header() + extra + framing


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
