"""Listing and watching one target.

Lists (a relist, an object read again after a conflict) go through the official `kubernetes`
client in a worker thread: they are rare. A watch is read on the event loop, over a connection
of its own from `gati_runtime.kube_transport` (the reconciler's transport: TLS, a proxy and
socket options as the client's `Configuration` names them; credentials from the client's auth
hook), and each read of the socket is split into lines, decoded and handed over at once. Read in
a thread, every chunk crossed to the loop through its self-pipe and the GIL went back and forth
with it: 340-420 us of CPU per change at a steady trickle, most of the watcher's cost.

Objects are kept as the server's JSON (the envelope carries the full object), not the client's
models, which would drop fields they do not know, and decoded with msgspec. A watch that brings
nothing for its read timeout is cut: the inactivity timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import msgspec
import structlog
from kubernetes import client

from gati_runtime.http1 import Answer, Dechunker
from gati_runtime.kube_api import client_headers, collection_path
from gati_runtime.kube_transport import KubeTransport, StreamedBody
from gati_watcher.handoff import Handoff, HandoffClosedError
from gati_watcher.policy import WatchEnd
from gati_watcher.targets import WatchTarget

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0
LIST_TIMEOUT = 60.0
GONE = 410
_ACCEPT: Final = {"Accept": "application/json"}
_READ_SIZE: Final = 1 << 20
"""At most this much of what the socket brought is taken per read (a burst, in one go)."""


class _ListMeta(msgspec.Struct, rename="camel"):
    resource_version: str = ""
    continue_: str | None = msgspec.field(default=None, name="continue")


class _ListBody(msgspec.Struct):
    items: list[dict[str, Any]] | None = None
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)


class _WatchLine(msgspec.Struct):
    type: str
    object: dict[str, Any]


_LIST_DECODER = msgspec.json.Decoder(_ListBody)
_LINE_DECODER = msgspec.json.Decoder(_WatchLine)


@dataclass(frozen=True)
class Listing:
    objects: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchItem:
    type: str
    """ADDED, MODIFIED, DELETED or BOOKMARK."""
    obj: dict[str, Any]
    received: float
    """`time.perf_counter()` when read off the socket, for the change-to-ack lag."""

    @property
    def resource_version(self) -> str | None:
        rv = (self.obj.get("metadata") or {}).get("resourceVersion")
        return rv if isinstance(rv, str) and rv else None


@dataclass(frozen=True)
class WatchStopped:
    end: WatchEnd
    detail: str


WatchMessage = WatchItem | WatchStopped


class _ListCall(Protocol):
    def __call__(self, **kwargs: Any) -> Any: ...


class KubeReader:
    def __init__(
        self,
        api: client.ApiClient,
        target: WatchTarget,
        *,
        transport: KubeTransport | None = None,
        page_size: int = 500,
    ):
        """`transport`: for watches, which each open a connection of their own; readers that
        watch together share one (`watch_transport`), one that only lists needs none."""
        self.target = target
        self._api = api
        self._transport = transport
        self._page_size = page_size
        self._call = _list_call(api, target)
        self._path = collection_path(target.kind.api_version, target.kind.plural, target.namespace)

    def list_objects(self) -> Listing:
        """Every object of the target, paged; the items get the kind and apiVersion that typed
        lists leave out, so each is a complete object on its own."""
        objects: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            response = self._call(
                label_selector=self.target.label_selector,
                limit=self._page_size,
                _continue=token,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, LIST_TIMEOUT),
            )
            body = _LIST_DECODER.decode(response.data)
            for item in body.items or ():
                item.setdefault("kind", self.target.kind.kind)
                item.setdefault("apiVersion", self.target.kind.api_version)
                objects.append(item)
            token = body.metadata.continue_ or None
            if token is None:
                return Listing(objects, body.metadata.resource_version)

    def get_object(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as the server has it now, or None when it does not exist (or no longer
        matches the target's selector). A list narrowed by field selector, not a get: the
        watcher's role grants list and watch only."""
        response = self._call(
            label_selector=self.target.label_selector,
            field_selector=f"metadata.namespace={namespace},metadata.name={name}",
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, LIST_TIMEOUT),
        )
        for item in _LIST_DECODER.decode(response.data).items or ():
            item.setdefault("kind", self.target.kind.kind)
            item.setdefault("apiVersion", self.target.kind.api_version)
            return item
        return None

    def start_watch(
        self, resource_version: str, read_timeout: float, handoff: Handoff[WatchMessage]
    ) -> Callable[[], None]:
        """Read the watch into `handoff` in a task of its own (which ends with one
        `WatchStopped`); returns a function that ends the task and cuts the connection."""

        async def run() -> None:
            try:
                end = await self._watch(resource_version, read_timeout, handoff)
            except Exception as error:  # the auth hook (an exec plugin), a bug: never a hang
                log.warning("watch_crashed", target=str(self.target), error=repr(error))
                end = WatchStopped(WatchEnd.FAILED, f"watch broke: {error!r}")
            with contextlib.suppress(HandoffClosedError):
                await handoff.put_many((end,))

        task = asyncio.create_task(run(), name=f"watch {self.target}")

        def stop() -> None:
            handoff.close()
            task.cancel()

        return stop

    async def _watch(
        self, resource_version: str, read_timeout: float, handoff: Handoff[WatchMessage]
    ) -> WatchStopped:
        query = {"watch": "true", "allowWatchBookmarks": "true"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if self.target.label_selector is not None:
            query["labelSelector"] = self.target.label_selector
        path = f"{self._path}?{urlencode(query)}"
        try:
            if self._transport is None:
                self._transport = watch_transport(self._api)
            headers = client_headers(self._api, "GET", path, _ACCEPT)
            opened = await self._transport.open_stream(path, headers)
        except (OSError, ValueError) as error:  # refused, TLS, timed out, a bad header
            return WatchStopped(WatchEnd.FAILED, f"watch could not connect: {error!r}")
        if isinstance(opened, Answer):
            end = WatchEnd.EXPIRED if opened.code == GONE else WatchEnd.FAILED
            return WatchStopped(end, f"watch refused: {opened.code} {_status(opened.body)}")
        try:
            return await _read(opened, read_timeout, handoff)
        finally:
            opened.close()


async def _read(
    opened: StreamedBody, read_timeout: float, handoff: Handoff[WatchMessage]
) -> WatchStopped:
    """Read the stream's lines into `handoff` until it ends, breaks or stays silent for
    `read_timeout` seconds. Time spent waiting for room in the hand-off is not silence: the
    socket is not being read then, as a blocking read with a timeout was not either."""
    loop = asyncio.get_running_loop()
    dechunker = Dechunker() if opened.head.chunked else None
    last = time.perf_counter()
    silent = handing = False
    timer: asyncio.TimerHandle

    def watchdog() -> None:
        nonlocal timer, silent
        idle = 0.0 if handing else time.perf_counter() - last
        if idle < read_timeout:
            timer = loop.call_later(read_timeout - idle, watchdog)
            return
        silent = True
        opened.close()  # the read in progress then sees the end of the stream

    timer = loop.call_later(read_timeout, watchdog)
    partial = b""
    try:
        while True:
            data = await opened.reader.read(_READ_SIZE)
            if not data:
                break
            received = time.perf_counter()
            body = data if dechunker is None else dechunker.feed(data)
            if b"\n" in body:
                lines = body.split(b"\n")
                if partial:
                    lines[0] = partial + lines[0]
                partial = lines.pop()
                handing = True
                stopped = await _hand_over(lines, received, handoff)
                handing = False
                if stopped is not None:
                    return stopped
            elif body:
                partial += body
            last = time.perf_counter()
            if dechunker is not None and dechunker.done:
                return WatchStopped(WatchEnd.CLOSED, "server ended the watch")
    except HandoffClosedError:
        return WatchStopped(WatchEnd.CLOSED, "stopped by the watcher")
    except OSError as error:  # a reset, or framing broken (http1.ProtocolError)
        if not silent:
            return WatchStopped(WatchEnd.FAILED, f"watch broke: {error!r}")
    finally:
        timer.cancel()
    if silent:
        return WatchStopped(WatchEnd.SILENT, f"nothing received for {read_timeout:.1f}s")
    if dechunker is not None:
        return WatchStopped(WatchEnd.FAILED, "watch broke: the connection ended mid-stream")
    return WatchStopped(WatchEnd.CLOSED, "server ended the watch")


async def _hand_over(
    lines: list[bytes], received: float, handoff: Handoff[WatchMessage]
) -> WatchStopped | None:
    """Decode and pass on `lines`, at most a hand-off's capacity at a time: a server may send
    a long backlog in one read, and decoded objects are several times their JSON's size."""
    for first in range(0, len(lines), handoff.capacity):
        batch: list[WatchMessage] = []
        for line in lines[first : first + handoff.capacity]:
            message = _parse(line, received)
            if isinstance(message, WatchStopped):
                await handoff.put_many(batch)
                return message
            if message is not None:
                batch.append(message)
        await handoff.put_many(batch)
    return None


def _parse(line: bytes, received: float) -> WatchMessage | None:
    """One watch line; an unreadable one ends the watch (restarting it resumes cleanly)."""
    if not line.strip():
        return None
    try:
        event = _LINE_DECODER.decode(line)
    except msgspec.DecodeError as error:
        return WatchStopped(WatchEnd.FAILED, f"unreadable watch event: {error}")
    kind, obj = event.type, event.object
    if kind == "ERROR":
        code = obj.get("code")
        end = WatchEnd.EXPIRED if code == GONE else WatchEnd.FAILED
        return WatchStopped(end, f"{code} {obj.get('reason', '')}: {obj.get('message', '')}")
    return WatchItem(kind, obj, received)


class _Status(msgspec.Struct):
    reason: str = ""
    message: str = ""


def _status(body: bytes) -> str:
    """A refusal's reason and message as the server's Status gives them, else its raw body."""
    try:
        status = msgspec.json.decode(body, type=_Status)
    except msgspec.DecodeError:
        return body[:200].decode(errors="replace")
    return f"{status.reason}: {status.message}"


def watch_transport(api: client.ApiClient) -> KubeTransport:
    """One for every target's watches; its pool stays unused (a watch never goes back to it),
    and its timeout bounds connecting and the answer's head."""
    return KubeTransport(api.configuration, connections=1, timeout=CONNECT_TIMEOUT)


def _list_call(api: client.ApiClient, target: WatchTarget) -> _ListCall:
    """Every kind, Deployments included, through the custom-objects paths (`/apis/<group>/
    <version>/[namespaces/<ns>/]<plural>`), which are the same URLs for a built-in kind: the
    typed `AppsV1Api` takes over a second to build and only decodes into models we skip."""
    kind, namespace = target.kind, target.namespace
    custom = client.CustomObjectsApi(api)
    group, version = kind.group, kind.api_version.rpartition("/")[2]
    if namespace is None:
        return _bind(custom.list_cluster_custom_object, group, version, kind.plural)
    return _bind(custom.list_namespaced_custom_object, group, version, namespace, kind.plural)


def _bind(function: Callable[..., Any], *args: Any) -> _ListCall:
    def call(**kwargs: Any) -> Any:
        return function(*args, **{k: v for k, v in kwargs.items() if v is not None})

    return call
