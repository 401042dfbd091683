"""Kube against a real kubesim: the verbs, how failures are sorted, credentials, threads."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

import msgspec
import pytest
from kubernetes import client

from fixtures.kubesim_server import api_client, kubesim_hook
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.http1 import Answer, Dechunker
from gati_runtime.kube_api import Kube, KubeError, collection_path
from gati_runtime.kube_config import API_RETRIES
from gati_runtime.kube_transport import KubeTransport, StreamedBody


def config_map(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


class _Data(msgspec.Struct):
    data: dict[str, str]


async def test_each_verb_round_trips_and_failures_say_whether_to_retry(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    kube = Kube(kube_api, workers=2)
    try:
        maps = collection_path("v1", "configmaps", kube_namespace)
        created = await kube.create(maps, config_map(kube_namespace, "a", k="ü"))
        assert created["data"] == {"k": "ü"}  # UTF-8 both ways
        applied = await kube.apply(f"{maps}/b", config_map(kube_namespace, "b", k="v"))
        assert applied["metadata"]["managedFields"][0]["manager"]
        assert [item["metadata"]["name"] for item in await kube.list(maps, "")] == ["a", "b"]
        live = await kube.get(f"{maps}/a")
        assert live is not None
        await kube.replace(f"{maps}/a", {**live, "data": {"k": "new"}})
        with pytest.raises(KubeError) as stale:
            await kube.replace(f"{maps}/a", {**live, "data": {"k": "old"}})
        assert (stale.value.code, stale.value.transient) == (409, True)
        with pytest.raises(KubeError) as invalid:
            await kube.create(maps, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
        assert invalid.value.code in (400, 422)
        assert not invalid.value.transient
        assert invalid.value.message  # the server's Status message, not the raw body
        # A write made for its effect alone: the answer is not decoded, the write happened.
        await kube.create(maps, config_map(kube_namespace, "c"), answer=False)
        assert (
            await kube.apply(f"{maps}/c", config_map(kube_namespace, "c", k="v"), answer=False)
            is None
        )
        written = await kube.get(f"{maps}/c")
        assert written is not None
        assert written["data"] == {"k": "v"}
        # A caller after a few fields of the applied object reads only those.
        partial = msgspec.json.Decoder(_Data)
        applied_data = await kube.apply(
            f"{maps}/c", config_map(kube_namespace, "c", k="w"), answer=partial
        )
        assert applied_data == _Data(data={"k": "w"})
        await kube.delete(f"{maps}/a")
        assert await kube.get(f"{maps}/a") is None
        await kube.delete(f"{maps}/a")  # already gone: not an error
    finally:
        kube.close()


async def test_replace_version_answers_the_new_resource_version(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    """A writer that keeps what it wrote needs only the version its write made."""
    kube = Kube(kube_api, workers=1)
    try:
        maps = collection_path("v1", "configmaps", kube_namespace)
        live = await kube.create(maps, config_map(kube_namespace, "a", k="1"))
        version = await kube.replace_version(f"{maps}/a", {**live, "data": {"k": "2"}})
        read = await kube.get(f"{maps}/a")
        assert read is not None
        assert read["metadata"]["resourceVersion"] == version != live["metadata"]["resourceVersion"]
        assert read["data"] == {"k": "2"}
        with pytest.raises(KubeError) as stale:  # the version is still a precondition
            await kube.replace_version(f"{maps}/a", {**live, "data": {"k": "3"}})
        assert stale.value.code == 409
    finally:
        kube.close()


async def test_the_clients_bearer_token_goes_with_every_call() -> None:
    with ThreadedKubeSim(token="s3cret") as sim:
        for token, expected in (("s3cret", None), ("wrong", 401)):
            with api_client(sim.url, token, sim.sim.ca_file) as api:
                kube = Kube(api)
                try:
                    await kube.list("/api/v1/namespaces", "")
                    code = None
                except KubeError as error:
                    code = error.code
                finally:
                    kube.close()
            assert code == expected


async def test_no_answer_is_a_transient_error_with_code_zero() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = False
    with client.ApiClient(configuration) as api:
        kube = Kube(api)
        try:
            with pytest.raises(KubeError) as refused:
                await kube.get("/api/v1/namespaces/default")
        finally:
            kube.close()
    assert (refused.value.code, refused.value.transient) == (0, True)


def connections_to(port: int) -> int:
    """Established TCP connections whose far end is `port`, as the kernel lists them."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


async def test_overlapping_calls_share_at_most_workers_connections(
    kubesim_fresh: ThreadedKubeSim,
) -> None:
    port = kubesim_fresh.sim.port
    with api_client(kubesim_fresh.url) as api:
        kube = Kube(api, workers=3)
        try:
            answers = await asyncio.gather(
                *(kube.get("/api/v1/namespaces/default") for _ in range(40))
            )
            assert all(answer is not None for answer in answers)
            assert 1 <= connections_to(port) <= 3
            # A cancelled call gives its connection back: nothing leaks, nothing hangs.
            calls = [asyncio.create_task(kube.get("/api/v1/namespaces/default")) for _ in range(9)]
            await asyncio.sleep(0)
            calls[0].cancel()
            calls[4].cancel()
            done = await asyncio.gather(*calls, return_exceptions=True)
            assert sum(isinstance(answer, dict) for answer in done) >= 7
            assert await kube.get("/api/v1/namespaces/default") is not None
            assert 1 <= connections_to(port) <= 3
        finally:
            kube.close()
    with pytest.raises(RuntimeError, match="closed"):
        await kube.get("/api/v1/namespaces/default")


async def test_close_fails_waiting_calls_and_lets_calls_in_flight_finish(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    kube = Kube(kube_api, workers=1)
    calls = [
        asyncio.create_task(kube.get(f"/api/v1/namespaces/{kube_namespace}")) for _ in range(3)
    ]
    await asyncio.sleep(0)  # the first holds the one connection, the others wait for it
    kube.close()
    first, *waiting = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(first, dict)
    assert [str(error) for error in waiting] == ["the API client is closed"] * 2


def fault(sim: ThreadedKubeSim, verb: str, code: int, times: int) -> None:
    kubesim_hook(
        sim.url, "faults", {"verb": verb, "resource": "configmaps", "code": code, "times": times}
    )


def faults_left(sim: ThreadedKubeSim) -> list[int | None]:
    return cast(list[int | None], sim.call(lambda: [rule.times for rule in sim.sim.faults.rules]))


async def test_transient_answers_are_retried_for_safe_verbs_only(
    kubesim_fresh: ThreadedKubeSim,
) -> None:
    """kube_config's policy: 429/5xx retried three times for a verb safe to repeat, never for
    a POST; the answer that ends the retries is the caller's."""
    with api_client(kubesim_fresh.url) as api:
        api.configuration.retries = API_RETRIES
        kube = Kube(api, workers=2)
        try:
            maps = collection_path("v1", "configmaps", "default")
            fault(kubesim_fresh, "create", 503, 2)
            with pytest.raises(KubeError) as refused:
                await kube.create(maps, config_map("default", "a"))
            assert (refused.value.code, faults_left(kubesim_fresh)) == (503, [1])
            kubesim_hook(kubesim_fresh.url, "faults", method="DELETE")
            await kube.create(maps, config_map("default", "a"))  # no 409: it never landed
            fault(kubesim_fresh, "get", 503, 2)
            fault(kubesim_fresh, "get", 429, 1)
            assert await kube.get(f"{maps}/a") is not None
            assert faults_left(kubesim_fresh) == []
            fault(kubesim_fresh, "patch", 500, 9)
            with pytest.raises(KubeError) as exhausted:
                await kube.apply(f"{maps}/a", config_map("default", "a", k="v"))
            assert (exhausted.value.code, exhausted.value.transient) == (500, True)
            assert faults_left(kubesim_fresh) == [5]  # one try and three retries
        finally:
            kube.close()


async def test_a_connection_the_server_closed_is_reopened_for_idempotent_verbs_only() -> None:
    """The server goes away between two calls (a restart, an idle timeout) and nothing has
    read the close yet: a GET is sent again on a new connection; a POST may have been seen,
    so it fails as transient (code 0) for its caller to decide."""
    maps = collection_path("v1", "configmaps", "default")
    with ThreadedKubeSim() as first:
        port = first.sim.port
        api = api_client(first.url)
        api.configuration.retries = False  # only the reopening may send a request again
        kube = Kube(api, workers=1)
        await kube.create(maps, config_map("default", "a"))
    try:
        # No await between a server's end and the next call: the close is still unread.
        with ThreadedKubeSim(port=port):
            assert await kube.get("/api/v1/namespaces/default") is not None
        with ThreadedKubeSim(port=port) as third:
            with pytest.raises(KubeError) as lost:
                await kube.create(maps, config_map("default", "b"))
            assert (lost.value.code, lost.value.transient) == (0, True)
            assert await kube.get(f"{maps}/b") is None  # it was not sent twice
            assert third.sim.port == port
    finally:
        kube.close()
        api.close()


def tls_client(sim: ThreadedKubeSim, **settings: Any) -> client.ApiClient:
    api = api_client(sim.url, "s3cret")
    api.configuration.retries = False
    for name, value in settings.items():
        setattr(api.configuration, name, value)
    return api


async def answer_code(api: client.ApiClient) -> int | None:
    kube = Kube(api)
    try:
        await kube.list("/api/v1/namespaces", "")
    except KubeError as error:
        return error.code
    finally:
        kube.close()
        api.close()
    return None


async def test_tls_is_set_up_from_the_configuration_as_urllib3_set_it_up() -> None:
    with ThreadedKubeSim(token="s3cret") as sim:
        ca = str(sim.sim.ca_file)
        cert = sim.sim.cert
        assert cert is not None
        # The certificate names localhost and 127.0.0.1, not the name asked for below.
        assert (
            await answer_code(tls_client(sim, ssl_ca_cert=ca, tls_server_name="localhost")) is None
        )
        assert (
            await answer_code(tls_client(sim, ssl_ca_cert=ca, tls_server_name="api.example")) == 0
        )
        assert await answer_code(tls_client(sim, ssl_ca_cert=None)) == 0  # an unknown CA
        assert await answer_code(tls_client(sim, ssl_ca_cert=None, verify_ssl=False)) is None
        assert (
            await answer_code(
                tls_client(
                    sim, ssl_ca_cert=ca, cert_file=str(cert.cert_file), key_file=str(cert.key_file)
                )
            )
            is None
        )
        with pytest.raises(ValueError, match="ssl_ca_cert"):
            Kube(tls_client(sim, ssl_ca_cert="/nonexistent/ca.crt"))
        with pytest.raises(ValueError, match="cert_file"):
            Kube(tls_client(sim, ssl_ca_cert=ca, cert_file=ca, key_file=ca))


async def test_a_host_that_is_no_http_url_is_refused_by_name() -> None:
    configuration = client.Configuration()
    configuration.host = "ftp://api.example"
    with client.ApiClient(configuration) as api, pytest.raises(ValueError, match="host"):
        Kube(api)
    configuration.host = "http://127.0.0.1:1"
    configuration.proxy = "https://proxy.example:3128"
    with client.ApiClient(configuration) as api, pytest.raises(ValueError, match="proxy"):
        Kube(api)


class Proxy:
    """A forwarding HTTP proxy, the least of one: CONNECT tunnels bytes both ways, any other
    request is sent on as the absolute URL it names, its first line and headers recorded."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.streams: list[asyncio.StreamWriter] = []
        self.tunnels: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for stream in self.streams:
            stream.close()
        await asyncio.gather(*self.tunnels, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.streams.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        self.seen.append(head)
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
        authority = target if method == b"CONNECT" else target.split(b"/")[2]
        host, port = authority.rsplit(b":", 1)
        upstream_reader, upstream = await asyncio.open_connection(host.decode(), int(port))
        self.streams.append(upstream)
        if method == b"CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream.write(head)  # an origin server takes the absolute form too
        self.tunnels += [
            asyncio.create_task(pipe(reader, upstream)),
            asyncio.create_task(pipe(upstream_reader, writer)),
        ]


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_calls_go_through_the_proxy_the_configuration_names(token: str | None) -> None:
    """Plain HTTP names the absolute URL to the proxy; HTTPS tunnels through CONNECT, and the
    proxy's own headers go to the proxy alone."""
    proxy = Proxy()
    with ThreadedKubeSim(token=token) as sim:
        async with proxy as proxy_url:
            with api_client(sim.url, token, sim.sim.ca_file) as api:
                api.configuration.proxy = proxy_url
                api.configuration.proxy_headers = {"Proxy-Authorization": "Basic cHJveHk6cHc="}
                kube = Kube(api)
                try:
                    for _ in range(3):
                        assert await kube.get("/api/v1/namespaces/default") is not None
                finally:
                    kube.close()
    authority = sim.url.split("//")[1].encode()
    assert len(proxy.seen) == 1  # one connection, kept open for every call
    first_line = proxy.seen[0].split(b"\r\n", 1)[0]
    if token is None:
        assert first_line == b"GET " + sim.url.encode() + b"/api/v1/namespaces/default HTTP/1.1"
    else:
        assert first_line == b"CONNECT " + authority + b" HTTP/1.1"
    assert b"Proxy-Authorization: Basic cHJveHk6cHc=" in proxy.seen[0]


async def test_a_chunked_answer_from_the_server_is_read_whole_and_the_connection_reused(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    """A watch is the one answer kubesim chunks (a real API server chunks any large body):
    with timeoutSeconds it ends, its framing complete, and the connection serves the next."""
    kube = Kube(kube_api, workers=1)
    transport = KubeTransport(kube_api.configuration, connections=1)
    try:
        maps = collection_path("v1", "configmaps", kube_namespace)
        await kube.create(maps, config_map(kube_namespace, "a", k="v" * 5000))
        answer = await transport.request("GET", f"{maps}?watch=1&timeoutSeconds=1", {}, None)
        events = [msgspec.json.decode(line) for line in answer.body.splitlines()]
        assert (answer.code, answer.reusable) == (200, True)
        assert [(event["type"], event["object"]["data"]["k"]) for event in events] == [
            ("ADDED", "v" * 5000)
        ]
        again = await transport.request("GET", f"{maps}/a", {}, None)
        assert again.code == 200
    finally:
        transport.close()
        kube.close()


async def test_a_stream_is_read_as_it_comes_on_its_own_connection_and_a_refusal_whole(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    kube = Kube(kube_api, workers=1)
    transport = KubeTransport(kube_api.configuration, connections=1)
    try:
        maps = collection_path("v1", "configmaps", kube_namespace)
        opened = await transport.open_stream(f"{maps}?watch=true", {})
        assert isinstance(opened, StreamedBody)
        try:
            assert (opened.head.code, opened.head.chunked) == (200, True)
            await kube.create(maps, config_map(kube_namespace, "a", k="v"))
            dechunker, body = Dechunker(), b""
            async with asyncio.timeout(30):
                while b"\n" not in body:
                    data = await opened.reader.read(1 << 16)
                    assert data, f"the watch ended before its first line: {body!r}"
                    body += dechunker.feed(data)
            assert msgspec.json.decode(body.splitlines()[0])["type"] == "ADDED"
        finally:
            opened.close()
        refused = await transport.open_stream(f"{maps}/a/nothing-here?watch=true", {})
        assert isinstance(refused, Answer)
        assert refused.code == 404
        assert b"NotFound" in refused.body
    finally:
        transport.close()
        kube.close()


async def test_an_attempt_that_outlasts_the_timeout_fails_and_a_callers_cancel_stands(
    kubesim_fresh: ThreadedKubeSim,
) -> None:
    """A read timeout is not retried (the request may be in effect); it is a TimeoutError, an
    OSError like every transport failure. A cancel from the caller is not turned into one."""
    kubesim_hook(kubesim_fresh.url, "faults", {"verb": "get", "latency": 2.0, "times": 1})
    with api_client(kubesim_fresh.url) as api:
        api.configuration.retries = API_RETRIES
        transport = KubeTransport(api.configuration, connections=2, timeout=0.2)
        try:
            with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
                await transport.request("GET", "/api/v1/namespaces/default", {}, None)
            call = asyncio.create_task(
                transport.request("GET", "/api/v1/namespaces/default", {}, None)
            )
            await asyncio.sleep(0)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert (await transport.request("GET", "/version", {}, None)).code == 200
        finally:
            transport.close()
    with pytest.raises(ValueError, match="timeout"):
        KubeTransport(client.Configuration(), connections=1, timeout=0)
