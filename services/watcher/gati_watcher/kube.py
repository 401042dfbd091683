"""Listing and watching one target with the official `kubernetes` client.

The client is synchronous: `list_objects` runs in a worker thread, and a watch is read in a
daemon thread that passes each event through a `Handoff`, so a slow stream stops the read
instead of filling memory. Objects are kept as the server's JSON (the envelope carries the full
object), not the client's models, which would drop fields they do not know. The read timeout of
the watch request is the inactivity timeout: a silent connection raises after it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from gati_watcher.handoff import Handoff, HandoffClosedError
from gati_watcher.policy import WatchEnd
from gati_watcher.targets import WatchTarget

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0
LIST_TIMEOUT = 60.0
GONE = 410


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
            body = json.loads(response.data)
            for item in body.get("items") or []:
                item.setdefault("kind", self.target.kind.kind)
                item.setdefault("apiVersion", self.target.kind.api_version)
                objects.append(item)
            metadata = body.get("metadata") or {}
            token = metadata.get("continue") or None
            if token is None:
                return Listing(objects, str(metadata.get("resourceVersion", "")))

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
            for line in iter_resp_lines(response):
                received = time.perf_counter()
                message = _parse(line, received)
                if isinstance(message, WatchStopped):
                    return message
                if message is not None:
                    handoff.put(message)
        except HandoffClosedError:
            return WatchStopped(WatchEnd.CLOSED, "stopped by the watcher")
        except urllib3.exceptions.ReadTimeoutError:
            return WatchStopped(WatchEnd.SILENT, f"nothing received for {read_timeout:.1f}s")
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            if handoff.closed:
                return WatchStopped(WatchEnd.CLOSED, "stopped by the watcher")
            return WatchStopped(WatchEnd.FAILED, f"watch broke: {error!r}")
        finally:
            _shutdown(response)
        return WatchStopped(WatchEnd.CLOSED, "server ended the watch")


def _parse(line: str | bytes, received: float) -> WatchMessage | None:
    """One watch line; an unreadable one ends the watch (restarting it resumes cleanly)."""
    if not line:
        return None
    try:
        event = json.loads(line)
        kind, obj = event["type"], event["object"]
        if not isinstance(obj, dict) or not isinstance(kind, str):
            raise TypeError("type or object of the wrong type")
    except (ValueError, KeyError, TypeError) as error:
        return WatchStopped(WatchEnd.FAILED, f"unreadable watch event: {error}")
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
    kind = target.kind
    namespace = target.namespace
    if target.owned:
        apps = client.AppsV1Api(api)
        if namespace is None:
            return _bind(apps.list_deployment_for_all_namespaces)
        return _bind(apps.list_namespaced_deployment, namespace)
    custom = client.CustomObjectsApi(api)
    group, version = kind.group, kind.api_version.rpartition("/")[2]
    if namespace is None:
        return _bind(custom.list_cluster_custom_object, group, version, kind.plural)
    return _bind(custom.list_namespaced_custom_object, group, version, namespace, kind.plural)


def _bind(function: Callable[..., Any], *args: Any) -> _ListCall:
    def call(**kwargs: Any) -> Any:
        return function(*args, **{k: v for k, v in kwargs.items() if v is not None})

    return call
