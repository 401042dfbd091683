"""The HTTP layer: routes Kubernetes API paths to `Api`, and streams watches.

It only parses and serialises; every decision about objects is in `api`, `store` and
`admission`. Errors leave as `Status` objects, and watch streams are newline-delimited JSON
events written in batches of whatever is pending. Requests arrive through `httpserver`;
routing is a dict lookup for the fixed paths and a split of the path for the resource ones,
since every request pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog

from gati_kubesim import discovery, openapi_docs, protobuf, tables
from gati_kubesim.api import (
    APPLY_PATCH,
    APPLY_PATCH_CBOR,
    PATCH_TYPES,
    Api,
    DeleteOptions,
    WriteOptions,
    decode_json,
)
from gati_kubesim.errors import ApiError, bad_request, status_object
from gati_kubesim.faults import FaultRule
from gati_kubesim.httpserver import JSON, Connection, Response
from gati_kubesim.httpwire import Request
from gati_kubesim.registry import ResourceType
from gati_kubesim.watch import encode_event, encoded_object

if TYPE_CHECKING:
    from gati_kubesim.server import KubeSim

log = structlog.get_logger("kubesim")
_encode = msgspec.json.Encoder().encode
Handler = Callable[[Request], Awaitable[Response]]

_UNFAULTED: Final = frozenset({"/metrics", "/healthz", "/livez", "/readyz"})
_UNAUTHENTICATED: Final = frozenset({"/version", "/healthz", "/livez", "/readyz"})
_NOT_FOUND: Final = "the server could not find the requested resource"
_NOT_ALLOWED: Final = "the server does not allow this method on the requested resource"
_WATCH_HEADERS: Final = (("Cache-Control", "no-cache"),)


def json_response(body: Any, status: int = 200) -> Response:
    # A write's stored object was just encoded for its watch event: answer with those bytes.
    encoded = encoded_object(body)
    return Response(_encode(body) if encoded is None else encoded, status)


def error_response(err: ApiError) -> Response:
    return json_response(err.status(), err.code)


def error_body(code: int, message: str) -> bytes:
    """A `Status` for a request the server could not read (`httpserver` answers those)."""
    return _encode(ApiError(code, message).status())


@dataclass(frozen=True)
class Access:
    """A request made with one of `KubeSim.users`' tokens; `url` is its path and query."""

    user: str
    method: str
    url: str


@dataclass
class Target:
    rt: ResourceType
    namespace: str
    name: str | None
    sub: str | None


def _flag(request: Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: {raw!r} is not an integer") from exc
    if value < 0:
        raise bad_request(f"{name}: must be >= 0, got {value}")
    return value


def _manager(request: Request) -> str:
    """`fieldManager`, else the User-Agent's product token, as the real server defaults it."""
    explicit = request.query.get("fieldManager")
    if explicit:
        return explicit
    return request.header("user-agent", "unknown").split("/", 1)[0][:128] or "unknown"


def _body(request: Request) -> Any:
    """The request's object: JSON, or what `HttpApi._decode_body` decoded from protobuf."""
    if request.decoded is not None:
        return request.decoded
    return decode_json(request.body)


def _content_type(request: Request) -> str:
    return request.header("content-type").split(";")[0].strip()


def _aggregated(body: dict[str, Any]) -> Response:
    """Aggregated discovery, typed by its Content-Type as clients require to accept it."""
    return Response(_encode(body), content_type=discovery.AGGREGATED_V2)


def _found(body: dict[str, Any] | None) -> dict[str, Any]:
    if body is None:
        raise ApiError(404, "the server could not find the requested resource")
    return body


def _write_options(request: Request, manager: str) -> WriteOptions:
    validation = request.query.get("fieldValidation") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise bad_request(
            f"fieldValidation: invalid value {validation!r}; use Ignore, Warn or Strict"
        )
    dry_run = request.query.getall("dryRun")
    if any(d != "All" for d in dry_run):
        raise bad_request(f"dryRun: unsupported value {dry_run!r}; the only value is All")
    return WriteOptions(
        manager=manager,
        dry_run=bool(dry_run),
        force=_flag(request, "force"),
        field_validation=validation,
    )


def _warned(response: Response, opts: WriteOptions) -> Response:
    """Warnings travel as RFC 7234 `Warning: 299 - "..."` headers, as the real server sends."""
    for text in opts.warnings:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.append(("Warning", f'299 - "{escaped}"'))
    return response


class HttpApi:
    def __init__(self, sim: KubeSim) -> None:
        self.sim = sim
        self.api: Api = sim.api
        get = self._fixed_get
        self._fixed: dict[str, dict[str, Handler]] = {
            "/healthz": get(self._ok),
            "/livez": get(self._ok),
            "/readyz": get(self._ok),
            "/metrics": get(self._prometheus),
            "/openapi/v2": get(self._openapi_v2),
            "/openapi/v3": get(self._openapi_v3),
            "/kubesim/compact": {"POST": self._hook_compact},
            "/kubesim/faults": {"POST": self._hook_fault, "DELETE": self._hook_clear_faults},
            "/kubesim/silence-watches": {"POST": self._hook_silence},
        }
        # Generated clients ask for `/version/`, `/api/`, `/apis/`: serve both spellings.
        for slash in ("", "/"):
            self._fixed["/version" + slash] = get(self._version)
            self._fixed["/api" + slash] = get(self._api_versions)
            self._fixed["/apis" + slash] = get(self._apis)

    @staticmethod
    def _fixed_get(handler: Handler) -> dict[str, Handler]:
        """A path served to GET and, as HTTP asks of every GET, to HEAD."""
        return {"GET": handler, "HEAD": handler}

    async def _version(self, request: Request) -> Response:
        return json_response(discovery.VERSION_INFO)

    async def _ok(self, request: Request) -> Response:
        return Response(b"ok", content_type="text/plain; charset=utf-8")

    async def _prometheus(self, request: Request) -> Response:
        return Response(self.sim.metrics.render(), content_type="text/plain")

    async def _apis(self, request: Request) -> Response:
        if discovery.wants_aggregated(request.header("accept")):
            return _aggregated(discovery.aggregated(self.api.registry, core=False))
        return json_response(discovery.api_group_list(self.api.registry))

    # -- around every request --------------------------------------------------------------

    async def handle(self, request: Request, connection: Connection) -> Response | None:
        """Every request's path around its handler: authentication, body type, injected
        faults, errors as `Status` objects, then metrics. None: a watch streamed its answer."""
        started = time.perf_counter()
        response: Response | None
        try:
            self._authenticate(request)
            self._decode_body(request)
            if self.sim.faults.rules:
                await self._inject_fault(request)
            response = await self._route(request, connection)
        except ApiError as err:
            response = error_response(err)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            log.exception("kubesim.internal_error", path=request.path)
            response = error_response(ApiError(500, f"internal error: {exc!r}"))
        verb, resource = _classify(request)
        status = 200 if response is None else response.status
        self.sim.metrics.observe(verb, resource, status, time.perf_counter() - started)
        return response

    async def _route(self, request: Request, connection: Connection) -> Response | None:
        """The handler of a path: the fixed paths by lookup, the API's by their prefix."""
        path = request.path
        methods = self._fixed.get(path)
        if methods is not None:
            handler = methods.get(request.method)
            if handler is None:
                raise ApiError(405, _NOT_ALLOWED)
            return await handler(request)
        if path.startswith("/api/v1"):
            return await self._resource(request, connection, "", "v1", path[7:])
        if path.startswith("/apis/"):
            group, slash, rest = path[6:].partition("/")
            if group:
                if not rest:  # /apis/{group} and /apis/{group}/
                    if request.method not in ("GET", "HEAD"):
                        raise ApiError(405, _NOT_ALLOWED)
                    return self._group(group)
                version, slash, rest = rest.partition("/")
                return await self._resource(request, connection, group, version, slash + rest)
        elif path.startswith("/openapi/v3/"):
            if request.method not in ("GET", "HEAD"):
                raise ApiError(405, _NOT_ALLOWED)
            return self._openapi_v3_gv(path[12:])
        raise ApiError(404, _NOT_FOUND)

    def _decode_body(self, request: Request) -> None:
        """Bodies are JSON, or protobuf for the kinds `protobuf` knows (kubectl's typed
        clients send nothing else and never fall back); anything else is 415."""
        if (
            request.method in ("POST", "PUT")
            and request.body
            and not request.path.startswith("/kubesim/")
        ):
            ctype = _content_type(request) if "content-type" in request.headers else JSON
            if ctype == protobuf.PROTOBUF:
                try:
                    request.decoded = protobuf.decode(request.body)
                except protobuf.ProtobufError as exc:
                    raise ApiError(415, str(exc)) from exc
            elif ctype not in (JSON, "", "*/*"):
                raise ApiError(
                    415,
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {JSON}, application/yaml",
                )

    def _authenticate(self, request: Request) -> None:
        token = self.sim.token
        if token is None and not self.sim.users:
            return
        if request.path in _UNAUTHENTICATED:
            return
        header = request.header("authorization")
        sent = header[7:].strip() if header[:7].lower() == "bearer " else None
        user = self.sim.users.get(sent) if sent is not None else None
        if user is not None:
            self.sim.access_log.append(Access(user, request.method, request.target))
            return
        if token is not None and sent == token:
            return
        if sent is not None and sent == self.sim.read_only_token:
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return
            raise ApiError(
                403,
                f'forbidden: User "kubesim:read-only" cannot {request.method.lower()} '
                f"{request.path}",
            )
        raise ApiError(401, "Unauthorized")

    async def _inject_fault(self, request: Request) -> None:
        # Faults model a struggling API, not a blind observer: the health and metrics endpoints
        # keep answering, so a test can measure the operator while the API misbehaves.
        if request.path.startswith("/kubesim/") or request.path in _UNFAULTED:
            return
        verb, resource = _classify(request)
        rule = self.sim.faults.match(verb, resource)
        if rule is not None:
            if rule.latency:
                await asyncio.sleep(rule.latency)
            if rule.code:
                raise ApiError(rule.code, rule.message)

    # -- discovery -------------------------------------------------------------------------

    async def _api_versions(self, request: Request) -> Response:
        if discovery.wants_aggregated(request.header("accept")):
            return _aggregated(discovery.aggregated(self.api.registry, core=True))
        return json_response(discovery.api_versions(request.header("host") or request.local))

    def _group(self, group: str) -> Response:
        return json_response(_found(discovery.api_group(self.api.registry, group)))

    async def _openapi_v2(self, request: Request) -> Response:
        accept = request.header("accept")
        if "protobuf" in accept and JSON not in accept:
            raise ApiError(406, "only application/json is served for /openapi/v2")
        return json_response(openapi_docs.v2(self.api.registry))

    async def _openapi_v3(self, request: Request) -> Response:
        return json_response(openapi_docs.v3_index(self.api.registry))

    def _openapi_v3_gv(self, path: str) -> Response:
        return json_response(_found(openapi_docs.v3_group_version(self.api.registry, path)))

    # -- resources -------------------------------------------------------------------------

    async def _resource(
        self, request: Request, connection: Connection, group: str, version: str, rest: str
    ) -> Response | None:
        parts = [p for p in rest.split("/") if p]
        if not parts:
            if request.method != "GET":
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            return json_response(
                _found(discovery.api_resource_list(self.api.registry, group, version))
            )
        target = self._target(group, version, parts)
        return await self._dispatch(request, connection, target)

    def _target(self, group: str, version: str, parts: list[str]) -> Target:
        namespace = ""
        if (
            parts[0] == "namespaces"
            and len(parts) >= 3
            and not (group == "" and len(parts) == 3 and parts[2] in ("status", "finalize"))
        ):
            namespace, parts = parts[1], parts[2:]
        if len(parts) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        rt = self.api.resource(group, version, parts[0])
        if namespace and not rt.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        namespace_finalize = sub == "finalize" and rt.storage_key == ("", "namespaces")
        if sub is not None and not (
            namespace_finalize
            or (sub == "status" and rt.has_status)
            or (sub == "scale" and rt.scale is not None)
        ):
            raise ApiError(404, "the server could not find the requested resource")
        return Target(rt, namespace, name, sub)

    async def _dispatch(
        self, request: Request, connection: Connection, t: Target
    ) -> Response | None:
        method = request.method
        if t.name is None:
            if method == "GET":
                watch = _flag(request, "watch")
                if watch or "continue" not in request.query:
                    await self.api.wait_until_fresh(
                        request.query.get("resourceVersion"),
                        request.query.get("resourceVersionMatch"),
                        "watch" if watch else "list",
                    )
                if watch:
                    await self._watch(request, connection, t)
                    return None
                return self._list(request, t)
            if method == "POST":
                self._require_verb(t.rt, "create")
                body = _body(request)
                opts = _write_options(request, _manager(request))
                obj = self.api.create(t.rt, t.namespace, body, opts)
                return _warned(json_response(obj, 201), opts)
            if method == "DELETE":
                self._require_verb(t.rt, "deletecollection")
                deletion = self._delete_options(request)
                matcher = self.api.matcher(
                    t.rt, request.query.get("labelSelector"), request.query.get("fieldSelector")
                )
                items = self.api.delete_collection(t.rt, t.namespace or None, matcher, deletion)
                return json_response(
                    self._list_body(
                        t.rt, items, {"resourceVersion": str(self.api.store.resource_version)}
                    )
                )
            raise ApiError(405, f"{method} is not allowed on a collection")
        sub = None if t.sub == "finalize" else t.sub
        if method == "GET":
            obj = self.api.get(t.rt, t.namespace, t.name, sub)
            if sub is None and tables.wants_table(request.header("accept")):
                return json_response(
                    tables.table(
                        t.rt,
                        [obj],
                        {"resourceVersion": obj["metadata"]["resourceVersion"]},
                        request.query.get("includeObject", "Metadata"),
                    )
                )
            return json_response(obj)
        if method == "PUT":
            body = _body(request)
            opts = _write_options(request, _manager(request))
            obj = self.api.update(t.rt, t.namespace, t.name, sub, body, opts)
            return _warned(json_response(obj), opts)
        if method == "PATCH":
            ctype = _content_type(request)
            if ctype == APPLY_PATCH_CBOR or ctype not in PATCH_TYPES:
                raise ApiError(
                    415,
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(PATCH_TYPES)}",
                )
            manager = request.query.get("fieldManager", "")
            if ctype != APPLY_PATCH:
                manager = _manager(request)
            opts = _write_options(request, manager)
            obj, created = self.api.patch(
                t.rt,
                t.namespace,
                t.name,
                sub,
                ctype,
                request.body,
                opts,
            )
            return _warned(json_response(obj, 201 if created else 200), opts)
        if method == "DELETE":
            deletion = self._delete_options(request)
            return json_response(self.api.delete(t.rt, t.namespace, t.name, deletion))
        raise ApiError(405, f"{method} is not allowed on {t.rt.plural}")

    def _require_verb(self, rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise ApiError(405, f"{verb} is not supported on {rt.plural}")

    def _delete_options(self, request: Request) -> DeleteOptions:
        raw = request.body
        body: dict[str, Any] = {}
        if raw.strip():
            decoded = decode_json(raw, "DeleteOptions")
            if not isinstance(decoded, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            body = decoded
        propagation = request.query.get("propagationPolicy") or body.get("propagationPolicy")
        if body.get("orphanDependents") is True or request.query.get("orphanDependents") == "true":
            propagation = propagation or "Orphan"
        if propagation not in (None, "Foreground", "Background", "Orphan"):
            raise bad_request(
                f"propagationPolicy: unsupported value {propagation!r}; use Foreground, "
                "Background or Orphan"
            )
        pre = body.get("preconditions") or {}
        return DeleteOptions(
            propagation=propagation,
            uid=pre.get("uid"),
            resource_version=pre.get("resourceVersion"),
            dry_run="All" in (body.get("dryRun") or []) or "All" in request.query.getall("dryRun"),
        )

    def _list_body(
        self, rt: ResourceType, items: list[Any], meta: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": items,
        }

    def _list(self, request: Request, t: Target) -> Response:
        items, meta = self.api.list_objects(
            t.rt,
            t.namespace or None,
            request.query.get("labelSelector"),
            request.query.get("fieldSelector"),
            _int_param(request, "limit"),
            request.query.get("continue"),
            request.query.get("resourceVersion"),
            request.query.get("resourceVersionMatch"),
        )
        if tables.wants_table(request.header("accept")):
            return json_response(
                tables.table(t.rt, items, meta, request.query.get("includeObject", "Metadata"))
            )
        return json_response(self._list_body(t.rt, items, meta))

    async def _watch(self, request: Request, connection: Connection, t: Target) -> None:
        q = request.query
        matcher = self.api.matcher(t.rt, q.get("labelSelector"), q.get("fieldSelector"))
        bookmarks = _flag(request, "allowWatchBookmarks")
        send_initial = None
        if "sendInitialEvents" in q:
            send_initial = _flag(request, "sendInitialEvents")
            if send_initial and q.get("resourceVersionMatch") != "NotOlderThan":
                raise bad_request("sendInitialEvents requires resourceVersionMatch=NotOlderThan")
        render = None
        if tables.wants_table(request.header("accept")):
            include = q.get("includeObject", "Metadata")
            rt = t.rt

            def render(event_type: str, obj: dict[str, Any]) -> bytes:
                if event_type == "BOOKMARK":
                    return encode_event(event_type, obj)
                return encode_event(
                    event_type,
                    tables.table(
                        rt,
                        [obj],
                        {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                        include,
                    ),
                )

        timeout = _int_param(request, "timeoutSeconds")
        try:
            watcher = self.api.open_watch(
                t.rt,
                t.namespace or None,
                matcher,
                q.get("resourceVersion"),
                send_initial,
                bookmarks,
                render,
            )
        except ApiError as err:
            if err.code != 410:
                raise
            # As the real server does: 200, then one ERROR event carrying the 410 Status.
            stream = connection.stream(request, 200, JSON, _WATCH_HEADERS)
            with contextlib.suppress(ConnectionResetError):
                await stream.write(encode_event("ERROR", err.status()))
            stream.end()
            return
        self.sim.watchers.add(watcher)
        # A client that goes ends its watch at once, not at the next event it fails to get.
        stream = connection.stream(request, 200, JSON, _WATCH_HEADERS, on_lost=watcher.close)
        deadline = time.monotonic() + (timeout if timeout is not None else self.sim.watch_timeout)
        interval = self.sim.bookmark_interval
        watcher.attach(stream.send_now)
        try:
            while not watcher.closed or watcher.pending:
                if watcher.pending:
                    await stream.write(watcher.drain())
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    # A timeout scope, not wait_for: that wraps the wait in a task of its
                    # own on every wake-up, which every watch pays for every event it gets.
                    async with asyncio.timeout(min(left, interval)):
                        await watcher.wakeup.wait()
                except TimeoutError:
                    if bookmarks and watcher.bookmark_due(time.monotonic(), deadline):
                        await stream.write(encode_event("BOOKMARK", self.api.bookmark(t.rt)))
        except ConnectionResetError:
            return  # the client went away; nothing left to tell it
        finally:
            watcher.detach()
            watcher.close()
            self.api.hub.unsubscribe(t.rt.storage_key, watcher)
            self.sim.watchers.discard(watcher)
        stream.end()

    # -- test hooks ------------------------------------------------------------------------

    def _hook_body(self, request: Request) -> dict[str, Any]:
        raw = request.body
        if not raw.strip():
            return {}
        body = decode_json(raw, "hook body")
        if not isinstance(body, dict):
            raise bad_request("the hook body must be a JSON object")
        return body

    async def _hook_compact(self, request: Request) -> Response:
        body = self._hook_body(request)
        rv = self.sim.compact(body.get("resource"))
        return json_response({"compactedTo": str(rv)})

    async def _hook_fault(self, request: Request) -> Response:
        body = self._hook_body(request)
        try:
            rule = FaultRule(
                verb=body.get("verb"),
                resource=body.get("resource"),
                code=int(body.get("code", 0)),
                latency=float(body.get("latency", 0.0)),
                probability=float(body.get("probability", 1.0)),
                times=None if body.get("times") is None else int(body["times"]),
                message=str(body.get("message", "injected by kubesim")),
            )
        except (TypeError, ValueError) as exc:
            raise bad_request(f"fault rule: {exc}") from exc
        self.sim.faults.add(rule)
        return json_response(status_object(200, "fault added", ""))

    async def _hook_clear_faults(self, request: Request) -> Response:
        self.sim.faults.clear()
        return json_response(status_object(200, "faults cleared", ""))

    async def _hook_silence(self, request: Request) -> Response:
        body = self._hook_body(request)
        count = self.sim.silence_watches(body.get("resource"))
        return json_response({"silenced": count})


def _classify(request: Request) -> tuple[str, str]:
    """(verb, resource plural) of a request, for matching fault rules."""
    parts = [p for p in request.path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return request.method.lower(), ""
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        rest = rest[2:]
    resource = rest[0] if rest else ""
    has_name = len(rest) > 1
    method = request.method
    if method == "GET":
        verb = "get" if has_name else ("watch" if _flag(request, "watch") else "list")
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if has_name else "deletecollection"
    else:
        verb = method.lower()
    return verb, resource
