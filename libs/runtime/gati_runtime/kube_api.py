"""A service's door to the API server for writes: a few verbs over one pooled `ApiClient`.

The official client is synchronous, so each call runs in a worker thread; one `ApiClient` is
shared so its urllib3 pool keeps connections open across reconciles (its pool is sized to the
thread count, since a thread without a pooled connection would open and drop one per call).
The client owns the configuration, the credentials (refreshed through its auth hook on every
call) and that pool; a call goes straight to the pool with a body msgspec encoded, because its
generic path (`param_serialize` walking the body, `json` both ways, a response wrapper) cost
about a quarter of each call's CPU, and a reconcile is a handful of calls.
Every failure becomes a `KubeError` that says whether retrying can help: 409 (a conflict),
429, 5xx and transport errors can; 400/403/404/422 describe the request and cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, cast, overload
from urllib.parse import urlencode

import msgspec
import urllib3
from kubernetes import client
from kubernetes.client import rest
from prometheus_client import Counter

from gati_contracts.labels import FIELD_MANAGER

APPLY_PATCH: Final = "application/apply-patch+yaml"
MERGE_PATCH: Final = "application/merge-patch+json"
JSON: Final = "application/json"
REQUEST_TIMEOUT: Final = 30.0
_TIMEOUT: Final = urllib3.Timeout(total=REQUEST_TIMEOUT)
_AUTH: Final = ["BearerToken"]

# The name and labels controller-runtime's client exports, so existing dashboards apply.
API_REQUESTS = Counter(
    "rest_client_requests_total",
    "Kubernetes API requests by verb and HTTP code (code 0: no response)",
    ["verb", "code"],
)
_TRANSIENT_CODES: Final = frozenset({409, 429})
_COUNTERS: dict[tuple[str, int], Counter] = {}
"""`API_REQUESTS` children by (verb, code): `labels()` validates and locks on every call."""


def _count(verb: str, code: int) -> None:
    counter = _COUNTERS.get((verb, code))
    if counter is None:
        counter = _COUNTERS[verb, code] = API_REQUESTS.labels(verb, str(code))
    counter.inc()


class KubeError(RuntimeError):
    """An API call failed; `code` is 0 when no response arrived."""

    def __init__(self, verb: str, path: str, code: int, message: str) -> None:
        self.verb = verb
        self.path = path
        self.code = code
        self.message = message
        super().__init__(f"{verb} {path}: {code or 'no response'} {message}")

    @property
    def transient(self) -> bool:
        return self.code == 0 or self.code in _TRANSIENT_CODES or self.code >= 500


def collection_path(api_version: str, plural: str, namespace: str) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}"


def _message(data: bytes) -> str:
    """The Status message the server sent, or the raw body when it sent something else."""
    body = data.decode(errors="replace")
    try:
        status = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return body
    return str(status.get("message") or body) if isinstance(status, dict) else body


class _Metadata(msgspec.Struct):
    resourceVersion: str


class _Versioned(msgspec.Struct):
    metadata: _Metadata


_VERSION_OF: Final = msgspec.json.Decoder(_Versioned)
"""Reads only `metadata.resourceVersion` of an answer: the rest is skipped, never built."""


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled; the call's answer has nobody to go to
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _work(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        loop, future, call = job
        try:
            outcome: tuple[Any, BaseException | None] = (call(), None)
        except BaseException as error:  # the awaiting coroutine re-raises it; never hang it
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
            loop.call_soon_threadsafe(_settle, future, *outcome)


def _stop(jobs: queue.SimpleQueue[_Job | None], threads: int) -> None:
    """Cancel what no thread has started, then let every thread finish."""
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is not None:
            with contextlib.suppress(RuntimeError):
                job[0].call_soon_threadsafe(job[1].cancel)
    for _ in range(threads):
        jobs.put(None)


class _Threads:
    """Daemon threads for the client's blocking calls, each answer handed straight to the
    awaiting future. `run_in_executor` on a `ThreadPoolExecutor` costs two futures chained
    through callbacks, a work item and a semaphore per call: ~5 % of the reconciler's CPU.
    Threads start as calls overlap, up to `size`; they stop on `close` or when this pool is
    garbage (as an executor's do)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"workers must be at least 1, got {size}")
        self._size = size
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._started = 0
        self._busy = 0
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop, self._jobs, size)

    async def run(self, call: Callable[[], Any]) -> Any:
        if self._closed:
            raise RuntimeError("the API client is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._busy >= self._started < self._size:
            thread = threading.Thread(
                target=_work, args=(self._jobs,), name=f"kube_{self._started}", daemon=True
            )
            thread.start()
            self._started += 1
        self._busy += 1
        self._jobs.put((loop, future, call))
        try:
            return await future
        finally:
            self._busy -= 1

    def close(self) -> None:
        self._closed = True
        self._finalizer()


class Kube:
    def __init__(self, api: client.ApiClient, *, workers: int = 8) -> None:
        if (api.configuration.connection_pool_maxsize or 0) < workers:
            # The client sized its urllib3 pool when it was built, so a larger size only takes
            # effect in a new pool; a smaller one would starve another user of this client.
            api.configuration.connection_pool_maxsize = workers
            api.rest_client = rest.RESTClientObject(api.configuration)
        self._api = api
        self._host = api.configuration.host.rstrip("/")
        # A host may carry a path (an API server behind a proxy that routes by prefix).
        self._prefix = urllib3.util.parse_url(self._host).path or ""
        self._pool: urllib3.HTTPConnectionPool | None = None
        self._threads = _Threads(workers)

    def close(self) -> None:
        self._threads.close()

    async def _call(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        answer: bool | msgspec.json.Decoder[Any] = True,
    ) -> Any:
        """The server's answer decoded (by `answer` when it is a decoder), or None without
        `answer`: decoding an object costs about a tenth of a call, and most writes are made for
        their effect alone."""
        target = f"{self._prefix}{path}?{urlencode(query)}" if query else f"{self._prefix}{path}"
        headers = {**self._api.default_headers, "Content-Type": content_type, "Accept": JSON}
        if self._api.cookie:
            headers["Cookie"] = self._api.cookie
        # The hook refreshes an expiring token (exec plugins, a rotated service account token).
        self._api.update_params_for_auth(headers, [], _AUTH, path, method, None)
        # JSON is YAML too, so the apply patch is sent as JSON like every other body.
        payload = None if body is None else msgspec.json.encode(body)

        def call() -> tuple[int, bytes]:
            response = self._urlopen(method, target, payload, headers)
            return int(response.status), bytes(response.data or b"")

        try:
            code, data = await self._threads.run(call)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            _count(verb, 0)
            raise KubeError(verb, path, 0, repr(error)) from error
        _count(verb, code)
        if not 200 <= code <= 299:
            raise KubeError(verb, path, code, _message(data))
        if not data or answer is False:
            return None
        try:
            return msgspec.json.decode(data) if answer is True else answer.decode(data)
        except msgspec.DecodeError as error:
            raise KubeError(verb, path, code, f"unreadable answer: {error}") from error

    def _urlopen(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> urllib3.BaseHTTPResponse:
        """One request on the client's pool for the API server's host. Through the pool
        manager each call parsed the URL and looked its pool up again, a sixth of the call's
        CPU; a proxy manager still gets every call, since it must rewrite the request."""
        manager = self._api.rest_client.pool_manager
        if isinstance(manager, urllib3.ProxyManager):
            return manager.urlopen(
                method, self._host + target, body=body, headers=headers, timeout=_TIMEOUT
            )
        pool = self._pool
        if pool is None or pool.pool is None:  # the first call, or the manager closed it
            pool = self._pool = manager.connection_from_url(self._host)
        return pool.urlopen(method, target, body=body, headers=headers, timeout=_TIMEOUT)

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return cast(dict[str, Any], await self._call("get", "GET", path))
        except KubeError as error:
            if error.code == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        result = await self._call("list", "GET", path, query={"labelSelector": label_selector})
        return cast(list[dict[str, Any]], result.get("items") or [])

    async def apply(
        self,
        path: str,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
        answer: bool = True,
    ) -> Any:
        """Server-side apply as `field_manager`, taking over conflicting fields: the rendered
        fields are ours by design, and a manual edit of one is drift to undo. A service that
        owns fields another writer must leave alone (the scaler's replicas) applies under a
        manager of its own. The object as applied, or None without `answer`."""
        query = {"fieldManager": field_manager, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        return await self._call(
            "patch", "PATCH", path, query=query, body=obj, content_type=APPLY_PATCH, answer=answer
        )

    async def merge_patch(
        self, path: str, patch: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """JSON merge patch (RFC 7386) as `field_manager`: for a subresource such as `/scale`,
        where only one field is written and the server records who set it."""
        return cast(
            dict[str, Any],
            await self._call(
                "patch",
                "PATCH",
                path,
                query={"fieldManager": field_manager},
                body=patch,
                content_type=MERGE_PATCH,
            ),
        )

    @overload
    async def replace(
        self, path: str, obj: Mapping[str, Any], *, answer: Literal[True] = True
    ) -> dict[str, Any]: ...
    @overload
    async def replace(
        self, path: str, obj: Mapping[str, Any], *, answer: Literal[False]
    ) -> None: ...
    async def replace(
        self, path: str, obj: Mapping[str, Any], *, answer: bool = True
    ) -> dict[str, Any] | None:
        """PUT, so `metadata.resourceVersion` in `obj` is a precondition (409 when stale)."""
        return cast(
            dict[str, Any] | None, await self._call("update", "PUT", path, body=obj, answer=answer)
        )

    async def replace_version(self, path: str, obj: Mapping[str, Any]) -> str:
        """`replace` answering only the object's new `resourceVersion`, for a writer that keeps
        what it wrote instead of reading it back."""
        answer = await self._call("update", "PUT", path, body=obj, answer=_VERSION_OF)
        if answer is None:
            raise KubeError("update", path, 200, "unreadable answer: no object")
        return cast(_Versioned, answer).metadata.resourceVersion

    @overload
    async def create(
        self, path: str, obj: Mapping[str, Any], *, answer: Literal[True] = True
    ) -> dict[str, Any]: ...
    @overload
    async def create(
        self, path: str, obj: Mapping[str, Any], *, answer: Literal[False]
    ) -> None: ...
    async def create(
        self, path: str, obj: Mapping[str, Any], *, answer: bool = True
    ) -> dict[str, Any] | None:
        return cast(
            dict[str, Any] | None,
            await self._call("create", "POST", path, body=obj, answer=answer),
        )

    async def delete(self, path: str, *, uid: str | None = None) -> None:
        """Delete if present; with `uid`, only that incarnation (never a namesake made since)."""
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"} if uid else None
        try:
            await self._call("delete", "DELETE", path, body=body)
        except KubeError as error:
            if error.code not in (404, 409):
                raise
