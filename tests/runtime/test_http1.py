"""HTTP/1.1 framing: answers read from a stream fed the bytes a server would send."""

from __future__ import annotations

import asyncio

import pytest

from gati_runtime.http1 import (
    Answer,
    ClosedBeforeAnswer,
    Dechunker,
    ProtocolError,
    read_answer,
    request_head,
)


async def answer_to(data: bytes, method: str = "GET", *, eof: bool = True) -> Answer:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return await read_answer(reader, method)


async def test_a_body_sized_by_content_length_leaves_the_next_answer_on_the_stream() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nabc"
    )
    first = await read_answer(reader, "GET")
    second = await read_answer(reader, "GET")
    assert first == Answer(200, b"{}", None, True)
    assert second == Answer(404, b"abc", None, True)


async def test_a_chunked_body_is_joined_with_extensions_and_trailers_skipped() -> None:
    answer = await answer_to(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1A\r\n" + b"x" * 26 + b"\r\n0\r\nTrailer: t\r\n\r\n",
        eof=False,
    )
    assert answer == Answer(200, b"hello" + b"x" * 26, None, True)


async def test_an_answer_without_length_runs_to_the_end_and_closes_the_connection() -> None:
    answer = await answer_to(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    assert answer == Answer(200, b"all of it", None, False)


@pytest.mark.parametrize(
    ("head", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
        # Both framings at once cannot be trusted for whatever follows on the connection.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            False,
        ),
    ],
)
async def test_whether_the_connection_carries_the_next_request(head: bytes, reusable: bool) -> None:
    assert (await answer_to(head, eof=False)).reusable is reusable


async def test_no_body_is_read_for_head_204_or_304_and_interim_answers_are_skipped() -> None:
    assert (await answer_to(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", "HEAD")).body == b""
    assert (await answer_to(b"HTTP/1.1 204 No Content\r\n\r\n", eof=False)).code == 204
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx"
    assert (await answer_to(interim)).code == 201
    tunnel = await answer_to(b"HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", eof=False)
    assert tunnel.body == b""


async def test_retry_after_is_handed_on_as_sent() -> None:
    answer = await answer_to(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After:  2 \r\nContent-Length: 0\r\n\r\n"
    )
    assert (answer.code, answer.retry_after) == (429, "2")


async def test_a_connection_closed_before_any_answer_is_told_from_a_broken_answer() -> None:
    with pytest.raises(ClosedBeforeAnswer):
        await answer_to(b"")
    with pytest.raises(ProtocolError, match="head"):
        await answer_to(b"HTTP/1.1 200 OK\r\nContent-")
    with pytest.raises(ProtocolError, match="body"):
        await answer_to(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "negative"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunked"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "chunked"),
    ],
)
async def test_a_malformed_answer_is_a_protocol_error_naming_what_broke(
    data: bytes, match: str
) -> None:
    with pytest.raises(ProtocolError, match=match):
        await answer_to(data)


def test_the_request_head_carries_host_headers_and_length() -> None:
    head = request_head("PUT", "/api/v1/x?a=b", "api:6443", {"Accept": "application/json"}, 2)
    assert head == (
        b"PUT /api/v1/x?a=b HTTP/1.1\r\nHost: api:6443\r\nAccept: application/json\r\n"
        b"Content-Length: 2\r\n\r\n"
    )
    assert b"Content-Length" not in request_head("GET", "/", "api", {}, None)


def test_a_header_that_would_break_the_head_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="Authorization"):
        request_head("GET", "/", "api", {"Authorization": "Bearer x\r\nX-Evil: 1"}, None)
    with pytest.raises(ValueError, match="ISO-8859-1"):
        request_head("GET", "/", "api", {"User-Agent": "\u2603"}, None)


_CHUNKED = b"5;name=value\r\nhello\r\n1A\r\n" + b"x" * 26 + b"\r\n0\r\nTrailer: t\r\n\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, len(_CHUNKED)])
def test_a_chunked_body_fed_in_any_pieces_gives_the_same_bytes_and_ends_once(step: int) -> None:
    dechunker = Dechunker()
    pieces = [_CHUNKED[i : i + step] for i in range(0, len(_CHUNKED), step)]
    body = b"".join(dechunker.feed(piece) for piece in pieces)
    assert body == b"hello" + b"x" * 26
    assert dechunker.done


@pytest.mark.parametrize(
    ("data", "match"),
    [(b"zz\r\n", "chunk size"), (b"2\r\nabc\r\n", "does not end"), (b"1" * 5000, "longer")],
)
def test_a_broken_chunked_stream_is_a_protocol_error_naming_what_broke(
    data: bytes, match: str
) -> None:
    with pytest.raises(ProtocolError, match=match):
        Dechunker().feed(data)
