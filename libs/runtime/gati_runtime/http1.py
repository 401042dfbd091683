"""HTTP/1.1 framing (RFC 9112) on asyncio streams: one request written, one answer read.

Only what a client of the Kubernetes API needs: a body sized by `Content-Length`, a chunked
answer (the API server chunks large bodies), an answer that runs to the connection's end, and
whether the connection may carry the next request. Everything else in the head is skipped
unparsed, since parsing it was most of what a general client spent on an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

_HEAD_END: Final = b"\r\n\r\n"
_CRLF: Final = b"\r\n"
_NO_BODY: Final = frozenset({204, 304})


class ProtocolError(ConnectionError):
    """The server's answer broke HTTP/1.1 framing; the connection cannot be used again."""


class ClosedBeforeAnswer(ConnectionError):
    """The connection ended before a byte of the answer came: on a reused keep-alive connection
    the server most likely closed it while idle, and never saw the request."""


@dataclass(frozen=True, slots=True)
class Answer:
    code: int
    body: bytes
    retry_after: str | None
    """`Retry-After` as sent (seconds or an HTTP date), for the retry policy to read."""
    reusable: bool
    """The connection may carry the next request (keep-alive, and the body was fully read)."""


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], length: int | None
) -> bytes:
    """The request line and headers; `length` None sends no `Content-Length` (a bodiless GET)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            # A line break in a value would end the header early and smuggle the rest in.
            raise ValueError(f"header {name} has a line break in its value; remove it")
        lines.append(f"{name}: {value}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"request head for {method} {target} is not ISO-8859-1 ({error.reason}); "
            "percent-encode the path and keep header values ASCII"
        ) from error


@dataclass(frozen=True, slots=True)
class Head:
    """An answer's status and framing, read before its body: a streamed body (a watch) is read
    by its caller as it comes, not here."""

    code: int
    length: int | None
    chunked: bool
    keep_alive: bool
    retry_after: str | None


async def read_head(reader: asyncio.StreamReader, method: str) -> Head:
    """The head of the next final answer on `reader` (an interim 1xx is skipped)."""
    while True:
        try:
            head = await reader.readuntil(_HEAD_END)
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                raise ClosedBeforeAnswer("the server closed the connection") from error
            raise ProtocolError("the connection ended inside the answer's head") from error
        except (ConnectionResetError, BrokenPipeError) as error:
            # A request written to a connection the server had closed draws a reset; no byte
            # of an answer to it can have come before the head was complete.
            raise ClosedBeforeAnswer(f"the server reset the connection: {error}") from error
        except asyncio.LimitOverrunError as error:
            raise ProtocolError("the answer's head is larger than the read buffer") from error
        status, *fields = head[: -len(_HEAD_END)].split(_CRLF)
        code, keep_alive = _status(status)
        if code >= 200:
            break
    length: int | None = None
    chunked = False
    retry_after: str | None = None
    for field in fields:
        name, _, raw = field.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(raw)
            except ValueError:
                raise ProtocolError(f"Content-Length is not a number: {raw!r}") from None
            if length < 0:
                raise ProtocolError(f"Content-Length is negative: {length}")
        elif name == b"transfer-encoding":
            codings = [coding.strip() for coding in raw.lower().split(b",")]
            if codings != [b"chunked"]:
                # Only chunked is ever sent to a client that asked for no compression.
                raise ProtocolError(f"unsupported Transfer-Encoding {raw.strip()!r}")
            chunked = True
        elif name == b"connection":
            tokens = {token.strip() for token in raw.lower().split(b",")}
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
        elif name == b"retry-after":
            retry_after = raw.strip().decode("latin-1")
    return Head(code, length, chunked, keep_alive, retry_after)


async def read_answer(reader: asyncio.StreamReader, method: str) -> Answer:
    """The next final answer on `reader` (an interim 1xx is skipped)."""
    return await read_body(reader, method, await read_head(reader, method))


async def read_body(reader: asyncio.StreamReader, method: str, head: Head) -> Answer:
    """The whole body that `head` frames, read after it."""
    code, length, chunked, keep_alive = head.code, head.length, head.chunked, head.keep_alive
    try:
        if method == "HEAD" or code in _NO_BODY or (method == "CONNECT" and code < 300):
            body = b""  # after a CONNECT's 2xx the connection is a tunnel (RFC 9110 §9.3.6)
        elif chunked:
            body = await _chunks(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:  # framed by the connection's end (RFC 9112 §6.3, last rule)
            body = await reader.read()
            keep_alive = False
    except asyncio.IncompleteReadError as error:
        raise ProtocolError("the connection ended inside the answer's body") from error
    except (asyncio.LimitOverrunError, ValueError) as error:
        raise ProtocolError(f"malformed chunked body: {error}") from error
    # A chunked answer that also names a length is a smuggling attempt or a broken proxy:
    # its framing is not to be trusted for the next answer (RFC 9112 §6.3, rule 3).
    return Answer(code, body, head.retry_after, keep_alive and not (chunked and length is not None))


def _status(line: bytes) -> tuple[int, bool]:
    """The code and whether the protocol version keeps the connection open by default."""
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(code), version != b"HTTP/1.0"


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(_CRLF)
        size = int(line.split(b";", 1)[0], 16)  # a chunk extension is ignored, as RFC 9112 says
        if size < 0:
            raise ValueError(f"negative chunk size {size}")
        if size == 0:
            while await reader.readuntil(_CRLF) != _CRLF:  # trailer fields, unused
                pass
            return b"".join(parts)
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != _CRLF:
            raise ValueError("a chunk does not end where its size says")
        parts.append(chunk[:-2])


class Dechunker:
    """Undoes the chunked coding of a body read piece by piece as the bytes arrive, for a body
    that never ends on its own (a watch): its caller takes whatever one read of the socket
    brought, so a burst of chunks is one call, not two awaits per chunk."""

    __slots__ = ("_left", "_pending", "_state", "done")

    def __init__(self) -> None:
        self._pending = b""
        """Framing read up to a line break not yet received (a size line, a chunk's CRLF)."""
        self._left = 0
        """Bytes of the current chunk's data still to come."""
        self._state = _SIZE
        self.done = False
        """The last chunk and the trailer section have been read: the body is over."""

    def feed(self, data: bytes) -> bytes:
        """The body's bytes that `data` carries; raises `ProtocolError` on broken framing."""
        if self._pending:
            data, self._pending = self._pending + data, b""
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end and not self.done:
            if self._left:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                continue
            eol = data.find(_CRLF, pos)
            if eol < 0:
                if end - pos > _READ_LIMIT_LINE:
                    raise ProtocolError("a chunk-size line is longer than any server sends")
                self._pending = data[pos:]
                break
            line, pos = data[pos:eol], eol + 2
            if self._state is _SIZE:
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise ProtocolError(f"malformed chunk size {line[:80]!r}") from None
                if size < 0:
                    raise ProtocolError(f"negative chunk size {size}")
                self._left, self._state = size, _DATA_END if size else _TRAILER
            elif self._state is _DATA_END:
                if line:
                    raise ProtocolError("a chunk does not end where its size says")
                self._state = _SIZE
            elif not line:  # the empty line that ends the trailer section
                self.done = True
        return b"".join(out)


_SIZE: Final = "size"
_DATA_END: Final = "data-end"
_TRAILER: Final = "trailer"
_READ_LIMIT_LINE: Final = 4096
"""The longest chunk-size or trailer line accepted while waiting for its end."""
