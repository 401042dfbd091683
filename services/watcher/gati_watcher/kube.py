"""Listing and watching one target with the official `kubernetes` client.

The client is synchronous: `list_objects` runs in a worker thread, and a watch is read in a
daemon thread that passes each event through a `Handoff`, so a slow stream stops the read
instead of filling memory. Objects are kept as the server's JSON (the envelope carries the full
object), not the client's models, which would drop fields they do not know. The read timeout of
the watch request is the inactivity timeout: a silent connection raises after it.

Responses are read raw and decoded with msgspec: the client's own line splitter copies its
buffer once per line and `json.loads` is several times slower, which together capped a replayed
watch at a few thousand events a second, well below what NATS takes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import structlog
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gati_watcher.handoff import Handoff, HandoffClosedError
from gati_watcher.policy import WatchEnd
from gati_watcher.targets import WatchTarget

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0
LIST_TIMEOUT = 60.0
GONE = 410


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
    def __init__(self, api: client.ApiClient, target: WatchTarget, *, page_size: int = 500):
        self.target = target
        self._page_size = page_size
        self._call = _list_call(api, target)

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
        """Read the watch into `handoff` in a daemon thread (which ends with one
        `WatchStopped`); returns a function that cuts the connection."""
        response_box: list[Any] = []

        def run() -> None:
            end = self._watch(resource_version, read_timeout, handoff, response_box)
            with contextlib.suppress(HandoffClosedError):
                handoff.put(end)

        def stop() -> None:
            handoff.close()
            for response in response_box:
                _shutdown(response)

        threading.Thread(target=run, name=f"watch {self.target}", daemon=True).start()
        return stop

    def _watch(
        self,
        resource_version: str,
        read_timeout: float,
        handoff: Handoff[WatchMessage],
        response_box: list[Any],
    ) -> WatchStopped:
        try:
            response = self._call(
                label_selector=self.target.label_selector,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, read_timeout),
            )
        except ApiException as error:
            end = WatchEnd.EXPIRED if error.status == GONE else WatchEnd.FAILED
            return WatchStopped(end, f"watch refused: {error.status} {error.reason}")
        except urllib3.exceptions.HTTPError as error:
            return WatchStopped(WatchEnd.FAILED, f"watch could not connect: {error}")
        response_box.append(response)
        try:
            partial: list[bytes] = []
            for chunk in response.stream(amt=None, decode_content=False):
                received = time.perf_counter()
                if b"\n" not in chunk:
                    partial.append(chunk)
                    continue
                lines = chunk.split(b"\n")
                if partial:
                    lines[0] = b"".join((*partial, lines[0]))
                    partial.clear()
                if lines[-1]:
                    partial.append(lines[-1])
                stopped = _hand_over(lines[:-1], received, handoff)
                if stopped is not None:
                    return stopped
        except HandoffClosedError:
            return WatchStopped(WatchEnd.CLOSED, "stopped by the watcher")
        except urllib3.exceptions.ReadTimeoutError:
            return WatchStopped(WatchEnd.SILENT, f"nothing received for {read_timeout:.1f}s")
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as error:
            # AttributeError: urllib3 reading on after `stop` released the response under it
            if handoff.closed:
                return WatchStopped(WatchEnd.CLOSED, "stopped by the watcher")
            return WatchStopped(WatchEnd.FAILED, f"watch broke: {error!r}")
        finally:
            _shutdown(response)
        return WatchStopped(WatchEnd.CLOSED, "server ended the watch")


def _hand_over(
    lines: list[bytes], received: float, handoff: Handoff[WatchMessage]
) -> WatchStopped | None:
    """Decode and pass on `lines`, at most a hand-off's capacity at a time: a server may send
    a long backlog in one chunk, and decoded objects are several times their JSON's size."""
    for first in range(0, len(lines), handoff.capacity):
        batch: list[WatchMessage] = []
        for line in lines[first : first + handoff.capacity]:
            message = _parse(line, received)
            if isinstance(message, WatchStopped):
                handoff.put_many(batch)
                return message
            if message is not None:
                batch.append(message)
        handoff.put_many(batch)
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


def _shutdown(response: Any) -> None:
    """Unblock a read in progress in another thread (closing alone does not), then release
    the connection."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        response.release_conn()
    except Exception as error:  # best effort: the socket may already be gone
        log.debug("watch_response_shutdown_failed", error=repr(error))


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
