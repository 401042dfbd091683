"""`gati-operator run timescape`: level-triggered over whole namespaces, requeued by status.

Any change to a handler, version or Deployment re-reads its namespace from the API and decides
from that alone (as a controller's Reconcile does), so replicas and restarts agree. Requests
that wait for a namespace share its next pass (`coalesce`), so a burst of changes costs a few
passes rather than one each, and a pass issues its independent reads together. Deadlines
live in status (`stepStartedAt`, `lastCheckAt`); a tick re-reads the namespaces with a version
still moving at the earliest deadline it found, so nothing waits on a sleep holding state.
Status writes carry the read resourceVersion: a replica that lost the race gets 409 and the
event is retried from a fresh read. The KV table is written with compare-and-set.
The health gate's traffic is read back from `GATI_METRICS` at each evaluation (`samples`), so
it needs no state of its own; outcome ids name the status that records the decision, so a
redone pass publishes nothing new. Decommissioned records beyond the retention setting go.
What a pass decides comes from `pass_plan`, which the replay tool runs too; this module reads
what it needs and writes what it decided.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from urllib3.exceptions import HTTPError

from gati_contracts.events import (
    ChangeEvent,
    OutcomeEvent,
    OutcomeReport,
    RoutesEvent,
    TrafficSample,
    decode_event,
    encode_event,
    event_headers,
)
from gati_contracts.handler import GatiHandler
from gati_contracts.headers import MSG_ID
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_VERSION, GROUP, VERSION
from gati_contracts.labels import KIND_LABEL, selector_labels, selector_string
from gati_contracts.routing import table_json
from gati_contracts.subjects import (
    CR_ROOT,
    METRICS_STREAM,
    OWNED_ROOT,
    ROUTES_BUCKET,
    ROUTES_ROOT,
    TRAFFIC_ROOT,
    object_filter,
    routes_subject,
    status_subject,
)
from gati_contracts.tokens import encode_token
from gati_contracts.version import DecommissionAction, GatiVersion, VersionPhase
from gati_runtime.cancellation import cancel_until_done, run_all
from gati_runtime.consumer import Delivery, Poison
from gati_runtime.kube_config import kube_configuration
from gati_runtime.outcomes import DONE, Fail, Outcome, Retry
from gati_runtime.provisioning import ConsumerSpec
from gati_runtime.publisher import Publisher
from gati_runtime.service import ServiceContext
from gati_timescape import reads
from gati_timescape.coalesce import Coalescer
from gati_timescape.decommission import records_to_delete
from gati_timescape.pass_plan import (
    MAX_TICK,
    MIN_TICK,
    MOVING,
    DeploymentReplicas,
    PassVersion,
    PathPlan,
    health_windows,
    plan_namespace,
)
from gati_timescape.routing import RoutingError
from gati_timescape.samples import samples_since
from gati_timescape.state import VersionState
from gati_timescape.status import from_status, to_status

FIELD_MANAGER: Final = "gati-operator-timescape"
APPLY: Final = "application/apply-patch+yaml"
ROUTES_CONFIG_MAP: Final = "gati-routes"
CONSUMER: Final = ConsumerSpec(
    durable="timescape",
    filter_subjects=(
        object_filter(CR_ROOT, GATI_HANDLER.kind),
        object_filter(CR_ROOT, GATI_VERSION.kind),
        object_filter(OWNED_ROOT, DEPLOYMENT.kind),
    ),
    description="timescape: versions, rollouts and routing tables",
)
TRAFFIC_CONSUMER: Final = ConsumerSpec(
    durable="timescape-traffic",
    filter_subjects=(f"{TRAFFIC_ROOT}.>",),
    description="timescape: traffic samples toward decommission",
)
TICK_ERRORS: Final = (ApiException, HTTPError, NatsError, TimeoutError, ValueError)
"""What a pass can meet that a later pass may not: an API or bus error, an unusable object."""

log = structlog.get_logger(__name__)


def routes_key(namespace: str, path: str) -> str:
    """KV key of a table: its routes subject without the root, one token per part."""
    return routes_subject(namespace, path).removeprefix(f"{ROUTES_ROOT}.")


def config_map_key(path: str) -> str:
    """The path as one subject token, which is also a valid ConfigMap key (`/` is not)."""
    return encode_token(path)


def outcome_id(
    namespace: str, name: str, resource_version: str | None, index: int, outcome: OutcomeReport
) -> str:
    """The same for the same decision, so JetStream drops a republished one.

    `resource_version` is the version's status that records the decision: the one written
    (conditioned on the one read, so only one decision per read is ever recorded) or, for a
    report that changes nothing (an unusable spec), the one read, so every pass that re-reads
    the unchanged object names the report alike. The pass time would make every redo look new.
    """
    return (
        f"timescape:{namespace}/{name}@{resource_version}:{index}:{outcome.action}:{outcome.reason}"
    )


def _same_table(a: RoutesEvent, b: RoutesEvent) -> bool:
    """Equal apart from when and by whom it was observed, so replicas write a table once."""
    return (a.default_version, a.versions) == (b.default_version, b.versions)


@dataclass(frozen=True)
class _Version(PassVersion):
    """A version as read, with what writing its status back needs."""

    namespace: str


class Timescape:
    def __init__(
        self,
        api: client.ApiClient,
        publisher: Publisher,
        kv: KeyValue,
        source: str,
        *,
        js: JetStreamContext,
        metrics_stream: str = METRICS_STREAM,
        decommissioned_retention: int,
    ):
        self._custom = client.CustomObjectsApi(api)
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._publisher = publisher
        self._kv = kv
        self._source = source
        self._js = js
        self._metrics_stream = metrics_stream
        self._retention = decommissioned_retention
        self._passes = Coalescer(self._reconcile)
        self.wakes: dict[str, datetime] = {}
        """Earliest deadline per namespace seen in its last pass; the tick's schedule."""
        self._rescheduled = asyncio.Event()
        """Set when a pass records a deadline, so a tick already waiting recomputes its wait."""

    async def handle(self, delivery: Delivery[ChangeEvent]) -> Outcome:
        """Takes only the event's namespace, which redaction may not mask, and reads the objects
        from the API server, so a masked copy (`ChangeEvent.masked_fields`) never reaches a pass."""
        try:
            await self.reconcile(delivery.event.namespace)
        except ApiException as error:
            return Retry(f"API {error.status}: {error.reason}")
        except KeyWrongLastSequenceError:
            return Retry("another replica wrote the routing table first")
        except ValueError as error:
            return Fail(str(error))
        return DONE

    async def on_poison(self, poison: Poison) -> None:
        log.error("timescape gave up on an event", subject=poison.subject, reason=poison.reason)

    async def tick(self, stop: asyncio.Event) -> None:
        """Re-read namespaces whose deadline passed; the next one bounds the wait."""
        resynced_at: datetime | None = None
        while not stop.is_set():
            self._rescheduled.clear()
            now = datetime.now(UTC)
            if resynced_at is None or now - resynced_at >= MAX_TICK:
                try:
                    await self._resync(now)
                    resynced_at = now
                except TICK_ERRORS as error:
                    log.warning("resync failed, retried next tick", error=str(error))
            for namespace, wake in list(self.wakes.items()):
                if wake <= now:
                    await self.reconcile_due(namespace)
            soonest = min(self.wakes.values(), default=now + MAX_TICK)
            delay = min(
                max((soonest - datetime.now(UTC)).total_seconds(), MIN_TICK.total_seconds()),
                MAX_TICK.total_seconds(),
            )
            waits = [
                asyncio.create_task(stop.wait()),
                asyncio.create_task(self._rescheduled.wait()),
            ]
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()

    async def reconcile_due(self, namespace: str) -> None:
        """A pass of the tick: a failure is logged and the namespace stays due, never raised,
        since the tick is what fires every deadline and nothing would restart it."""
        try:
            await self.reconcile(namespace)
        except TICK_ERRORS as error:
            log.warning("tick failed, retried next tick", namespace=namespace, error=str(error))

    async def _resync(self, now: datetime) -> None:
        """Every namespace with a version still moving is due now: after a restart this is
        what resumes a pause whose deadline only the object remembers."""
        listed = await _answer(
            self._custom.list_cluster_custom_object, GROUP, VERSION, GATI_VERSION.plural
        )
        for namespace, phase in reads.version_phases(listed):
            if namespace and phase in MOVING:
                self.wakes.setdefault(namespace, now)

    async def reconcile(self, namespace: str, traffic: Sequence[TrafficSample] = ()) -> None:
        """Return once a pass over `namespace` that started after this call has completed."""
        await self._passes.request(namespace, traffic)

    async def stop_passes(self) -> None:
        """End the passes still running: the tick's, which its stop leaves running (passes are
        shared, so a cancelled requester does not cut one short). A pass cut short is redone
        by the next one over its namespace, here or on another replica."""
        await self._passes.cancel_running()

    async def observe(self, delivery: Delivery[TrafficSample]) -> Outcome:
        """A sample is counted in the pass that writes it to status, so a redelivery after a
        lost ack is recognised by `lastSampleAt` and never counted twice."""
        try:
            await self.reconcile(delivery.event.namespace, (delivery.event,))
        except ApiException as error:
            return Retry(f"API {error.status}: {error.reason}")
        except KeyWrongLastSequenceError:
            return Retry("another replica wrote the routing table first")
        return DONE

    async def _reconcile(self, namespace: str, traffic: Sequence[TrafficSample] = ()) -> None:
        handler_list, version_list, deployments = await asyncio.gather(
            self._list(namespace, GATI_HANDLER.plural),
            self._list(namespace, GATI_VERSION.plural),
            self._deployments(namespace),
        )
        handlers = {
            h.metadata.name: h for h in map(GatiHandler.from_wire, reads.objects(handler_list))
        }
        del handler_list
        versions = _versions(namespace, reads.objects(version_list), handlers)
        del version_list
        known = {v.obj.spec.handler_ref.name for v in versions}
        missing = [h for name, h in handlers.items() if name not in known]
        if missing:
            # Applies of different objects, each idempotent: a straggler after another failed
            # only does what the retried pass would do again.
            await asyncio.gather(*(self._create_version(namespace, h) for h in missing))
            versions = _versions(
                namespace, reads.objects(await self._list(namespace, GATI_VERSION.plural)), handlers
            )
        now = datetime.now(UTC)
        by_name = {v.name: v for v in versions}
        windows = health_windows(namespace, versions, now)
        read = await asyncio.gather(
            *(self._samples(by_name[name], since) for name, since in windows.items())
        )
        samples = dict(zip(windows, read, strict=True))
        plan = plan_namespace(
            namespace,
            versions,
            now,
            deployments=deployments,
            samples=samples,
            arrived=traffic,
            source=self._source,
        )
        tables = [
            await self._write_path(namespace, path, [by_name[v.name] for v in path.versions], now)
            for path in plan.paths
        ]
        if plan.wake is None:
            self.wakes.pop(namespace, None)
        else:
            self.wakes[namespace] = plan.wake
            self._rescheduled.set()
        # The ConfigMap first: a router that hears the event finds both stores already agree.
        await self._apply_config_map(namespace, tables)
        for table in tables:
            await self._write_table(table)

    async def _write_path(
        self, namespace: str, plan: PathPlan, group: Sequence[_Version], now: datetime
    ) -> RoutesEvent:
        """Statuses and outcomes of one path, oldest version first; its table is returned for the
        caller to write once every path's statuses say what it routes. A table the versions
        cannot share fails the pass only after their statuses are written, so the failure is
        reported from a state that is recorded."""
        for version, taken in zip(group, plan.versions, strict=True):
            # Objects go before the status says so: a pass that fails in between is redone
            # from the unchanged status, and removing what is gone already is harmless.
            if taken.decommission:
                await self._decommission(version)
            recorded = await self._write_status(version, taken.state, plan.path, now)
            for index, outcome in enumerate(taken.outcomes):
                await self._publish_outcome(version, outcome, recorded, index, now)
        await self._prune(namespace, group, {v.name: v.state for v in plan.versions})
        if isinstance(plan.table, RoutingError):
            raise plan.table
        return plan.table

    async def _prune(
        self, namespace: str, group: Sequence[_Version], states: Mapping[str, VersionState]
    ) -> None:
        """Delete the decommissioned records of a path beyond the retention setting."""
        records = [
            (v.name, state.decommissioned_at)
            for v in group
            if (state := states[v.name]).phase is VersionPhase.DECOMMISSIONED
            and state.decommissioned_at is not None
        ]
        in_use = {v.name for v in group if v.handler is not None}
        for name in records_to_delete(records, self._retention, in_use):
            log.info("deleting a decommissioned record beyond retention", name=name)
            await _delete(self._delete_version, name, namespace)

    def _delete_version(self, name: str, namespace: str, **options: Any) -> Any:
        return self._custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, GATI_VERSION.plural, name, **options
        )

    async def _samples(self, version: _Version, since: datetime) -> list[TrafficSample]:
        """The traffic of an analysis window read back from the metrics stream, so every replica
        judges the same samples."""
        path = version.path
        if path is None:
            return []
        return await samples_since(
            self._js,
            self._metrics_stream,
            namespace=version.namespace,
            path=path,
            version_id=version.obj.spec.version_id,
            since=since,
        )

    async def _deployments(self, namespace: str) -> list[DeploymentReplicas]:
        """Every handler's Deployments of the namespace in one read; `readiness` picks each
        version's."""
        listed = await _answer(
            self._apps.list_namespaced_deployment,
            namespace,
            label_selector=f"{KIND_LABEL}={GATI_HANDLER.singular}",
        )
        return reads.deployments(listed)

    async def _list(self, namespace: str, plural: str) -> bytes:
        return await _answer(
            self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural
        )

    async def _create_version(self, namespace: str, handler: GatiHandler) -> None:
        """Server-side apply, so two replicas creating it at once both succeed."""
        meta = handler.metadata
        body = {
            "apiVersion": GATI_VERSION.api_version,
            "kind": GATI_VERSION.kind,
            "metadata": {
                "name": meta.name,
                "namespace": namespace,
                "ownerReferences": [
                    {
                        "apiVersion": GATI_HANDLER.api_version,
                        "kind": GATI_HANDLER.kind,
                        "name": meta.name,
                        "uid": meta.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "versionId": handler.spec.version,
                "handlerRef": {"name": meta.name},
                "breaking": handler.spec.timescape.breaking,
            },
        }
        await _answer(
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            GATI_VERSION.plural,
            meta.name,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    async def _write_status(
        self, version: _Version, state: VersionState, path: str, now: datetime
    ) -> str | None:
        """PUT with the resourceVersion read: a stale pass fails with 409 instead of winning.
        Returns the resourceVersion that records `state`: the one written, or the one read when
        nothing changed."""
        status = to_status(
            state,
            version.obj.status,
            handler_path=path,
            generation=version.obj.metadata.generation,
            now=now,
        )
        if status == version.obj.status:
            return version.obj.metadata.resource_version
        # The status endpoint takes status alone (and resourceVersion as the precondition);
        # the rest of the object is the server's, so the JSON read need not be kept to send.
        meta = version.obj.metadata
        body = {
            "apiVersion": GATI_VERSION.api_version,
            "kind": GATI_VERSION.kind,
            "metadata": {
                "name": meta.name,
                "namespace": version.namespace,
                "resourceVersion": meta.resource_version,
            },
            "status": status.to_wire(),
        }
        written = await asyncio.to_thread(
            self._custom.replace_namespaced_custom_object_status,
            GROUP,
            VERSION,
            version.namespace,
            GATI_VERSION.plural,
            version.name,
            body,
        )
        metadata = cast(dict[str, Any], written).get("metadata") or {}
        return cast(str | None, metadata.get("resourceVersion"))

    async def _publish_outcome(
        self,
        version: _Version,
        outcome: OutcomeReport,
        recorded: str | None,
        index: int,
        now: datetime,
    ) -> None:
        """`recorded`: the resourceVersion of the status that holds the decision."""
        meta = version.obj.metadata
        event = OutcomeEvent(
            observed_at=now,
            event_id=outcome_id(version.namespace, meta.name, recorded, index, outcome),
            service="timescape",
            source=self._source,
            action=outcome.action,
            result=outcome.result,
            kind=GATI_VERSION.kind,
            namespace=version.namespace,
            name=meta.name,
            uid=meta.uid,
            reason=outcome.reason,
            message=outcome.message,
            observed_generation=meta.generation,
        )
        subject = status_subject(GATI_VERSION.kind, version.namespace, meta.name)
        await self._publisher.publish(subject, encode_event(event), event_headers(event))

    async def _write_table(self, table: RoutesEvent) -> None:
        """Compare-and-set, publishing the event only when the table really changed."""
        key = routes_key(table.namespace, table.path)
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            revision = await self._kv.create(key, encode_event(table))
        else:
            current = decode_event(entry.value or b"", RoutesEvent) if entry.value else None
            if current is not None and _same_table(current, table):
                return
            revision = await self._kv.update(key, encode_event(table), last=entry.revision)
        # The KV revision names this table once: only the replica whose write won publishes it.
        headers = event_headers(table) | {MSG_ID: f"routes:{key}:{revision}"}
        subject = routes_subject(table.namespace, table.path)
        await self._publisher.publish(subject, encode_event(table), headers)

    async def _apply_config_map(self, namespace: str, tables: Sequence[RoutesEvent]) -> None:
        """One apply with every path, since an apply owns exactly the keys it sends."""
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": ROUTES_CONFIG_MAP, "namespace": namespace},
            "data": {config_map_key(t.path): json.dumps(table_json(t)) for t in tables},
        }
        # Its answer is not read: the client would build typed models of every path's table
        # and of the managedFields naming each, the largest object a pass touches.
        await _answer(
            self._core.patch_namespaced_config_map,
            ROUTES_CONFIG_MAP,
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    async def _decommission(self, version: _Version) -> None:
        namespace = version.namespace
        selector = selector_string(selector_labels(GATI_HANDLER, version.obj.spec.handler_ref.name))
        action = version.obj.spec.decommission.action
        reads = [_listed(self._apps.list_namespaced_deployment, namespace, selector)]
        if action is DecommissionAction.DELETE:
            reads.append(_listed(self._core.list_namespaced_service, namespace, selector))
        deployments, *services = await asyncio.gather(*reads)
        for name in deployments:
            if action is DecommissionAction.SCALE_TO_ZERO:
                await asyncio.to_thread(
                    self._apps.patch_namespaced_deployment_scale,
                    name,
                    namespace,
                    {"spec": {"replicas": 0}},
                )
            else:
                await _delete(self._apps.delete_namespaced_deployment, name, namespace)
        for names in services:
            for name in names:
                await _delete(self._core.delete_namespaced_service, name, namespace)


def _versions(
    namespace: str, listed: Iterable[dict[str, Any]], handlers: Mapping[str, GatiHandler]
) -> list[_Version]:
    found = []
    for raw in listed:
        try:
            obj = GatiVersion.from_wire(raw)
        except ValueError as error:
            log.warning(
                "skipping an invalid GatiVersion", name=raw.get("metadata"), error=str(error)
            )
            continue
        handler = handlers.get(obj.spec.handler_ref.name)
        found.append(_Version(obj, handler, from_status(obj.status), namespace))
    return found


async def _answer(verb: Callable[..., Any], *args: Any, **options: Any) -> bytes:
    """A call's answer as the bytes the server sent, for `reads` to decode only what a pass
    uses (or for a write to ignore); the client raises ApiException for an error status all
    the same."""

    def call() -> bytes:
        response = verb(*args, _preload_content=False, **options)
        try:
            return bytes(response.data)
        finally:
            response.release_conn()

    return await asyncio.to_thread(call)


async def _delete(verb: Callable[..., Any], name: str, namespace: str) -> None:
    """Delete if present. The body is not parsed: the server answers a delete with a Status,
    which the client would otherwise try (and fail) to read as the deleted kind."""
    try:
        await asyncio.to_thread(verb, name, namespace, _preload_content=False)
    except ApiException as error:
        if error.status != 404:
            raise


async def _listed(verb: Callable[..., Any], namespace: str, selector: str) -> list[str]:
    """The names a namespaced list with a label selector returns."""
    listed = await asyncio.to_thread(verb, namespace, label_selector=selector)
    return [item.metadata.name for item in listed.items if item.metadata and item.metadata.name]


async def main(ctx: ServiceContext) -> None:
    kv = await ctx.connection.js.key_value(ROUTES_BUCKET)
    with client.ApiClient(kube_configuration(ctx.settings.kube_context)) as api:
        timescape = Timescape(
            api,
            ctx.publisher,
            kv,
            ctx.settings.instance_id,
            js=ctx.connection.js,
            metrics_stream=ctx.settings.metrics_stream,
            decommissioned_retention=ctx.settings.decommissioned_retention,
        )
        loop = ctx.consumer(
            CONSUMER,
            decode=lambda data: decode_event(data, ChangeEvent),
            handler=timescape.handle,
            on_poison=timescape.on_poison,
        )
        traffic = ctx.consumer(
            TRAFFIC_CONSUMER,
            decode=lambda data: decode_event(data, TrafficSample),
            handler=timescape.observe,
            on_poison=timescape.on_poison,
            stream=ctx.settings.metrics_stream,
        )
        ticker = asyncio.create_task(timescape.tick(ctx.stop))
        try:
            # Not gather: one loop failing would leave the other consuming after main.
            await run_all({"changes": loop.run(ctx.stop), "traffic": traffic.run(ctx.stop)})
        finally:
            # Ended before main returns, whatever nats-py request holds them: else the tick's
            # work runs on while the service drains and closes its NATS connection.
            await cancel_until_done(ticker)
            await timescape.stop_passes()
