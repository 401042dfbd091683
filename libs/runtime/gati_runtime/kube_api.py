"""A service's door to the API server for writes: a few verbs over one `KubeTransport`.

The official client's `ApiClient` owns the configuration and the credentials (refreshed
through its auth hook on every call); the calls themselves go over `kube_transport`'s
connections on the event loop, with a body msgspec encoded, because the client's generic path
(`param_serialize` walking the body, `json` both ways, a response wrapper, urllib3 in a worker
thread) cost several times what the call itself does, and a reconcile is a handful of calls.
Every failure becomes a `KubeError` that says whether retrying can help: 409 (a conflict),
429, 5xx and transport errors can; 400/403/404/422 describe the request and cannot.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final, Literal, cast, overload
from urllib.parse import urlencode

import msgspec
from kubernetes import client
from prometheus_client import Counter

from gati_contracts.labels import FIELD_MANAGER
from gati_runtime.kube_transport import KubeTransport

APPLY_PATCH: Final = "application/apply-patch+yaml"
MERGE_PATCH: Final = "application/merge-patch+json"
JSON: Final = "application/json"
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


@functools.lru_cache(maxsize=256)
def _encoded(query: tuple[tuple[str, str], ...]) -> str:
    """A query string, remembered: a service sends the same few (its field manager, its
    selectors) on every call, and encoding one cost a tenth of the call."""
    return urlencode(query)


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


def collection_path(api_version: str, plural: str, namespace: str | None) -> str:
    """A namespaced collection's path; every namespace's when `namespace` is None."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    scope = f"/namespaces/{namespace}" if namespace is not None else ""
    return f"{base}{scope}/{plural}"


def client_headers(
    api: client.ApiClient, method: str, path: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """The official client's headers for a call: its defaults, its cookie, `extra`, and its
    credentials, which its auth hook refreshes (exec plugins, a rotated service account token)."""
    headers = {**api.default_headers, **extra}
    if api.cookie:
        headers["Cookie"] = api.cookie
    api.update_params_for_auth(headers, [], _AUTH, path, method, None)
    return headers


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


class Kube:
    def __init__(self, api: client.ApiClient, *, workers: int = 8) -> None:
        """`workers`: the most calls in flight at once, one connection each."""
        self._api = api
        self._transport = KubeTransport(api.configuration, connections=workers)

    def close(self) -> None:
        self._transport.close()

    async def _call(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: tuple[tuple[str, str], ...] = (),
        body: Any = None,
        content_type: str = JSON,
        answer: bool | msgspec.json.Decoder[Any] = True,
    ) -> Any:
        """The server's answer decoded (by `answer` when it is a decoder), or None without
        `answer`: decoding an object costs about a tenth of a call, and most writes are made for
        their effect alone."""
        target = f"{path}?{_encoded(query)}" if query else path
        headers = client_headers(
            self._api, method, path, {"Content-Type": content_type, "Accept": JSON}
        )
        # JSON is YAML too, so the apply patch is sent as JSON like every other body.
        payload = None if body is None else msgspec.json.encode(body)
        try:
            reply = await self._transport.request(method, target, headers, payload)
        except OSError as error:
            _count(verb, 0)
            raise KubeError(verb, path, 0, repr(error)) from error
        code, data = reply.code, reply.body
        _count(verb, code)
        if not 200 <= code <= 299:
            raise KubeError(verb, path, code, _message(data))
        if not data or answer is False:
            return None
        try:
            return msgspec.json.decode(data) if answer is True else answer.decode(data)
        except msgspec.DecodeError as error:
            raise KubeError(verb, path, code, f"unreadable answer: {error}") from error

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return cast(dict[str, Any], await self._call("get", "GET", path))
        except KubeError as error:
            if error.code == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        result = await self._call("list", "GET", path, query=(("labelSelector", label_selector),))
        return cast(list[dict[str, Any]], result.get("items") or [])

    async def apply(
        self,
        path: str,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
        answer: bool | msgspec.json.Decoder[Any] = True,
    ) -> Any:
        """Server-side apply as `field_manager`, taking over conflicting fields: the rendered
        fields are ours by design, and a manual edit of one is drift to undo. A service that
        owns fields another writer must leave alone (the scaler's replicas) applies under a
        manager of its own. The object as applied (as `answer` reads it when it is a decoder,
        so a caller after a few fields does not build the rest), or None without `answer`."""
        query: tuple[tuple[str, str], ...] = (("fieldManager", field_manager), ("force", "true"))
        if dry_run:
            query += (("dryRun", "All"),)
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
                query=(("fieldManager", field_manager),),
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
