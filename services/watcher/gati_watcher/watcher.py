"""The watch loop of one target: relist against the stream, then watch, until shutdown.

relist (on start, after 410 Gone, after NATS came back, after a publish failed) → publish what
the stream lacks → watch from the list's resourceVersion with bookmarks → on a silent, closed or
broken watch resume from the last resourceVersion seen; on anything `policy` says needs it,
finish in-flight publishes and relist.

Every replica runs the same loop and publishes every change. Each publish, the relist's and the
watch's alike, carries `Nats-Expected-Last-Subject-Sequence`: the stream sequence of a message
holding the state this replica last read of the object (one int per subject, seeded by the
relist's read of the stream, kept by every PubAck, dropped after a deletion; 0 for a subject it
never saw). So a publish is stored only right after its own predecessor: a lagging replica can
no longer put rv 10 and 11 on top of the rv 12 another replica's relist recorded. Where the
condition fails, the subject's last event and then the object are read again and the pure
`relist.after_conflict` decides: publish only where the stream is provably behind; nothing
where it already holds the change or may be ahead (the watch's later changes then conflict too
until one is recorded). nats-server checks the expected sequence before it de-duplicates, so
this is also where a change another replica stored first is found (and counted as a
duplicate); the `Nats-Msg-Id` still makes a retry of an unconditional publish a duplicate.

No leader election is needed for correctness: per subject, the stream's sequence is the lock,
and any replica may win. What remains is cost, not safety: the replica that loses a race pays a
direct get and an API read per conflicting change, and while it lags, each of its changes of
that subject conflicts; with many replicas that is many reads per change. A leader (or
sharding subjects across replicas) would only save those reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from kubernetes import client
from nats.js.errors import NotFoundError

from gati_contracts.events import ChangeEvent, ChangeType, EventDecodeError, decode_event
from gati_runtime.cancellation import within
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import Backoff
from gati_runtime.publisher import Publisher
from gati_runtime.redaction import Redaction
from gati_watcher.checkpoint import last_events
from gati_watcher.envelope import Outgoing, outgoing
from gati_watcher.handoff import Handoff
from gati_watcher.kube import KubeReader, WatchItem, WatchMessage, WatchStopped, watch_transport
from gati_watcher.metrics import RELISTS, SKIPPED, WATCH_RESTARTS, duplicates
from gati_watcher.pipeline import Done, ExpectLast, Outcome, PublishPipeline, Result
from gati_watcher.policy import Inactivity, Next, WatchEnd, next_step
from gati_watcher.relist import Change, after_conflict, holds, redecide, relist_changes
from gati_watcher.targets import watch_targets

log = structlog.get_logger(__name__)

BOOKMARK_ENV = "GATI_WATCH_BOOKMARK_INTERVAL"
CAPACITY_ENV = "GATI_WATCH_CAPACITY"
_WATCH_TYPES = {"ADDED": ChangeType.ADDED, "MODIFIED": ChangeType.MODIFIED}
REDECIDE_ATTEMPTS = 5
"""Times one subject is read and decided again before the relist gives up (and is retried)."""
DELETIONS_KEPT = 10_000
"""Recent deletions whose stream sequence a replica keeps (see `Watcher._deletions`)."""

Decide = Callable[[ChangeEvent | None, Mapping[str, Any] | None], list[Change]]
"""What to publish on a subject, given its last event and the object now (None: gone)."""


@dataclass(frozen=True)
class WatcherOptions:
    inactivity: Inactivity = field(default_factory=Inactivity)
    capacity: int = 1024
    """Changes one target may have read but not yet had acknowledged: the memory bound. A
    burst's rate is about this many over the PubAck round trip, which grows with the server's
    load (bench.watcher: 1024 published a 10,000 burst ~1.8x faster than 256, for ~8 MB)."""
    page_size: int = 500
    retry: Backoff = field(
        default_factory=lambda: Backoff(base=timedelta(milliseconds=200), cap=timedelta(seconds=30))
    )
    checkpoint_timeout: float = 30.0
    redaction: Redaction = field(default_factory=Redaction.default)
    """Fields masked before an object is published (`GATI_REDACT_FIELDS`); each event names
    those that masked a value of its object (`ChangeEvent.masked_fields`)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> WatcherOptions:
        """`GATI_WATCH_BOOKMARK_INTERVAL` (seconds) and `GATI_WATCH_CAPACITY`, for API servers
        that bookmark more or less often than Kubernetes' minute, and for tuning memory."""
        env = os.environ if environ is None else environ
        options = cls()
        try:
            if env.get(BOOKMARK_ENV):
                interval = float(env[BOOKMARK_ENV])
                options = cls(inactivity=Inactivity(bookmark_interval=interval))
            if env.get(CAPACITY_ENV):
                capacity = int(env[CAPACITY_ENV])
                if capacity < 1:
                    raise ValueError(f"must be at least 1, got {capacity}")
                options = cls(inactivity=options.inactivity, capacity=capacity)
        except ValueError as error:
            raise ValueError(
                f"{BOOKMARK_ENV} must be seconds > 0 (such as 60) and {CAPACITY_ENV} a whole "
                f"number >= 1 (such as 1024): {error}"
            ) from None
        return options


class TargetWatcher:
    def __init__(
        self,
        reader: KubeReader,
        connection: NatsConnection,
        publisher: Publisher,
        *,
        stream: str,
        source: str,
        stop: asyncio.Event,
        options: WatcherOptions,
    ) -> None:
        self.target = reader.target
        self._reader = reader
        self._connection = connection
        self._stream = stream
        self._source = source
        self._stop = stop
        self._options = options
        self._pipeline = PublishPipeline(connection.client, publisher, stop)
        self._log = log.bind(target=str(self.target))
        self._sequences: dict[str, int] = {}
        """Per subject, the stream sequence of a message holding the state this replica last
        read of its object: what the next change read of it must find on top. Seeded by each
        relist, kept by every PubAck; one int per living object."""
        self._deletions: OrderedDict[str, int] = OrderedDict()
        """The same for the latest `DELETIONS_KEPT` deletions this replica stored, so a prompt
        recreation publishes on top of its predecessor's deletion instead of conflicting and
        re-reading an object that may have changed again since (which folds the creation's
        state into the newer one). Bounded, so memory stays one int per living object plus a
        constant; a recreation after an entry aged out takes the conflict path, which is safe."""
        self._settling: set[asyncio.Task[None]] = set()
        self._unsettled = False
        """A subject could not be settled after a conflict: the watch gives way to a relist."""
        self.high_water = 0
        """Most changes of this target ever read but unacknowledged at once."""
        self.synced = asyncio.Event()
        """Set once the first relist is in the stream: this replica is watching."""

    async def run(self) -> None:
        reason, attempt = "start", 0
        while not self._stop.is_set():
            try:
                resource_version = await self._relist(reason)
            except Exception as error:  # API server or NATS unavailable: both come back
                attempt += 1
                delay = self._options.retry.delay(attempt)
                self._log.warning("relist_failed", error=repr(error), retry_in=str(delay))
                await self._pause(delay)
                reason = "retry"
                continue
            attempt = 0
            self.synced.set()
            end = await self._watch(resource_version)
            if end is None:
                break
            reason = end.value
        await self._drain()

    async def _drain(self) -> None:
        """Wait until every publish, and every conflict being settled, is over."""
        while True:
            await self._pipeline.drain()
            if not self._settling:
                return
            await asyncio.wait(set(self._settling))

    async def _relist(self, reason: str) -> str:
        """Publish what the stream lacks; returns the list's resourceVersion to watch from."""
        RELISTS.labels(kind=self.target.kind.kind, reason=reason).inc()
        await self._drain()
        self._unsettled = False
        generation = self._connection.generation
        listing = await asyncio.to_thread(self._reader.list_objects)
        # Not asyncio.timeout: a nats-py wait_for in the read can lose its one cancel, and the
        # read then waits for a last message that may never come, holding this target.
        checkpoint = await within(
            last_events(self._connection.js, self._stream, [self.target.subject_filter]),
            self._options.checkpoint_timeout,
        )
        listed = {self.target.subject(obj): obj for obj in listing.objects}
        changes = relist_changes(listed, checkpoint.events)
        failures = self._pipeline.failures
        self._sequences = {s: n for s, n in checkpoint.sequences.items() if s in listed}
        conflicts = await self._publish_guarded(changes, checkpoint.sequences)
        for subject, named in conflicts.items():
            obj = listed.get(subject)

            def decide(
                last: ChangeEvent | None,
                current: Mapping[str, Any] | None,
                subject: str = subject,
                obj: Mapping[str, Any] | None = obj,
            ) -> list[Change]:
                return redecide(subject, obj, last, current)

            settled = await self._settle(subject, named, decide)
            if settled is not None and obj is not None and holds(settled[0], obj, deleted=False):
                self._sequences[subject] = settled[1]
        if self._pipeline.failures != failures or self._connection.generation != generation:
            raise RuntimeError("the stream did not take every change of the relist")
        self._log.info(
            "relisted",
            reason=reason,
            objects=len(listed),
            recorded=len(checkpoint.events),
            published=len(changes),
            conflicts=len(conflicts),
            resource_version=listing.resource_version,
        )
        return listing.resource_version

    async def _publish_guarded(
        self, changes: Sequence[Change], sequences: Mapping[str, int]
    ) -> dict[str, Mapping[str, Any]]:
        """Publish a relist's changes, each subject's first one expecting the last sequence the
        diff read (a second, after a recreation, expects the first's); returns the subjects
        where another publisher was faster, with an object that names them."""
        by_subject: dict[str, list[Change]] = {}
        for change in changes:
            by_subject.setdefault(change.subject, []).append(change)
        slots = asyncio.Semaphore(self._options.capacity)
        conflicts: dict[str, Mapping[str, Any]] = {}

        def chain(subject: str, pending: list[Change], expect_last: int) -> None:
            change, later = pending[0], pending[1:]

            def done(outcome: Outcome) -> None:
                if outcome.result is Result.CONFLICT:
                    conflicts[subject] = change.obj
                elif outcome.result is Result.STORED and outcome.sequence is not None:
                    self._remember(subject, change.type, outcome.sequence)
                    if later:
                        chain(subject, later, outcome.sequence)
                        return
                slots.release()

            self._submit(change.type, subject, change.obj, None, done, expect_last=expect_last)

        for subject, pending in by_subject.items():
            await slots.acquire()
            chain(subject, pending, sequences.get(subject, 0))
        await self._pipeline.drain()
        return conflicts

    def _remember(self, subject: str, change: ChangeType, sequence: int) -> None:
        if change is ChangeType.DELETED:
            self._sequences.pop(subject, None)
            self._deletions[subject] = sequence
            self._deletions.move_to_end(subject)
            if len(self._deletions) > DELETIONS_KEPT:
                self._deletions.popitem(last=False)
        else:
            self._deletions.pop(subject, None)
            self._sequences[subject] = sequence

    def _expected(self, subject: str) -> int:
        """The sequence a watched change of `subject` must find on top (0: none known)."""
        return self._sequences.get(subject) or self._deletions.get(subject, 0)

    async def _settle(
        self, subject: str, named: Mapping[str, Any], decide: Decide
    ) -> tuple[ChangeEvent | None, int] | None:
        """Read the subject's last event, then the object `named` names, and publish what
        `decide` says against that last sequence, again while other publishers are faster.
        Returns the subject's last event and sequence then; None if a publish was dropped
        (counted as a failure, which relists) or the object cannot be published."""
        metadata = named.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        for _ in range(REDECIDE_ATTEMPTS):
            last, sequence = await self._last_of(subject)
            current = await asyncio.to_thread(self._reader.get_object, namespace, name)
            outcome = Outcome(Result.STORED, sequence)
            for change in decide(last, current):
                message = self._message(change.type, subject, change.obj)
                if message is None:
                    return None
                outcome = await self._pipeline.publish(message, expect_last=sequence)
                if outcome.result is not Result.STORED or outcome.sequence is None:
                    break
                last, sequence = message.event, outcome.sequence
            if outcome.result is Result.STORED:
                return last, sequence
            if outcome.result is not Result.CONFLICT:
                return None
        raise RuntimeError(f"{subject} kept changing under other publishers; relisting again")

    def _settle_watched(
        self,
        change: ChangeType,
        subject: str,
        obj: Mapping[str, Any],
        handoff: Handoff[WatchMessage],
    ) -> None:
        """After a watched change met a conflict (another replica stored this change, or
        something this watch has not reached yet, or is ahead of): decide anew from the stream
        and the API server. The change's handoff slot is held until then, so the watch slows
        down rather than queueing."""

        deleted = change is ChangeType.DELETED

        decided: list[Change] = []

        def decide(last: ChangeEvent | None, current: Mapping[str, Any] | None) -> list[Change]:
            decided[:] = after_conflict(subject, obj, deleted=deleted, last=last, current=current)
            return decided

        async def settling() -> None:
            try:
                settled = await self._settle(subject, obj, decide)
            except Exception as error:  # NATS or the API server away, or endless races
                self._log.warning("watch_conflict_unsettled", subject=subject, error=repr(error))
                self._unsettled = True
                return
            if settled is None:
                return
            if not decided:  # the stream holds this change or has gone past it
                duplicates(self.target.kind.kind).inc()
            if holds(settled[0], obj, deleted=deleted):
                self._remember(subject, change, settled[1])
            # else: the watch is behind the stream; its next changes of the subject conflict
            # (the remembered sequence is older than the last) until it catches up

        task = asyncio.create_task(settling())
        self._settling.add(task)

        def finished(task: asyncio.Task[None]) -> None:
            self._settling.discard(task)
            handoff.release()

        task.add_done_callback(finished)

    async def _last_of(self, subject: str) -> tuple[ChangeEvent | None, int]:
        """The subject's last event now (None if none or unreadable) and its sequence (0: none)."""
        try:
            raw = await self._connection.jsm.get_last_msg(self._stream, subject, direct=True)
        except NotFoundError:
            return None, 0
        try:
            event: ChangeEvent | None = decode_event(raw.data or b"", ChangeEvent)
        except EventDecodeError:
            event = None
        return event, raw.seq or 0

    async def _watch(self, resource_version: str) -> WatchEnd | None:
        """Watch until a relist is needed (returns why) or shutdown (returns None)."""
        generation, failures, attempt = self._connection.generation, self._pipeline.failures, 0
        while True:
            handoff: Handoff[WatchMessage] = Handoff(self._options.capacity)
            cut = self._reader.start_watch(
                resource_version, self._options.inactivity.timeout, handoff
            )
            try:
                stopped, resource_version, delivered = await self._consume(
                    handoff, resource_version, generation, failures
                )
            finally:
                cut()
                self.high_water = max(self.high_water, handoff.high_water)
            if stopped is None:
                return None
            end = stopped.end
            WATCH_RESTARTS.labels(kind=self.target.kind.kind, reason=end.value).inc()
            self._log.info("watch_ended", end=end.value, detail=stopped.detail)
            if next_step(end) is Next.RELIST:
                return end
            attempt = 0 if delivered else attempt + 1
            if end is WatchEnd.FAILED and attempt:
                await self._pause(self._options.retry.delay(attempt))
                if self._stop.is_set():
                    return None

    async def _consume(
        self,
        handoff: Handoff[WatchMessage],
        resource_version: str,
        generation: int,
        failures: int,
    ) -> tuple[WatchStopped | None, str, bool]:
        """Publish what the watch delivers; returns how it ended, the last resourceVersion seen
        and whether anything arrived."""
        delivered = False
        stop_waiter = asyncio.ensure_future(self._stop.wait())
        reconnect_waiter = asyncio.ensure_future(self._connection.wait_reconnected())
        for waiter in (stop_waiter, reconnect_waiter):
            waiter.add_done_callback(lambda _: handoff.wake())
        self._pipeline.hold()  # until the loop below yields, it submits and then sends itself
        try:
            while True:
                if self._stop.is_set():
                    return None, resource_version, delivered
                if self._connection.generation != generation:
                    return (
                        WatchStopped(WatchEnd.NATS_RECONNECTED, "NATS reconnected"),
                        resource_version,
                        delivered,
                    )
                if self._pipeline.failures != failures or self._unsettled:
                    return (
                        WatchStopped(WatchEnd.PUBLISH_FAILED, "a change could not be stored"),
                        resource_version,
                        delivered,
                    )
                message = handoff.get_nowait()
                if message is None:
                    await self._pipeline.send_held()
                    await handoff.wait()  # woken by an item, shutdown or a reconnect
                    self._pipeline.hold()
                    continue
                if isinstance(message, WatchStopped):
                    handoff.release()
                    return message, resource_version, delivered
                delivered = True
                resource_version = message.resource_version or resource_version
                self._handle(message, handoff)
        finally:
            self._pipeline.release()
            stop_waiter.cancel()
            reconnect_waiter.cancel()

    def _handle(self, item: WatchItem, handoff: Handoff[WatchMessage]) -> None:
        if item.type == "BOOKMARK":
            handoff.release()
            return
        if item.type == "DELETED":
            change = ChangeType.DELETED
        elif item.type in _WATCH_TYPES:
            change = _WATCH_TYPES[item.type]
        else:
            handoff.release()
            SKIPPED.labels(kind=self.target.kind.kind, reason="unknown-event-type").inc()
            self._log.warning("watch_event_skipped", type=item.type)
            return
        subject = self.target.subject(item.obj)

        def done(outcome: Outcome) -> None:
            if outcome.result is Result.CONFLICT:
                self._settle_watched(change, subject, item.obj, handoff)
                return
            if outcome.result is Result.STORED and outcome.sequence is not None:
                self._remember(subject, change, outcome.sequence)
            handoff.release()

        self._submit(
            change,
            subject,
            item.obj,
            item.received,
            done,
            expect_last=lambda: self._expected(subject),
        )

    def _submit(
        self,
        change: ChangeType,
        subject: str,
        obj: Mapping[str, Any],
        received: float | None,
        done: Done,
        *,
        expect_last: ExpectLast = None,
    ) -> None:
        message = self._message(change, subject, obj)
        if message is None:
            done(Outcome(Result.DROPPED))
            return
        self._pipeline.submit(message, received, done, expect_last=expect_last)

    def _message(self, change: ChangeType, subject: str, obj: Mapping[str, Any]) -> Outgoing | None:
        masked = self._options.redaction.apply(obj)
        try:
            return outgoing(
                change,
                subject,
                masked.obj,
                source=self._source,
                observed_at=datetime.now(UTC),
                masked_fields=masked.paths,
            )
        except ValueError as error:
            SKIPPED.labels(kind=self.target.kind.kind, reason="not-an-object").inc()
            self._log.error("object_skipped", subject=subject, error=str(error))
            return None

    async def _pause(self, delay: timedelta) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay.total_seconds())


class Watcher:
    """Every target of one watcher process, each in its own loop."""

    def __init__(
        self,
        api: client.ApiClient,
        connection: NatsConnection,
        publisher: Publisher,
        *,
        stream: str,
        source: str,
        namespaces: tuple[str, ...] = (),
        options: WatcherOptions | None = None,
    ) -> None:
        self.stop = asyncio.Event()
        chosen = options or WatcherOptions()
        transport = watch_transport(api)
        self.targets = [
            TargetWatcher(
                KubeReader(api, target, transport=transport, page_size=chosen.page_size),
                connection,
                publisher,
                stream=stream,
                source=source,
                stop=self.stop,
                options=chosen,
            )
            for target in watch_targets(namespaces)
        ]

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Until `stop` (or `self.stop`) is set; then in-flight publishes finish."""
        relay = asyncio.ensure_future(self._relay(stop)) if stop is not None else None
        try:
            await asyncio.gather(*(target.run() for target in self.targets))
        finally:
            if relay is not None:
                relay.cancel()

    async def synced(self) -> bool:
        """Readiness: every target has relisted once and is watching."""
        return all(target.synced.is_set() for target in self.targets)

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stop.set()
