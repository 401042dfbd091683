"""HTTP/1.1 framing without sockets: requests read from any split of their bytes, bad framing
refused with the status that names it, responses encoded as one buffer."""

from __future__ import annotations

import pytest

from gati_kubesim.httpwire import (
    HttpError,
    Request,
    RequestParser,
    encode_chunk,
    encode_response,
    encode_stream_head,
    parse_query,
)

GET = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: k\r\n\r\n"
POST = (
    b"POST /api/v1/namespaces/default/configmaps?fieldManager=me HTTP/1.1\r\n"
    b"Host: k\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    b'{"a": "bc"}'
)
CHUNKED = (
    b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\n"
)


def read_all(*pieces: bytes, max_body: int = 1024) -> list[Request]:
    parser = RequestParser(max_body)
    out: list[Request] = []
    for piece in pieces:
        parser.feed(piece)
        while (request := parser.next()) is not None:
            out.append(request)
    return out


def refusal(data: bytes, max_body: int = 1024) -> HttpError:
    with pytest.raises(HttpError) as caught:
        read_all(data, max_body=max_body)
    return caught.value


def test_a_request_is_read_with_its_headers_query_and_body() -> None:
    (request,) = read_all(POST)
    assert request.method == "POST"
    assert request.path == "/api/v1/namespaces/default/configmaps"
    assert request.target.endswith("?fieldManager=me")
    assert request.query == {"fieldManager": "me"}
    assert request.header("content-type") == "application/json"
    assert request.body == b'{"a": "bc"}'
    assert request.keep_alive


@pytest.mark.parametrize("data", [GET + POST + CHUNKED + GET])
def test_pipelined_requests_come_out_in_order_from_any_split(data: bytes) -> None:
    whole = [(r.method, r.body) for r in read_all(data)]
    assert whole == [("GET", b""), ("POST", b'{"a": "bc"}'), ("PUT", b"Wikipedia"), ("GET", b"")]
    bytewise = [(r.method, r.body) for r in read_all(*(data[i : i + 1] for i in range(len(data))))]
    assert bytewise == whole


def test_a_chunked_body_is_joined_and_its_trailers_skipped() -> None:
    (request,) = read_all(CHUNKED)
    assert request.body == b"Wikipedia"


def test_nothing_comes_out_until_the_body_has_arrived() -> None:
    parser = RequestParser()
    parser.feed(POST[:-3])
    assert parser.next() is None
    parser.feed(POST[-3:])
    request = parser.next()
    assert request is not None
    assert request.body == b'{"a": "bc"}'


def test_expect_continue_is_due_until_the_body_arrives() -> None:
    parser = RequestParser()
    head, _, body = POST.partition(b"\r\n\r\n")
    parser.feed(head + b"\r\nExpect: 100-continue\r\n\r\n")
    assert parser.next() is None
    assert parser.continue_due
    parser.feed(body)
    assert parser.next() is not None
    assert not parser.continue_due


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("http://kube:6443/api/v1?watch=1", "/api/v1", "watch=1"),
        ("HTTPS://kube/apis", "/apis", ""),
        ("http://kube", "/", ""),
        ("http://kube?a=b", "/", "a=b"),
    ],
)
def test_an_absolute_target_from_a_proxy_serves_its_path(
    target: str, path: str, query: str
) -> None:
    (request,) = read_all(f"GET {target} HTTP/1.1\r\n\r\n".encode())
    assert (request.path, request.query_string) == (path, query)


def test_empty_lines_before_a_request_are_ignored() -> None:
    assert [r.method for r in read_all(b"\r\n\r\n" + GET)] == ["GET"]


def test_repeated_headers_are_joined_and_names_are_case_insensitive() -> None:
    (request,) = read_all(b"GET / HTTP/1.1\r\nAccept: a\r\nACCEPT: b\r\nX-Y:  v \r\n\r\n")
    assert request.header("accept") == "a, b"
    assert request.header("x-y") == "v"
    assert request.header("missing", "d") == "d"


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_and_connection_header(
    data: bytes, keep_alive: bool
) -> None:
    (request,) = read_all(data)
    assert request.keep_alive is keep_alive


def test_the_path_is_percent_decoded_and_the_query_parsed_with_every_value() -> None:
    (request,) = read_all(
        b"GET /api/v1/namespaces/a%2Db?labelSelector=app%3Dx%2Cb+c&dryRun=All&dryRun=x&e="
        b" HTTP/1.1\r\n\r\n"
    )
    assert request.path == "/api/v1/namespaces/a-b"
    assert request.query["labelSelector"] == "app=x,b c"
    assert request.query["dryRun"] == "All"
    assert request.query.getall("dryRun") == ["All", "x"]
    assert request.query.getall("nope") == []
    assert request.query["e"] == ""
    assert parse_query("a=1") is parse_query("a=1")


@pytest.mark.parametrize(
    ("data", "status", "needle"),
    [
        (b"GARBAGE\r\n\r\n", 400, "request line"),
        (b"GET /\r\n\r\n", 400, "request line"),
        (b"G(T / HTTP/1.1\r\n\r\n", 400, "request line"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.1"),
        (b"GET / SPDY/3\r\n\r\n", 400, "request line"),
        (b"GET h/x HTTP/1.1\r\n\r\n", 400, "must be a path"),
        (b"GET ftp://h/x HTTP/1.1\r\n\r\n", 400, "http URL"),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "header line"),
        (b"GET / HTTP/1.1\r\nName : x\r\n\r\n", 400, "header line"),
        (b"GET / HTTP/1.1\r\nA: x\r\n folded\r\n\r\n", 400, "header line"),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400, "header line"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", 400, "Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x1\r\n\r\n", 400, "Content-Length"),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "both",
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "chunked"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk size"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400, "CRLF"),
        (b"POST / HTTP/1.1\r\nContent-Length: 2048\r\n\r\n", 413, "exceeds"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n801\r\n", 413, "exceeds"),
        (b"GET / HTTP/1.1\r\nX: " + b"x" * (65 * 1024), 431, "too large"),
    ],
)
def test_bad_framing_is_refused_with_a_status_naming_it(
    data: bytes, status: int, needle: str
) -> None:
    err = refusal(data)
    assert err.status == status
    assert needle in err.message


def test_a_same_size_repeated_content_length_is_one_size() -> None:
    (request,) = read_all(b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nok")
    assert request.body == b"ok"


def test_a_response_is_one_buffer_with_its_length() -> None:
    data = encode_response(201, "application/json", b"{}", [("Warning", '299 - "w"')])
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 201 Created"
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: 2" in lines
    assert b'Warning: 299 - "w"' in lines
    assert any(line.startswith(b"Date: ") for line in lines)
    assert b"Connection: close" not in lines
    assert body == b"{}"


def test_a_head_answer_states_the_length_without_the_body_and_close_is_said() -> None:
    data = encode_response(200, "text/plain", b"ok", keep_alive=False, head=True)
    assert data.endswith(b"Content-Length: 2\r\n\r\n")
    assert b"Connection: close\r\n" in data


def test_streams_are_chunked_or_close_delimited() -> None:
    chunked = encode_stream_head(200, "application/json", [("Cache-Control", "no-cache")], True)
    assert chunked.endswith(b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
    plain = encode_stream_head(200, "application/json", [], False)
    assert plain.endswith(b"Connection: close\r\n\r\n")
    assert encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
