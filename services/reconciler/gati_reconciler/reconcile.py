"""One reconcile: make a handler's or module's objects and status match its live spec.

Level-triggered, as a controller-runtime `Reconcile`, from an informer cache that is the stream:
the newest change recorded on an object's subject is the newest state the watcher saw of it (the
watcher stores a subject's changes in order, each on top of its predecessor). So an event of a
handler or module is acted on only while it is the newest of its subject (the per-subject
stream-sequence guard, `StreamState.is_newest`), and then its object is the state to realize:
no GET. A redelivered or reordered event is not the newest and does nothing; the newer one
carries the work. A Deployment's or GatiVersion's event takes its owner's state from the newest
change of the owner's subject (`StreamState.latest`). Like an informer cache, the stream may
trail the API server; two rules keep that harmless:
- the status is written with the resourceVersion of the state the render came from, so a state
  the API server has moved past loses with 409. The object is then read once: if only its status
  or version moved (another writer's field, or a write the stream has not recorded yet), the
  status is written over it; otherwise the reconcile is done again on what was read;
- what the stream cannot know yet, this replica's own last status writes, is kept
  (`OwnerMemory`): the owned Deployment's next event often comes before the echo of the write
  that followed its apply, and without it would read a state where the spec looks unrealized.
  A Deployment's event whose owner state still shows a spec not realized (another replica's
  write not recorded yet) reads the owner from the API server, as before this cache.
A copy in which the watcher masked a field (`bus_copy.withheld`) is never realized or written
back: the object is read from the API server instead. Whichever holds it, only the incarnation an
event is about (its uid; a Deployment's controller reference) is acted on: a handler deleted and
created again under its name is a new object, which its own events reconcile.
The one state taken from a Deployment's event is the Deployment's, and only while that event is
still the newest of its subject: then it is what the API server would answer, so a Deployment
that already shows the render is neither re-applied nor read. A replica never acts on a
generation older than one it already realized (`OwnerMemory.is_behind`: such an event is
skipped as Stale), so `observedGeneration` never goes backwards, and a Deployment briefly rolled
back by a slow replica is re-applied by the reconcile its own change event triggers.
Those rules make a stale event harmless; what makes two replicas never work on one object at
the same moment (controller-runtime's work-queue guarantee, here across processes) is a lease:
- inside one process a resource's events, its Deployment's and its GatiVersion's travel on
  different subjects (the consumer loop serializes per subject only), so a lock per object
  serializes them;
- across processes each reconcile holds the object's lease in the KV bucket `gati-leases`
  (`gati_runtime.lease`, scope `reconcile`), taken by compare-and-set after the lock and
  released after the reconcile. Its stream reads are made under the lease, or sent with the
  lease's own write when the lease then proves them as good (`gati_reconciler.reads`). An
  event whose object is leased elsewhere is naked with a short, growing delay (`busy_delay`),
  never dropped: the delays of one message's allowed deliveries add up to more than a lease's
  TTL, so a lease left by a crashed replica has expired before the message's last delivery;
- the holder renews its lease every third of the TTL while the reconcile runs, so a slow API
  server never lets a lease lapse under a live reconcile; only a replica that stops (crash,
  partition, a stall longer than the TTL) loses it, and a replica whose renewal fails stops
  its reconcile and puts the event back.
The lease orders the work; the guard and the generation and resourceVersion rules above still
decide whether an event's work is current, because a lease cannot tell an event it arrives out
of order. Together: at most one replica acts on an object at a time, and what it acts on is the
newest state.
Failures are sorted: the API server's verdict on our request (400/422) or a spec the contracts or
the renderer refuse are permanent (status `Failed`, a Warning Event, a Failed outcome, `Fail`);
anything else (409, 429, 5xx, timeouts) is retried with the consumer's backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any, Final

import structlog
from nats.errors import Error as NatsError
from prometheus_client import Counter, Gauge, Histogram

from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    OutcomeEvent,
    OutcomeResult,
    encode_event,
    event_headers,
)
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_MODULE, GATI_VERSION
from gati_contracts.module import GatiModule
from gati_contracts.objects import InvalidObjectError, parse_object
from gati_contracts.subjects import (
    CR_ROOT,
    ObjectSubject,
    parse_subject,
    status_subject,
)
from gati_contracts.workload import WorkloadPhase
from gati_reconciler.diff import rendered_changes
from gati_reconciler.lease_renewal import LeaseRenewal
from gati_reconciler.manifests import ManifestError, render
from gati_reconciler.owner_memory import OwnerMemory, generation_of
from gati_reconciler.pruning import must_prune
from gati_reconciler.reads import Reads
from gati_reconciler.render_cache import RenderCache, fingerprint
from gati_reconciler.retirement import (
    Retirement,
    retire,
    retired_verdict,
    retirement_of,
    shows_retired,
)
from gati_reconciler.status import Verdict, failed, next_status, read_deployment
from gati_reconciler.stream_state import StreamState
from gati_reconciler.targets import (
    KubernetesTarget,
    Owner,
    PermanentError,
    Target,
    object_path,
)
from gati_runtime.bus_copy import withheld
from gati_runtime.consumer import Delivery, Poison
from gati_runtime.kube_api import Kube, KubeError, collection_path
from gati_runtime.lease import Leases, lease_key
from gati_runtime.outcomes import DONE, Fail, Outcome, Retry
from gati_runtime.publisher import Publisher

log = structlog.get_logger(__name__)

CONTROLLER: Final = "reconciler"
REPORTING_CONTROLLER: Final = "gati.dev/reconciler"
RECONCILED: Final = "reconciled"
DELETED: Final = "deleted"
WORKLOAD_KINDS: Final = {GATI_HANDLER.kind: GATI_HANDLER, GATI_MODULE.kind: GATI_MODULE}
GC_POLL: Final = timedelta(milliseconds=200)
"""Delay before looking again for objects the garbage collector has not removed yet."""
CONFLICT_RETRY: Final = timedelta(milliseconds=50)
"""A 409 means someone wrote a newer state: retry at once on it, not after a backoff."""
LEASE_SCOPE: Final = "reconcile"
LEASE_TTL: Final = timedelta(seconds=15)
"""How long the objects of a replica that crashed mid-reconcile wait; a live one renews its lease
every third of this for as long as its reconcile runs, however slow the API server is."""
MAX_DELIVER: Final = 8
"""Deliveries of one message before it is given up: the reconciler consumer's `max_deliver`."""
BUSY_FIRST: Final = timedelta(milliseconds=100)

RECONCILES = Counter(
    "controller_runtime_reconcile_total", "Reconciles by result", ["controller", "result"]
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total", "Reconciles that failed", ["controller"]
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds", "Time of one reconcile", ["controller"]
)
LEASE_LOST = Counter(
    "gati_reconcile_lease_lost_total",
    "Reconciles stopped because their object's lease could not be renewed",
    ["controller"],
)
LEASE_BUSY = Counter(
    "gati_reconcile_lease_busy_total",
    "Events put back because another replica held their object's lease",
    ["controller"],
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers", "Reconciles running now", ["controller"]
)
# Every reconcile touches these; `labels()` validates and locks on each call, so the children
# are looked up once.
_ACTIVE = ACTIVE_WORKERS.labels(CONTROLLER)
_RESULTS = {
    result: RECONCILES.labels(CONTROLLER, result) for result in ("success", "requeue", "error")
}
_ERRORS = RECONCILE_ERRORS.labels(CONTROLLER)
_TIME = RECONCILE_TIME.labels(CONTROLLER)


SUBJECTS_KEPT: Final = 16_384
"""Subjects read, and lease keys spelled, that are remembered (least recently used go first):
every delivery (~5.5 a handler in a convergence) asks for both again, for the same few objects."""


@lru_cache(maxsize=SUBJECTS_KEPT)
def object_subject(subject: str) -> ObjectSubject | None:
    """The object a delivery's subject names, None for a subject of ours that names none.
    Remembered: parsing (~3.6 us) and spelling the lease key (~2.4 us) were half of what the
    handler spends on a delivery it drops (a status echo, a Deployment event already
    superseded). A subject that is not ours raises `SubjectError` every time, as parsing does."""
    parsed = parse_subject(subject)
    return parsed if isinstance(parsed, ObjectSubject) else None


_lease_key = lru_cache(maxsize=SUBJECTS_KEPT)(lease_key)


def owner_of(event: ChangeEvent, subject: ObjectSubject) -> Owner | None:
    """The handler or module a change is about: itself, the controller of an owned object, or
    the handler a GatiVersion's `handlerRef` names."""
    if subject.root == CR_ROOT:
        if subject.kind.kind == GATI_VERSION.kind:
            handler = ((event.obj.get("spec") or {}).get("handlerRef") or {}).get("name")
            return Owner(GATI_HANDLER, subject.namespace, handler) if handler else None
        if subject.kind.kind not in WORKLOAD_KINDS:
            return None
        return Owner(subject.kind, subject.namespace, subject.name)
    reference = _controller(event)
    if reference is None:
        return None
    return Owner(WORKLOAD_KINDS[reference["kind"]], subject.namespace, reference["name"])


def _controller(event: ChangeEvent) -> Mapping[str, Any] | None:
    """The owned object's controller reference to a handler or module, if it has one."""
    references = (event.obj.get("metadata") or {}).get("ownerReferences") or []
    return next(
        (r for r in references if r.get("controller") and r.get("kind") in WORKLOAD_KINDS), None
    )


def is_status_echo(event: ChangeEvent) -> bool:
    """A change of a resource whose status already observed its generation: the echo of a
    status write (ours or another replica's), with no spec left to apply. Readiness arrives by
    the owned Deployment's events, so dropping these halves the work without losing any."""
    status = event.obj.get("status")
    return (
        event.type is not ChangeType.DELETED
        and event.generation is not None
        and isinstance(status, dict)
        and status.get("observedGeneration") == event.generation
    )


def renew_every(lease_ttl: timedelta) -> timedelta:
    return lease_ttl / 3


def busy_delay(attempt: int, lease_ttl: timedelta) -> timedelta:
    """Delay before delivery `attempt + 1` of an event whose object is leased elsewhere.

    Short at first (another replica's reconcile takes tens of milliseconds), four times longer
    each time, at most a third of the TTL: the delays of the `MAX_DELIVER - 1` naks a message
    gets add up to more than one TTL, so the event outlives a lease nobody will release.
    """
    exponent = min(max(attempt - 1, 0), 16)
    return min(BUSY_FIRST * (1 << (2 * exponent)), lease_ttl / 3)


def _cause(delivery: Delivery[ChangeEvent], subject: Owner) -> str:
    """Names the event behind an effect, as a gitops commit message or a dry-run log line."""
    event = delivery.event
    return (
        f"{event.type.value} {subject.kind.kind} {subject.namespace}/{subject.name} "
        f"(event {event.kind} rv {event.resource_version}, stream seq {delivery.stream_sequence})"
    )


def _render(live: Mapping[str, Any], subject: Owner) -> list[dict[str, Any]]:
    """The objects of `live`; a spec the contracts or the renderer refuse is permanent."""
    try:
        resource = parse_object(live)
    except InvalidObjectError as error:
        raise PermanentError("InvalidSpec", "; ".join(map(str, error.problems))) from error
    if not isinstance(resource, GatiHandler | GatiModule):
        raise PermanentError("UnsupportedKind", f"{subject.kind.kind} is not reconciled here")
    try:
        return render(resource)
    except ManifestError as error:
        raise PermanentError("CannotRender", str(error)) from error


class Superseded(Exception):
    """A status write conflicted and the object changed beyond its status, or found the object
    gone: the reconcile is done again on `live`, the object as read (None when it is gone)."""

    def __init__(self, live: Mapping[str, Any] | None) -> None:
        self.live = live
        super().__init__("the object changed while it was reconciled")


class Trigger(Enum):
    """What an event is about, relative to the handler or module it reconciles."""

    OWNER = "owner"
    """The handler or module itself."""
    OWNED = "owned"
    """Its Deployment: readiness changed, or someone edited or removed it."""
    VERSION = "version"
    """Its GatiVersion: timescape may have retired it."""


def trigger_of(subject: ObjectSubject) -> Trigger:
    if subject.root != CR_ROOT:
        return Trigger.OWNED
    return Trigger.VERSION if subject.kind.kind == GATI_VERSION.kind else Trigger.OWNER


def incarnation_of(event: ChangeEvent, trigger: Trigger) -> str | None:
    """The uid of the handler or module an event is about: its own, its Deployment's
    controller reference's, or None for a GatiVersion, which names its handler by name only."""
    if trigger is Trigger.OWNER:
        return event.uid
    if trigger is Trigger.VERSION:
        return None
    reference = _controller(event)
    uid = reference.get("uid") if reference is not None else None
    return str(uid) if uid else None


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        publisher: Publisher,
        *,
        streams: StreamState,
        leases: Leases,
        target: Target | None = None,
        source: str,
        stream: str,
        lease_ttl: timedelta = LEASE_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube = kube
        self._target = target or KubernetesTarget(kube)
        self._publisher = publisher
        self._streams = streams
        self._leases = leases
        self._lease_ttl = lease_ttl
        self._source = source
        self._stream = stream
        self._clock = clock
        self._renders = RenderCache()
        self._memory = OwnerMemory()
        self._busy: dict[Owner, asyncio.Lock] = {}
        self._users: dict[Owner, int] = {}
        # Stream sequences this replica failed and reported itself; the consumer loop calls
        # `on_poison` for them right after, which then has nothing to add.
        self._reported: set[int] = set()

    async def handle(self, delivery: Delivery[ChangeEvent]) -> Outcome:
        """The consumer loop's handler: never raises, answers Done, Retry or Fail."""
        started = time.perf_counter()
        _ACTIVE.inc()
        result = "error"
        try:
            outcome = await self._handle(delivery)
            result = (
                "success"
                if outcome is DONE
                else "requeue"
                if isinstance(outcome, Retry)
                else "error"
            )
            return outcome
        except KubeError as error:
            if error.transient:
                result = "requeue"
                after = CONFLICT_RETRY if error.code == 409 else None
                return Retry(str(error), after=after)
            return await self._fail_permanently(delivery, PermanentError("ApiRejected", str(error)))
        finally:
            _ACTIVE.dec()
            _RESULTS[result].inc()
            if result == "error":
                _ERRORS.inc()
            _TIME.observe(time.perf_counter() - started)

    async def _handle(self, delivery: Delivery[ChangeEvent]) -> Outcome:
        event = delivery.event
        parsed = object_subject(delivery.subject)
        if parsed is None:
            return DONE
        trigger = trigger_of(parsed)
        if trigger is Trigger.OWNER and is_status_echo(event):
            return DONE
        subject = owner_of(event, parsed)
        if subject is None:
            return DONE
        key = _lease_key(subject.kind.kind, subject.namespace, subject.name)
        checked_since = None
        if trigger is Trigger.OWNED:
            # Our confirmed release as known before the check leaves: a lease that follows it
            # proves the check still holds under the lease (`gati_reconciler.reads`).
            checked_since = self._leases.released(key)
            if not await self._streams.is_newest(delivery.subject, delivery.stream_sequence):
                # Once a newer change of the Deployment is stored this one never becomes the
                # newest again: drop it before paying for the lock and the lease. The check
                # under the lease (`_reconcile`) still decides for an event that passes this
                # one, unless the lease proves it still holds.
                return DONE
        async with self._serialized(subject):
            return await self._leased(delivery, subject, trigger, key, checked_since)

    @contextlib.asynccontextmanager
    async def _serialized(self, owner: Owner) -> AsyncIterator[None]:
        """One reconcile per owner in this process: the consumer loop serializes per subject,
        and a resource's own events and its Deployment's travel on two subjects."""
        lock = self._busy.setdefault(owner, asyncio.Lock())
        self._users[owner] = self._users.get(owner, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[owner] -= 1
            if not self._users[owner]:
                del self._users[owner], self._busy[owner]

    async def _leased(
        self,
        delivery: Delivery[ChangeEvent],
        subject: Owner,
        trigger: Trigger,
        key: str,
        checked_since: int | None,
    ) -> Outcome:
        """The reconcile under the object's lease (see the module docstring). Its stream reads
        leave with the lease's write when our own release may prove them as good as read under
        the lease (`gati_reconciler.reads`), else together once the lease is held;
        `checked_since`: our release as known before a Deployment event's newest-check, which
        the same proof may carry over."""
        reads = Reads(self._streams, subject, delivery.subject, delivery.stream_sequence)
        since = self._leases.released(key)
        newest_checked = since is not None and checked_since == since
        try:
            if since is not None:
                await reads.send(
                    newest=trigger is not Trigger.VERSION and not newest_checked,
                    owner=trigger is not Trigger.OWNER,
                )
            lease = await self._leases.acquire(key, self._lease_ttl.total_seconds())
        except BaseException:
            reads.discard()
            raise
        if lease is None:
            reads.discard()
            LEASE_BUSY.labels(CONTROLLER).inc()
            return Retry(
                "another replica is reconciling this object",
                after=busy_delay(delivery.attempt, self._lease_ttl),
            )
        vouched = since is not None and lease.follows == since
        if vouched:
            reads.vouched(newest=newest_checked)
        else:
            reads.discard()
        renewal = LeaseRenewal(self._leases, lease, renew_every(self._lease_ttl).total_seconds())
        try:
            if not vouched:
                # Under the lease now, all at once: one write and one wait, not one each.
                await reads.send(
                    newest=trigger is not Trigger.VERSION, owner=trigger is not Trigger.OWNER
                )
            return await self._reconcile(delivery, subject, trigger, reads)
        except asyncio.CancelledError:
            reason = renewal.cut_short()
            if reason is None:
                raise
            LEASE_LOST.labels(CONTROLLER).inc()
            return Retry(reason)
        finally:
            reads.discard()
            held = await renewal.stop()
            if held is not None:
                try:
                    await self._leases.release(held)
                except (NatsError, TimeoutError) as error:
                    # Its TTL frees it; the reconcile's own outcome is what matters.
                    log.warning("lease_not_released", key=key, error=repr(error))

    async def _reconcile(
        self, delivery: Delivery[ChangeEvent], subject: Owner, trigger: Trigger, reads: Reads
    ) -> Outcome:
        event = delivery.event
        if trigger is not Trigger.VERSION and not await reads.newest():
            # The object changed again since: its newer event does this work, with the state
            # this one no longer shows (which, trusted, could undo a newer one).
            return DONE
        if trigger is Trigger.OWNER:
            if event.type is ChangeType.DELETED:
                return await self._confirm_deleted(delivery, subject)
            live = await self._state(subject, event, event.uid)
        else:
            # The owner as last recorded, only while it shows its spec realized and no older
            # than one this replica acted on: the stream may trail another replica's status
            # write, and acting on that state would realize the spec again. Not for a removed
            # Deployment: the watcher's watches are not ordered across resources, so the
            # owner's own deletion may be recorded after its Deployment's, and re-creating the
            # Deployment from the copy would realize a handler that is gone. The API server
            # decides instead, at one GET per deletion.
            copy = (
                None
                if trigger is Trigger.OWNED and event.type is ChangeType.DELETED
                else await reads.owner_change()
            )
            live = await self._state(subject, copy, incarnation_of(event, trigger), realized=True)
        if live is None:
            return await self._gone(delivery, subject, trigger)
        try:
            return await self._converge(delivery, subject, trigger, live, reads, reread=True)
        except Superseded as newer:
            if newer.live is None or newer.live["metadata"]["uid"] != live["metadata"]["uid"]:
                return await self._gone(delivery, subject, trigger)
            live = newer.live
        try:
            return await self._converge(delivery, subject, trigger, live, reads, reread=False)
        except Superseded:  # without a reread, only the owner's removal meanwhile
            return await self._gone(delivery, subject, trigger)

    async def _state(
        self, subject: Owner, copy: ChangeEvent | None, uid: str | None, *, realized: bool = False
    ) -> Mapping[str, Any] | None:
        """The state to act on: the stream's `copy` with this replica's own status write on top
        (`OwnerMemory.current`), or the object as the API server stores it when the copy cannot
        stand for it: none recorded, a field the watcher masked (`bus_copy.withheld`), another
        incarnation than `uid`, or, with `realized`, a spec not yet realized. Either way only
        incarnation `uid` (any, when None) is answered, else None, as for a deleted object: a
        recreated object is a new one whose own events do its work, and the state of one must
        never be realized, or written, for an event about the other."""
        if copy is not None and (uid is None or copy.uid == uid):
            if copy.type is ChangeType.DELETED:
                return None
            live = self._memory.current(copy.obj)
            if not withheld(copy) and (not realized or self._realized(live)):
                return live
        stored = await self._kube.get(subject.path)
        if stored is None or (uid is not None and stored["metadata"]["uid"] != uid):
            return None
        return stored

    def _realized(self, live: Mapping[str, Any]) -> bool:
        """Whether `live` shows its spec realized, and no older than one this replica acted on."""
        observed = (live.get("status") or {}).get("observedGeneration")
        return observed == generation_of(live) and not self._memory.is_behind(live)

    async def _gone(
        self, delivery: Delivery[ChangeEvent], subject: Owner, trigger: Trigger
    ) -> Outcome:
        if trigger is not Trigger.VERSION:
            await self._publish(
                delivery, subject, OutcomeResult.SKIPPED, "Gone", "the object no longer exists"
            )
        return DONE

    async def _converge(
        self,
        delivery: Delivery[ChangeEvent],
        subject: Owner,
        trigger: Trigger,
        live: Mapping[str, Any],
        reads: Reads,
        *,
        reread: bool,
    ) -> Outcome:
        """Realize `live` and write its status; with `reread`, a status write that conflicts
        reads the object once (see `_write_status`)."""
        event = delivery.event
        generation = generation_of(live)
        if self._memory.is_behind(live):
            await self._publish(
                delivery,
                subject,
                OutcomeResult.SKIPPED,
                "Stale",
                f"event of generation {generation}, a newer one was already realized",
                uid=event.uid,
            )
            return DONE
        retirement = None
        if subject.kind is GATI_HANDLER:
            version = await reads.version()
            retirement = retirement_of(live, version)
        was_retired = shows_retired(live.get("status"))
        if trigger is Trigger.VERSION and retirement is None and not was_retired:
            return DONE  # a rollout step or a traffic count: nothing the reconciler renders
        # Retiring, returning, or a version change that may follow a removal by timescape:
        # every object of the render is checked, and what it no longer holds is pruned.
        reshaped = trigger is Trigger.VERSION or was_retired != (retirement is not None)
        try:
            verdict = await self._realize(
                live,
                subject,
                retirement,
                full=trigger is not Trigger.OWNED or reshaped,
                reshaped=reshaped,
                seen=(
                    event.obj
                    if trigger is Trigger.OWNED and event.type is not ChangeType.DELETED
                    else None
                ),
                cause=_cause(delivery, subject),
            )
        except PermanentError as error:
            return await self._fail(delivery, subject, live, error, reread=reread)
        self._memory.acted(live)
        if self._target.writes:
            await self._write_status(live, subject, verdict, reread=reread)
        await self._publish(
            delivery,
            subject,
            OutcomeResult.SUCCEEDED,
            verdict.reason,
            verdict.message,
            uid=live["metadata"]["uid"],
            generation=generation,
            phase=verdict.phase.value,
        )
        return DONE

    async def _realize(
        self,
        live: Mapping[str, Any],
        subject: Owner,
        retirement: Retirement | None,
        *,
        full: bool,
        reshaped: bool,
        seen: dict[str, Any] | None,
        cause: str,
    ) -> Verdict:
        """Apply the render (less what a retired version gives up); after a change of an owned
        Deployment with the spec already applied (not `full`), re-apply just that Deployment: it
        undoes drift of our fields and returns the status to read, at a quarter of the calls.
        Objects the render no longer holds are pruned after a spec change or when `reshaped`,
        unless the render kept from the generation before shows none can be (`must_prune`).
        `seen`: the owned Deployment as the triggering event showed it, if it exists."""
        previous = self._renders.kept(live["metadata"]["uid"])
        rendered = self._renders.render(live, lambda: _render(live, subject))
        if retirement is not None:
            rendered = retire(rendered, retirement)
        status = live.get("status") or {}
        generation = generation_of(live)
        observed = status.get("observedGeneration")
        prune = must_prune(
            observed=observed,
            generation=generation,
            reshaped=reshaped,
            retired=retirement is not None or shows_retired(status),
            previous=previous,
            rendered=rendered,
        )
        deployment: dict[str, Any] | None = None
        if not full and observed == generation:
            rendered = [obj for obj in rendered if obj["kind"] == DEPLOYMENT.kind]
            if seen is not None and not any(rendered_changes(seen, obj) for obj in rendered):
                # The event shows the Deployment as rendered: no drift to undo, no call to
                # make, and its status is the newest there is (a later change is an event too).
                rendered, deployment = [], seen
        if rendered:
            deployment = await self._target.apply(rendered, cause=cause)
        if prune:
            keep = {(obj["kind"], obj["metadata"]["name"]) for obj in rendered}
            await self._target.prune(subject, live["metadata"]["uid"], keep, cause=cause)
        if self._target.writes and observed != generation:
            await self._post_event(
                live,
                "Normal",
                "Created" if observed is None else "Updated",
                f"applied generation {generation}: "
                + ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in rendered),
            )
        if retirement is not None:
            if self._target.writes and not shows_retired(status):
                await self._post_event(live, "Normal", "Decommissioned", retirement.message)
            return retired_verdict(retirement)
        if deployment is None:
            # The target does not talk to the cluster (gitops, dry run): read what runs there.
            wanted = next((obj for obj in rendered if obj["kind"] == "Deployment"), None)
            if wanted is None:
                raise PermanentError("CannotRender", "the render holds no Deployment")
            deployment = await self._kube.get(object_path(wanted))
            if deployment is None:
                return Verdict(
                    WorkloadPhase.PROGRESSING,
                    "AwaitingSync",
                    f"Deployment {wanted['metadata']['name']} is not in the cluster yet",
                )
        return read_deployment(deployment)

    async def _write_status(
        self, live: Mapping[str, Any], subject: Owner, verdict: Verdict, *, reread: bool
    ) -> bool:
        """Write the status if it changed; False when it already said this. The write is
        conditional on `live`'s resourceVersion; on a conflict, with `reread`, the object is
        read once: if only its status or version moved (another writer's status field, a write
        the stream had not recorded yet) the status is written over it, else `Superseded`; so
        is a 404, with no object: the owner is gone."""
        status = next_status(
            live.get("status"),
            verdict,
            generation=generation_of(live),
            selector=subject.selector,
            now=self._clock(),
        )
        if status is None:
            return False
        metadata = live["metadata"]
        # The status endpoint takes the status alone, with the resourceVersion as precondition
        # (the API server keeps everything else as stored), so the rest is not sent.
        body = {
            "apiVersion": live["apiVersion"],
            "kind": live["kind"],
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "resourceVersion": metadata["resourceVersion"],
            },
            "status": status,
        }
        try:
            version = await self._kube.replace_version(f"{subject.path}/status", body)
        except KubeError as error:
            if error.code == 404:
                # The owner was deleted while it was reconciled (or the stream had not
                # recorded its deletion yet): there is no status left to write, and its own
                # DELETED event confirms what goes with it. Not an error to retry or poison.
                log.info(
                    "status_not_written_owner_gone",
                    kind=subject.kind.kind,
                    namespace=subject.namespace,
                    name=subject.name,
                )
                raise Superseded(None) from error
            if error.code != 409 or not reread:
                raise
            fresh = await self._kube.get(subject.path)
            if (
                fresh is None
                or fresh["metadata"]["uid"] != live["metadata"]["uid"]
                or fingerprint(fresh) != fingerprint(live)
            ):
                raise Superseded(fresh) from error
            return await self._write_status(fresh, subject, verdict, reread=False)
        self._memory.wrote(live, status, version)
        return True

    async def _fail(
        self,
        delivery: Delivery[ChangeEvent],
        subject: Owner,
        live: Mapping[str, Any],
        error: PermanentError,
        *,
        reread: bool,
    ) -> Outcome:
        log.warning(
            "reconcile_failed",
            kind=subject.kind.kind,
            namespace=subject.namespace,
            name=subject.name,
            reason=error.reason,
            message=str(error),
        )
        if self._target.writes and await self._write_status(
            live, subject, failed(error.reason, str(error)), reread=reread
        ):
            await self._post_event(live, "Warning", "ReconcileFailed", str(error))
        await self._publish(
            delivery,
            subject,
            OutcomeResult.FAILED,
            error.reason,
            str(error),
            uid=live["metadata"]["uid"],
            generation=generation_of(live),
        )
        self._reported.add(delivery.stream_sequence)
        return Fail(f"{error.reason}: {error}")

    async def _fail_permanently(
        self, delivery: Delivery[ChangeEvent], error: PermanentError
    ) -> Outcome:
        """A permanent API error outside the realize step: report it on the bus and give up."""
        parsed = object_subject(delivery.subject)
        subject = owner_of(delivery.event, parsed) if parsed is not None else None
        if subject is not None:
            await self._publish(delivery, subject, OutcomeResult.FAILED, error.reason, str(error))
            self._reported.add(delivery.stream_sequence)
        return Fail(f"{error.reason}: {error}")

    async def _confirm_deleted(self, delivery: Delivery[ChangeEvent], subject: Owner) -> Outcome:
        """Owned objects go by ownerReference garbage collection; wait until they have."""
        left = await self._target.leftovers(
            subject, delivery.event.uid, cause=_cause(delivery, subject)
        )
        if left:
            return Retry(f"not yet collected: {', '.join(left)}", after=GC_POLL)
        await self._publish(
            delivery,
            subject,
            OutcomeResult.SUCCEEDED,
            "Deleted",
            "owned objects collected",
            uid=delivery.event.uid,
            action=DELETED,
        )
        return DONE

    async def _post_event(
        self, live: Mapping[str, Any], event_type: str, reason: str, note: str
    ) -> None:
        """A Kubernetes Event on the resource, as controllers post them; best effort, since
        an Event is a hint for humans and must never fail or retry a reconcile."""
        metadata = live["metadata"]
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": metadata["namespace"],
            },
            "eventTime": self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self._source,
            "action": "Reconcile",
            "reason": reason,
            "note": note[:1024],
            "type": event_type,
            "regarding": {
                "apiVersion": live["apiVersion"],
                "kind": live["kind"],
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
                "resourceVersion": metadata.get("resourceVersion"),
            },
        }
        try:
            await self._kube.create(
                collection_path("events.k8s.io/v1", "events", metadata["namespace"]),
                body,
                answer=False,
            )
        except KubeError as error:
            log.warning("event_not_posted", reason=reason, error=str(error))

    async def _publish(
        self,
        delivery: Delivery[ChangeEvent],
        subject: Owner,
        result: OutcomeResult,
        reason: str,
        message: str,
        *,
        uid: str | None = None,
        generation: int | None = None,
        action: str = RECONCILED,
        phase: str | None = None,
    ) -> None:
        outcome = OutcomeEvent(
            event_id=f"{CONTROLLER}:{delivery.stream_sequence}:{result.value}",
            service=CONTROLLER,
            source=self._source,
            action=action,
            result=result,
            kind=subject.kind.kind,
            namespace=subject.namespace,
            name=subject.name,
            uid=uid,
            reason=reason,
            message=message,
            input_stream=self._stream,
            input_sequence=delivery.stream_sequence,
            observed_generation=generation,
            observed_at=self._clock(),
            details={"phase": phase} if phase else {},
        )
        await self._publisher.publish(
            status_subject(subject.kind.kind, subject.namespace, subject.name),
            encode_event(outcome),
            event_headers(outcome),
        )

    async def on_poison(self, poison: Poison) -> None:
        """A message given up on: leave a trace on the bus and, when the API answers, on the
        resource. A `Fail` of our own already reported itself, so it is not reported twice."""
        if poison.stream_sequence in self._reported:
            self._reported.discard(poison.stream_sequence)
            return
        log.error(
            "reconcile_abandoned",
            subject=poison.subject,
            sequence=poison.stream_sequence,
            reason=poison.reason,
        )
        try:
            parsed = parse_subject(poison.subject)
        except ValueError:
            return
        if not isinstance(parsed, ObjectSubject) or parsed.kind.kind not in WORKLOAD_KINDS:
            return
        outcome = OutcomeEvent(
            event_id=f"{CONTROLLER}:{poison.stream_sequence}:abandoned",
            service=CONTROLLER,
            source=self._source,
            action=RECONCILED,
            result=OutcomeResult.FAILED,
            kind=parsed.kind.kind,
            namespace=parsed.namespace,
            name=parsed.name,
            reason="Abandoned",
            message=poison.reason,
            input_stream=self._stream,
            input_sequence=poison.stream_sequence,
            observed_at=self._clock(),
        )
        await self._publisher.publish(
            status_subject(parsed.kind.kind, parsed.namespace, parsed.name),
            encode_event(outcome),
            event_headers(outcome),
        )
        if parsed.root != CR_ROOT:
            return
        owner = Owner(parsed.kind, parsed.namespace, parsed.name)
        try:
            live = await self._kube.get(owner.path)
            if live is not None and self._target.writes:
                message = f"gave up on event {poison.stream_sequence}: {poison.reason}"
                await self._write_status(
                    live, owner, failed("ReconcileAbandoned", message), reread=False
                )
                await self._post_event(live, "Warning", "ReconcileFailed", message)
        except (KubeError, Superseded) as error:
            log.warning("abandoned_status_not_written", error=str(error))
