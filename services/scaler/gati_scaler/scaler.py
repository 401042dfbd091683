"""The scaler's control loop: which handlers this replica holds, and what it does for each.

Every replica keeps a cache of the handlers in modes `hpa` and `events` (a list at start and
every `resyncSeconds`, plus the change events the shared durable hands it). A handler is acted
on only by the replica holding its lease in `gati-leases` (scope `scale`), so two replicas never
write one Deployment's replicas. The holder:

- mode `hpa`: server-side applies the rendered HorizontalPodAutoscaler as
  `gati-operator-scaler` whenever the handler's generation moves;
- mode `events`: tails the handler version's samples (`TrafficTail`), decides on each sample
  and on every tick (so idleness is noticed without new samples), writes `/scale` when the
  decision changes replicas, and records a decision whose result or reason changed in
  `status.lastScaling` and as an outcome on `gati.status.>`;
- leaving `hpa`: deletes the HPA it made (owner GC covers a deleted handler).

The reconciler leaves `spec.replicas` out of its apply in modes `hpa` and `events`, and the
scaler writes `/scale` under its own field manager, so the field is the scaler's (or the HPA
controller's) and the reconciler never sets it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    EventDecodeError,
    OutcomeEvent,
    OutcomeReport,
    TrafficSample,
    decode_event,
    encode_event,
    event_headers,
)
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER
from gati_contracts.labels import KIND_LABEL, OWNER_LABEL, selector_labels, selector_string
from gati_contracts.scaling import ScalingMode
from gati_contracts.subjects import CR_ROOT, object_filter, status_subject, traffic_subject
from gati_runtime.bus_copy import withheld
from gati_runtime.consumer import Delivery, Poison
from gati_runtime.kube_api import Kube, KubeError, collection_path
from gati_runtime.lease import Lease, Leases, lease_key
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE, Fail, Outcome, Retry
from gati_runtime.publisher import Publisher
from gati_scaler import metrics
from gati_scaler.decision import replay_seconds
from gati_scaler.options import ScalerOptions
from gati_scaler.plan import (
    Holding,
    hpa_deleted,
    hpa_due,
    hpa_rejected,
    plan_hpa,
    plan_mode,
    plan_scale,
    retired,
    scaled,
    seed,
)
from gati_scaler.tail import TrafficTail
from gati_scaler.windows import TrafficWindow

FIELD_MANAGER: Final = "gati-operator-scaler"
SERVICE: Final = "scaler"
LEASE_SCOPE: Final = "scale"
HPA_API: Final = "autoscaling/v2"
HPA_PLURAL: Final = "horizontalpodautoscalers"

log = structlog.get_logger(__name__)

Key = tuple[str, str]
"""(namespace, name) of a GatiHandler."""


def handler_path(namespace: str, name: str) -> str:
    return f"{collection_path(GATI_HANDLER.api_version, GATI_HANDLER.plural, namespace)}/{name}"


@dataclass
class _Held:
    """What the holder keeps for one handler; dropped with the lease."""

    lease: Lease
    renewed_at: float
    holding: Holding
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tail: TrafficTail | None = None
    deployment: tuple[int | None, str] | None = None
    """(generation, name) of the Deployment once found, so a decision costs one read of /scale;
    looked up again when the handler changes."""


@dataclass
class _Known:
    handler: GatiHandler
    next_attempt: float = 0.0
    """Monotonic time before which a lease another replica holds is not asked for again."""
    orphan_hpa: bool = False
    """The handler left mode hpa, yet its HPA is still there (seen by the last resync)."""


class Scaler:
    def __init__(
        self,
        kube: Kube,
        connection: NatsConnection,
        publisher: Publisher,
        leases: Leases,
        *,
        options: ScalerOptions,
        stream: str,
        metrics_stream: str,
        source: str,
    ) -> None:
        self._kube = kube
        self._connection = connection
        self._js = connection.js
        self._publisher = publisher
        self._leases = leases
        self._options = options
        self._stream = stream
        self._metrics_stream = metrics_stream
        self._source = source
        self._known: dict[Key, _Known] = {}
        self._by_traffic: dict[tuple[str, str, str], Key] = {}
        """(namespace, handler path, version) of the samples each known handler is scaled on."""
        self._held: dict[Key, _Held] = {}

    @property
    def held(self) -> frozenset[Key]:
        return frozenset(self._held)

    @property
    def tracked(self) -> frozenset[Key]:
        """The handlers whose spec this replica keeps: what its memory and each tick grow with."""
        return frozenset(self._known)

    # -- inputs -------------------------------------------------------------------------------

    async def on_change(self, delivery: Delivery[ChangeEvent]) -> Outcome:
        """A handler changed: refresh the cache and act now when this replica may."""
        event = delivery.event
        if event.kind != GATI_HANDLER.kind:
            return DONE  # modules have no scaling spec
        key = (event.namespace, event.name)
        if event.type is ChangeType.DELETED:
            await self._forget(key)
            return DONE
        stored = await self._whole(event)
        if stored is None:
            return DONE  # deleted since: its own event forgets it
        try:
            handler = GatiHandler.from_wire(stored)
        except ValidationError as error:
            log.warning("handler_unreadable", namespace=key[0], name=key[1], error=str(error))
            return DONE  # the reconciler reports a bad spec on the object itself
        self._remember(handler)
        return await self._settle(key)

    async def on_sample(self, delivery: Delivery[TrafficSample]) -> Outcome:
        """Check a sample and make sure its handler has a scaler; the holder's tail folds it."""
        sample = delivery.event
        subject = delivery.subject
        if subject != traffic_subject(sample.namespace, sample.handler, sample.version):
            metrics.SAMPLES_REFUSED.inc()
            return Fail(
                f"sample for {sample.namespace}/{sample.handler}/{sample.version} arrived on "
                f"{subject}; publish samples on the subject of their own handler version"
            )
        key = self._by_traffic.get((sample.namespace, sample.handler, sample.version))
        known = self._known.get(key) if key is not None else None
        if key is None or known is None or key in self._held:
            return DONE
        if known.handler.spec.scaling.mode is not ScalingMode.EVENTS:
            return DONE
        return await self._settle(key)

    async def on_poison(self, poison: Poison) -> None:
        """Refused input is logged whole enough to find the sender, never retried."""
        if poison.reason.startswith("undecodable"):
            metrics.SAMPLES_REFUSED.inc()
        log.error(
            "scaler_input_refused",
            subject=poison.subject,
            stream_sequence=poison.stream_sequence,
            reason=poison.reason,
            payload=poison.data[:200].decode(errors="replace"),
        )

    # -- the tick -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Resync, renew, take free handlers and re-decide held ones, every tick, until stop;
        then give every lease back so another replica takes over at once."""
        resynced_at: float | None = None
        generation: int | None = None
        specs: JetStreamContext.PushSubscription | None = None
        try:
            while not stop.is_set():
                if generation != self._connection.generation:
                    # After a reconnect an ordered consumer may have gone deaf (nats-py #504,
                    # #510): start every tail again from a replay, and the spec feed anew.
                    await self._restart_tails()
                    if specs is not None:
                        with contextlib.suppress(Exception):
                            await specs.unsubscribe()
                    try:
                        specs = await self._follow_specs()
                        generation = self._connection.generation
                    except Exception as error:
                        specs = None  # tried again next tick; resync covers the gap
                        log.warning("spec_feed_failed", error=repr(error))
                now = time.monotonic()
                if resynced_at is None or now - resynced_at >= self._options.resync_seconds:
                    try:
                        await self.resync()
                        resynced_at = now
                    except KubeError as error:
                        log.warning("resync_failed", error=str(error))
                for key in list(self._known.keys() | self._held.keys()):
                    try:
                        await self._tick_one(key)
                    except Exception:
                        # One handler's failure (API, bus) must not stop the others' ticks.
                        log.exception("tick_failed", namespace=key[0], name=key[1])
                metrics.TICKS.inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._options.tick_seconds)
        finally:
            if specs is not None:
                with contextlib.suppress(Exception):
                    await specs.unsubscribe()
            for key in list(self._held):
                await self._drop(key, release=True)

    async def _follow_specs(self) -> JetStreamContext.PushSubscription:
        """Every replica hears every handler change (the durable gives each to one replica),
        so a holder applies a spec change at once even when another replica took the event."""
        return await self._js.subscribe(
            object_filter(CR_ROOT, GATI_HANDLER.kind),
            stream=self._stream,
            cb=self._on_spec,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )

    async def _on_spec(self, message: Msg) -> None:
        try:
            event = decode_event(message.data, ChangeEvent)
        except EventDecodeError:
            return  # the durable refuses it, loudly
        key = (event.namespace, event.name)
        if key not in self._held:
            return
        try:
            if event.type is ChangeType.DELETED:
                await self._forget(key)
                return
            stored = await self._whole(event)
            if stored is None:
                return
            self._remember(GatiHandler.from_wire(stored))
            await self._settle(key)
        except Exception:
            log.exception("spec_change_failed", namespace=key[0], name=key[1])

    async def _whole(self, event: ChangeEvent) -> dict[str, Any] | None:
        """The handler as the event shows it, or as the API server stores it when the watcher
        masked a field the scaler may read (`withheld`): a masked spec must never be scaled on
        or rendered into an HPA. None when it no longer exists."""
        if not withheld(event):
            return event.obj
        return await self._kube.get(handler_path(event.namespace, event.name))

    async def _restart_tails(self) -> None:
        for held in self._held.values():
            if held.tail is not None:
                await held.tail.stop()
                held.tail = None

    async def resync(self) -> None:
        # An HPA whose handler left mode hpa while no scaler ran is still ours to delete.
        hpas = await self._kube.list(
            f"/apis/{HPA_API}/{HPA_PLURAL}", f"{KIND_LABEL}={GATI_HANDLER.singular}"
        )
        with_hpa = set[Key]()
        for item in hpas:
            metadata = item.get("metadata") or {}
            owner = (metadata.get("labels") or {}).get(OWNER_LABEL)
            with_hpa.add((metadata.get("namespace") or "", owner or ""))
        items = await self._kube.list(f"/apis/{GATI_HANDLER.api_version}/{GATI_HANDLER.plural}", "")
        seen: set[Key] = set()
        for item in items:
            try:
                handler = GatiHandler.from_wire(item)
            except ValidationError:
                continue
            key = (handler.metadata.namespace or "", handler.metadata.name)
            orphan = key in with_hpa and handler.spec.scaling.mode is not ScalingMode.HPA
            seen.add(self._remember(handler, orphan_hpa=orphan))
        for key in [key for key in self._known.keys() | self._held.keys() if key not in seen]:
            await self._forget(key)

    async def _tick_one(self, key: Key) -> None:
        held = self._held.get(key)
        if held is not None and time.monotonic() - held.renewed_at >= self._options.tick_seconds:
            renewed = await self._leases.renew(held.lease)
            if renewed is None:
                metrics.LEASE_LOST.inc()
                log.warning("lease_lost", namespace=key[0], name=key[1])
                await self._drop(key, release=False)
                return
            held.lease, held.renewed_at = renewed, time.monotonic()
        await self._settle(key)

    # -- acting -------------------------------------------------------------------------------

    def _remember(self, handler: GatiHandler, *, orphan_hpa: bool | None = None) -> Key:
        """Cache the handler while the scaler has something to do for it: it is scaled, held,
        or has an HPA left to delete (`orphan_hpa`, as the last resync found; None keeps what
        was known). Any other handler is not kept, so memory and each tick grow with the
        scaled handlers, not with every handler of the cluster."""
        key = (handler.metadata.namespace or "", handler.metadata.name)
        known = self._known.get(key)
        if known is None:
            known = _Known(handler)
        elif (handler.metadata.generation or 0) >= (known.handler.metadata.generation or 0):
            self._unindex(key, known)
            known.handler = handler
        if orphan_hpa is not None:
            known.orphan_hpa = orphan_hpa
        if not (scaled(known.handler) or known.orphan_hpa or key in self._held):
            self._unindex(key, self._known.pop(key, known))
            return key
        self._known[key] = known
        spec = known.handler.spec
        self._by_traffic[(key[0], spec.handler_path, spec.version)] = key
        held = self._held.get(key)
        if held is not None and held.holding.recorded is not None:
            last = handler.status.last_scaling if handler.status is not None else None
            if last is None or (last.desired_replicas, last.reason) != held.holding.recorded:
                # Another status writer dropped or replaced it: record the next decision again.
                held.holding = replace(held.holding, recorded=None)
        return key

    async def _forget(self, key: Key) -> None:
        known = self._known.pop(key, None)
        if known is not None:
            self._unindex(key, known)
        await self._drop(key, release=True)

    def _unindex(self, key: Key, known: _Known) -> None:
        spec = known.handler.spec
        traffic = (key[0], spec.handler_path, spec.version)
        if self._by_traffic.get(traffic) == key:
            del self._by_traffic[traffic]

    async def _settle(self, key: Key) -> Outcome:
        """Act on one handler if this replica holds (or can take) its lease."""
        known = self._known.get(key)
        if known is None:
            return DONE
        held = self._held.get(key)
        if held is None:
            wanted = scaled(known.handler) or known.orphan_hpa
            if not wanted or time.monotonic() < known.next_attempt:
                return DONE
            held = await self._acquire(key, known)
            if held is None:
                return DONE
        try:
            async with held.lock:
                await self._act(key, known.handler, held)
        except KubeError as error:
            if error.transient:
                return Retry(f"API {error.code}: {error.message}")
            return Fail(f"API {error.code}: {error.message}")
        return DONE

    async def _acquire(self, key: Key, known: _Known) -> _Held | None:
        lease = await self._leases.acquire(
            lease_key(GATI_HANDLER.kind, *key), self._options.lease_seconds
        )
        if lease is None:
            known.next_attempt = time.monotonic() + self._options.lease_seconds / 3
            return None
        status = known.handler.status
        last = status.last_scaling if status is not None else None
        held = _Held(lease, time.monotonic(), seed(last))
        self._held[key] = held
        metrics.LEASES_HELD.set(len(self._held))
        metrics.LEASE_ACQUIRED.labels(str(last is not None).lower()).inc()
        log.info("lease_acquired", namespace=key[0], name=key[1], takeover=last is not None)
        return held

    async def _drop(self, key: Key, *, release: bool) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        metrics.LEASES_HELD.set(len(self._held))
        with contextlib.suppress(KeyError):
            metrics.DESIRED_REPLICAS.remove(*key)
        if held.tail is not None:
            await held.tail.stop()
        if release:
            with contextlib.suppress(NatsError, TimeoutError):
                await self._leases.release(held.lease)

    async def _act(self, key: Key, handler: GatiHandler, held: _Held) -> None:
        plan = plan_mode(handler, held.holding)
        mode = plan.mode
        if mode is not ScalingMode.EVENTS and held.tail is not None:
            await held.tail.stop()
            held.tail = None
        if plan.clear_hpa:
            await self._delete_hpa(handler)
            known = self._known.get(key)
            if known is not None:
                known.orphan_hpa = False
        held.holding = plan.holding
        if mode is ScalingMode.HPA:
            await self._apply_hpa(handler, held)
        elif mode is ScalingMode.EVENTS:
            await self._follow(key, handler, held)
        else:
            await self._drop(key, release=True)

    async def _deployment(self, handler: GatiHandler) -> str | None:
        """The Deployment the reconciler made for the handler (its GatiVersion may rename it)."""
        namespace, uid = handler.metadata.namespace or "", handler.metadata.uid
        selector = selector_string(selector_labels(GATI_HANDLER, handler.metadata.name))
        path = collection_path(DEPLOYMENT.api_version, DEPLOYMENT.plural, namespace)
        for item in await self._kube.list(path, selector):
            metadata = item.get("metadata") or {}
            owners = metadata.get("ownerReferences") or []
            if any(o.get("uid") == uid and o.get("controller") for o in owners):
                return str(metadata["name"])
        return None

    async def _apply_hpa(self, handler: GatiHandler, held: _Held) -> None:
        if not hpa_due(handler, held.holding):
            return
        deployment = await self._deployment(handler)
        if deployment is None:
            return  # the reconciler has not made it yet; the next tick or event comes back
        plan = plan_hpa(handler, deployment, held.holding)
        if plan.body is None:
            log.warning("hpa_refused", name=handler.metadata.name, problem=plan.report.message)
        else:
            namespace = handler.metadata.namespace or ""
            path = f"{collection_path(HPA_API, HPA_PLURAL, namespace)}/{deployment}"
            try:
                await self._kube.apply(path, plan.body, field_manager=FIELD_MANAGER)
            except KubeError as error:
                if error.transient:
                    raise
                log.warning("hpa_rejected", name=handler.metadata.name, error=str(error))
                plan = hpa_rejected(handler, held.holding, str(error))
        held.holding = plan.holding
        await self._publish(handler, plan.report)

    async def _delete_hpa(self, handler: GatiHandler) -> None:
        """Delete the HPA this handler owns, if any; one a user made is none of ours."""
        namespace = handler.metadata.namespace or ""
        path = collection_path(HPA_API, HPA_PLURAL, namespace)
        selector = selector_string(selector_labels(GATI_HANDLER, handler.metadata.name))
        for item in await self._kube.list(path, selector):
            metadata = item.get("metadata") or {}
            owners = metadata.get("ownerReferences") or []
            if any(o.get("uid") == handler.metadata.uid for o in owners):
                await self._kube.delete(f"{path}/{metadata['name']}", uid=metadata.get("uid"))
                await self._publish(handler, hpa_deleted(handler, metadata["name"]))

    async def _follow(self, key: Key, handler: GatiHandler, held: _Held) -> None:
        spec = handler.spec
        tail = held.tail
        if tail is None or (tail.window.handler, tail.window.version) != (
            spec.handler_path,
            spec.version,
        ):
            if tail is not None:
                await tail.stop()
            window = TrafficWindow(
                key[0], spec.handler_path, spec.version, self._options.window_seconds
            )
            tail = TrafficTail(
                self._js, self._metrics_stream, window, lambda: self._on_tail_sample(key)
            )
            held.tail = None
            since = datetime.now(UTC) - timedelta(
                seconds=replay_seconds(spec.scaling, self._options.window_seconds)
            )
            try:
                await tail.start(since)
            except BaseException:
                await tail.stop()
                raise
            held.tail = tail
        if tail.caught_up.is_set():
            await self._decide(key, handler, held, tail.window)

    async def _on_tail_sample(self, key: Key) -> None:
        held, known = self._held.get(key), self._known.get(key)
        if held is None or known is None:
            return
        async with held.lock:
            handler = known.handler
            if (
                held.tail is not None
                and handler.spec.scaling.mode is ScalingMode.EVENTS
                and not retired(handler)
            ):
                await self._decide(key, handler, held, held.tail.window)

    async def _decide(
        self, key: Key, handler: GatiHandler, held: _Held, window: TrafficWindow
    ) -> None:
        generation = handler.metadata.generation
        if held.deployment is not None and held.deployment[0] == generation:
            deployment: str | None = held.deployment[1]
        else:
            deployment = await self._deployment(handler)
        if deployment is None:
            return
        path = f"{collection_path(DEPLOYMENT.api_version, DEPLOYMENT.plural, key[0])}/{deployment}"
        scale = await self._kube.get(f"{path}/scale")
        if scale is None:
            held.deployment = None  # renamed or not there yet: look it up again next time
            return
        held.deployment = (generation, deployment)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        plan = plan_scale(handler.spec.scaling, current, window, datetime.now(UTC), held.holding)
        decision = plan.decision
        metrics.DECISIONS.labels(decision.reason.value).inc()
        metrics.DESIRED_REPLICAS.labels(*key).set(decision.desired_replicas)
        if plan.write:
            await self._kube.merge_patch(
                f"{path}/scale",
                {"spec": {"replicas": decision.desired_replicas}},
                field_manager=FIELD_MANAGER,
            )
            metrics.SCALE_WRITES.inc()
            # Written: the scale-up policy counts it even if recording it fails below.
            held.holding = replace(held.holding, applied=plan.holding.applied)
            log.info(
                "scaled",
                namespace=key[0],
                name=key[1],
                replicas=decision.desired_replicas,
                reason=decision.reason.value,
            )
        report = plan.report
        if report is not None:
            await self._kube.merge_patch(
                f"{handler_path(*key)}/status",
                {"status": {"lastScaling": report.details}},
                field_manager=FIELD_MANAGER,
            )
            await self._publish(
                handler,
                report,
                event_id=f"{SERVICE}:{handler.metadata.uid}:{report.details['decidedAt']}",
            )
        held.holding = plan.holding

    async def _publish(
        self, handler: GatiHandler, report: OutcomeReport, *, event_id: str | None = None
    ) -> None:
        metadata = handler.metadata
        namespace = metadata.namespace or ""
        event = OutcomeEvent(
            event_id=event_id or f"{SERVICE}:{metadata.uid}:{report.action}:{metadata.generation}",
            service=SERVICE,
            source=self._source,
            action=report.action,
            result=report.result,
            kind=GATI_HANDLER.kind,
            namespace=namespace,
            name=metadata.name,
            uid=metadata.uid,
            reason=report.reason,
            message=report.message,
            observed_generation=metadata.generation,
            observed_at=datetime.now(UTC),
            details=report.details,
        )
        await self._publisher.publish(
            status_subject(GATI_HANDLER.kind, namespace, metadata.name),
            encode_event(event),
            event_headers(event),
        )
