"""The loop every service runs: pull from a durable consumer shared by all replicas, handle, settle.

Guarantees it gives handlers:
- messages of one subject (one object) are handled one at a time, in stream order, inside this
  process, while different subjects run concurrently up to `max_in_flight`; a retried message
  comes back later, so across retries handlers still guard with the stream sequence;
- a message is acked only after its handler returned `Done`, naked with a delay on `Retry` or
  an exception, and terminated (after the poison callback) on `Fail`, on a message that cannot
  be decoded, or when its last allowed delivery fails; when that last delivery is never settled
  (its replica died), the server's max-deliveries advisory reaches the poison callback instead;
- long work keeps its messages: `in_progress()` is sent every third of `ack_wait` for every
  message held, running or queued behind another of its subject, once it has been held for a
  sixth of `ack_wait` (most are settled sooner, and telling the server of those cost a publish
  each, as many as the acks during a burst);
- with `ConsumerOptions.coalesce` (for level-triggered handlers, which act on an object's
  newest state whatever the event shows), a message that decodes is acked unhandled when this
  process already holds a later one of its subject: that one carries the same work (garbage is
  still terminated and reported, never waved through because a good event follows it);
- a durable that reads the whole stream (`ConsumerSpec.filter_on_server` False) has what lies
  outside its `filter_subjects` acked unread, never handed to the handler;
- on stop, fetching ends at once and every fetched message is finished and settled (a pull
  cut short may leave messages the server already sent; it redelivers them after ack_wait).

Messages are pulled with JetStream's own requests (`gati_runtime.pull`) into one subscription
callback rather than with nats-py's `fetch`, which waits for every message in a timed task of
its own (several times the client CPU of the callback). One request is out at a time, for as
many messages as there are free slots: first for what is pending now, and when nothing is, for
the first message to come (holding one slot). Each request is bounded (the server may never
answer, as nats-py #933 and #986 saw for fetches), a reconnect ends it (a restarted server
forgot it), and a failure re-creates the durable if the server lost it. The subscription is
never replaced: a request the loop gave up on may still be answered (one sent just before a
reconnect reaches the new server with the client's buffered writes), and its messages must
reach the loop, not an inbox nobody reads, where they would wait out ack_wait. Such a message
is dispatched when the current request still has a slot reserved, else naked at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter, Gauge, Histogram

from gati_contracts.headers import MSG_ID, TRACEPARENT
from gati_runtime.ack_subject import delivery_position
from gati_runtime.logging import message_context
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import Ack, Backoff, Fail, Nak, Outcome, Retry, Term, settle
from gati_runtime.provisioning import ConsumerSpec, ensure_consumer
from gati_runtime.pull import PullEnd, Status, first_to_come, next_subject, pending_now, status_of
from gati_runtime.subject_filter import subject_filter

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

FLUSH_TIMEOUT_SECONDS = 2

DELIVERED = Counter(
    "gati_consumer_delivered_total", "Messages received from JetStream", ["consumer"]
)
ACKED = Counter("gati_consumer_acked_total", "Messages acknowledged", ["consumer"])
NAKED = Counter("gati_consumer_naked_total", "Messages naked for a delayed retry", ["consumer"])
TERMINATED = Counter(
    "gati_consumer_terminated_total", "Messages terminated as poison", ["consumer"]
)
REDELIVERED = Counter(
    "gati_consumer_redeliveries_total", "Deliveries after the first of a message", ["consumer"]
)
IN_FLIGHT = Gauge("gati_consumer_in_flight", "Fetched messages not yet settled", ["consumer"])
FETCH_ERRORS = Counter(
    "gati_consumer_fetch_errors_total",
    "Fetches that failed for a reason other than idleness",
    ["consumer"],
)
FOREIGN = Counter(
    "gati_consumer_foreign_total",
    "Messages outside the consumer's filters, acked unread (filters applied in the client)",
    ["consumer"],
)
COALESCED = Counter(
    "gati_consumer_coalesced_total",
    "Messages acked unhandled because a later one of their subject was already held",
    ["consumer"],
)
HANDLER_SECONDS = Histogram(
    "gati_consumer_handler_seconds",
    "Time to decode, handle and settle one message",
    ["consumer", "result"],
)


class _ConsumerMetrics:
    """The labelled series of one consumer, looked up once rather than per message."""

    def __init__(self, consumer: str) -> None:
        self.delivered = DELIVERED.labels(consumer)
        self.acked = ACKED.labels(consumer)
        self.naked = NAKED.labels(consumer)
        self.terminated = TERMINATED.labels(consumer)
        self.redelivered = REDELIVERED.labels(consumer)
        self.coalesced = COALESCED.labels(consumer)
        self.foreign = FOREIGN.labels(consumer)
        self.in_flight = IN_FLIGHT.labels(consumer)
        self.fetch_errors = FETCH_ERRORS.labels(consumer)
        self.handler_seconds = {
            result: HANDLER_SECONDS.labels(consumer, result)
            for result in ("done", "retry", "poison")
        }


@dataclass(frozen=True)
class Delivery(Generic[T]):
    """One decoded message as a handler sees it."""

    event: T
    subject: str
    stream_sequence: int
    attempt: int
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Poison:
    """A message the loop gives up on, with the raw bytes so nothing about it is lost."""

    subject: str
    stream_sequence: int
    attempt: int
    headers: Mapping[str, str]
    data: bytes
    reason: str


Decoder = Callable[[bytes], T]
Handler = Callable[[Delivery[T]], Awaitable[Outcome]]
PoisonCallback = Callable[[Poison], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerOptions:
    """In-process tuning; the durable's own settings live in `ConsumerSpec`."""

    batch: int = 64
    max_in_flight: int = 128
    fetch_timeout: float = 2.0
    backoff: Backoff = field(default_factory=Backoff)
    error_pause: float = 0.5
    coalesce: bool = False
    """Ack a message unhandled when a later one of its subject is already held (see the
    module docstring); only for handlers that act on the newest state, never on the event."""


class PullFailedError(RuntimeError):
    """The server answered a pull request with a status that means the durable cannot be
    pulled from now (see `gati_runtime.pull.PullEnd.FAILED`)."""


@dataclass
class _Request:
    """The pull request out: the reply subject its status comes back on, the slots still
    reserved for its messages, and its end (None when every reserved slot got a message)."""

    reply: str
    remaining: int
    ended: asyncio.Future[Any]
    """Its result: the status that ended it, or None."""

    def finish(self, status: Status | None) -> None:
        if not self.ended.done():
            self.ended.set_result(status)


class ConsumerLoop(Generic[T]):
    def __init__(
        self,
        connection: NatsConnection,
        stream: str,
        spec: ConsumerSpec,
        *,
        decode: Decoder[T],
        handler: Handler[T],
        on_poison: PoisonCallback,
        options: ConsumerOptions | None = None,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._spec = spec
        self._decode = decode
        self._handler = handler
        self._on_poison = on_poison
        self._options = options or ConsumerOptions()
        if self._options.batch < 1 or self._options.max_in_flight < 1:
            raise ValueError("ConsumerOptions: batch and max_in_flight must be at least 1")
        self._slots = asyncio.Semaphore(self._options.max_in_flight)
        self._lanes: dict[str, deque[Msg]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_every = max(spec.ack_wait.total_seconds() / 3, 0.05)
        # Fetched and not yet settled, keyed by the delivery's unique ack subject, with the
        # monotonic time it was fetched.
        self._held: dict[str, tuple[Msg, float]] = {}
        self._metrics = _ConsumerMetrics(spec.durable)
        self._log = log.bind(consumer=spec.durable, stream=stream)
        self._next = next_subject(stream, spec.durable)
        self._handles = None if spec.filter_on_server else subject_filter(spec.filter_subjects)
        self._inbox = ""
        self._requests = 0
        self._request: _Request | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then finish and settle everything already fetched."""
        await ensure_consumer(self._connection.jsm, self._stream, self._spec)
        subscription = await self._subscribe()
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        heartbeats = asyncio.create_task(self._keep_held_messages())
        # One replica (a queue group) hears of each message the server gave up on by itself.
        abandoned = await self._connection.client.subscribe(
            f"{MAX_DELIVERIES_ADVISORY}.{self._stream}.{self._spec.durable}",
            queue=f"{self._spec.durable}-max-deliveries",
            cb=self._on_max_deliveries,
        )
        self._log.info("consumer_started")
        try:
            while not stop.is_set():
                try:
                    await self._pull(stopped)
                except Exception as error:
                    self._metrics.fetch_errors.inc()
                    self._log.warning("fetch_failed", error=repr(error))
                    await _pause(stop, self._options.error_pause)
                    if not stop.is_set():
                        await self._recover()
                    continue
        finally:
            stopped.cancel()
            try:
                # Nothing more is taken in; what the server sent meanwhile comes back after
                # ack_wait.
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
                await self._finish_in_flight()
            finally:
                # Also when a cut-short service cancels the drain above: the heartbeats would
                # run on for the process's life, and this replica keep its share of advisories.
                heartbeats.cancel()
                with contextlib.suppress(Exception):
                    await abandoned.unsubscribe()
                self._log.info("consumer_stopped")

    async def _subscribe(self) -> Subscription:
        """The inbox for the replies of this loop's pull requests, one subject per request
        (`<inbox>.<n>`), so a late status of a request given up on never ends the next one."""
        client = self._connection.client
        self._inbox = client.new_inbox()
        return await client.subscribe(f"{self._inbox}.*", cb=self._arrived)

    async def _recover(self) -> None:
        """After a failure, assume the worst: the durable itself may be gone."""
        try:
            await ensure_consumer(self._connection.jsm, self._stream, self._spec)
        except Exception as error:
            self._log.warning("consumer_recovery_failed", error=repr(error))

    async def _pull(self, stopped: asyncio.Future[Any]) -> None:
        """One round: what is pending now, as much as there are free slots for; when nothing
        is, wait for the first message to come, holding one slot."""
        wanted = await self._reserve_slots(stopped, self._options.batch)
        if wanted == 0 or await self._ask(pending_now(wanted), wanted, stopped):
            return
        if await self._reserve_slots(stopped, 1):
            await self._ask(first_to_come(1, self._options.fetch_timeout), 1, stopped)

    async def _ask(self, payload: bytes, wanted: int, stopped: asyncio.Future[Any]) -> int:
        """Send one pull request for `wanted` reserved slots and wait for its end; the number
        of messages it brought (each already dispatched by `_arrived`)."""
        self._requests += 1
        ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        request = _Request(f"{self._inbox}.{self._requests}", wanted, ended)
        self._request = request
        guard = self._options.fetch_timeout * 2 + 1
        try:
            await self._connection.client.publish(self._next, payload, reply=request.reply)
            reconnected: asyncio.Future[Any] = asyncio.ensure_future(
                self._connection.wait_reconnected()
            )
            try:
                await asyncio.wait(
                    {ended, stopped, reconnected},
                    timeout=guard,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                # A restarted server forgot the request: the loop asks again.
                cut_short = stopped.done() or reconnected.done()
                reconnected.cancel()
        finally:
            self._request = None
            unused, request.remaining = request.remaining, 0
            for _ in range(unused):
                self._slots.release()
        if ended.done():
            status = ended.result()
            if status is not None and status.end is PullEnd.FAILED:
                raise PullFailedError(
                    f"pull from {self._spec.durable}: {status.code} {status.description}"
                )
        elif not cut_short:
            raise TimeoutError(f"pull request unanswered after {guard:.1f}s")
        return wanted - unused

    async def _arrived(self, message: Msg) -> None:
        status = status_of(message.reply, message.headers)
        request = self._request
        if status is not None:
            if (
                request is not None
                and message.subject == request.reply
                and status.end is not PullEnd.IGNORED
            ):
                request.finish(status)
            return
        if request is None or request.remaining == 0:
            with contextlib.suppress(Exception):
                await message.nak()
            return
        request.remaining -= 1
        if self._handles is None or self._handles(message.subject):
            self._dispatch(message, time.monotonic())
        else:
            # Not this service's (`ConsumerSpec.filter_on_server`): its slot is free at once.
            self._slots.release()
            with contextlib.suppress(Exception):  # a lost ack: redelivered, and acked again
                await message.ack()
            self._metrics.foreign.inc()
        if request.remaining == 0:
            request.finish(None)

    async def _reserve_slots(self, stopped: asyncio.Future[Any], most: int) -> int:
        """Ask only for what can be worked on now, so messages never wait unacked in a buffer:
        at least one free slot (waiting for it unless stopped), and up to `most`."""
        if self._slots.locked():
            acquired: asyncio.Future[Any] = asyncio.ensure_future(self._slots.acquire())
            await asyncio.wait({acquired, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not acquired.done():
                acquired.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquired
                if acquired.cancelled():
                    return 0
                # Acquired after all, just before the cancel: handed back below.
        else:
            await self._slots.acquire()
        if stopped.done():
            self._slots.release()
            return 0
        wanted = 1
        while wanted < most and not self._slots.locked():
            await self._slots.acquire()
            wanted += 1
        return wanted

    def _dispatch(self, message: Msg, fetched: float) -> None:
        self._metrics.delivered.inc()
        self._metrics.in_flight.inc()
        self._held[message.reply] = (message, fetched)
        lane = self._lanes.get(message.subject)
        if lane is not None:
            lane.append(message)
            return
        self._lanes[message.subject] = deque([message])
        task = asyncio.create_task(self._run_lane(message.subject))
        self._lane_tasks.add(task)
        task.add_done_callback(self._lane_tasks.discard)

    async def _run_lane(self, subject: str) -> None:
        lane = self._lanes[subject]
        try:
            while lane:
                message = lane.popleft()
                try:
                    await self._process(message, lane)
                except Exception:
                    # Settling failed (connection lost): JetStream redelivers after ack_wait.
                    # The lane goes on, so the messages queued behind are not stranded.
                    self._log.exception("settle_failed", subject=subject)
                finally:
                    self._metrics.in_flight.dec()
                    self._held.pop(message.reply, None)
                    self._slots.release()
        finally:
            del self._lanes[subject]

    async def _finish_in_flight(self) -> None:
        while self._lane_tasks:
            await asyncio.gather(*self._lane_tasks, return_exceptions=True)
        # Acks are fire-and-forget publishes; make sure they left before anyone closes NATS,
        # but never let a lost PONG hold the shutdown (acks not sent are redelivered anyway).
        with contextlib.suppress(Exception):
            await self._connection.client.flush(timeout=FLUSH_TIMEOUT_SECONDS)

    async def _process(self, message: Msg, queued: Iterable[Msg]) -> None:
        sequence, attempt = delivery_position(message.reply)
        if attempt > 1:
            self._metrics.redelivered.inc()
        if self._options.coalesce and superseded(sequence, queued) and self._decodes(message):
            await message.ack()
            self._metrics.acked.inc()
            self._metrics.coalesced.inc()
            return
        headers = message.headers or {}
        with message_context(
            event_id=headers.get(MSG_ID),
            object_key=message.subject,
            traceparent=headers.get(TRACEPARENT),
            consumer=self._spec.durable,
            stream_seq=sequence,
            attempt=attempt,
        ):
            started = time.perf_counter()
            outcome = await self._outcome(message, sequence, attempt, headers)
            result = await self._settle(message, outcome, sequence, attempt, headers)
            self._metrics.handler_seconds[result].observe(time.perf_counter() - started)

    def _decodes(self, message: Msg) -> bool:
        try:
            self._decode(message.data)
        except Exception:
            return False
        return True

    async def _outcome(
        self, message: Msg, sequence: int, attempt: int, headers: Mapping[str, str]
    ) -> Outcome:
        try:
            event = self._decode(message.data)
        except Exception as error:
            return Fail(f"undecodable message: {error}")
        delivery = Delivery(event, message.subject, sequence, attempt, headers)
        try:
            return await self._handler(delivery)
        except Exception as error:
            self._log.exception("handler_failed")
            return Retry(f"handler raised {error!r}")

    async def _settle(
        self,
        message: Msg,
        outcome: Outcome,
        sequence: int,
        attempt: int,
        headers: Mapping[str, str],
    ) -> str:
        settlement = settle(
            outcome,
            attempt=attempt,
            max_deliver=self._spec.max_deliver,
            backoff=self._options.backoff,
        )
        if isinstance(settlement, Ack):
            await message.ack()
            self._metrics.acked.inc()
            return "done"
        if isinstance(settlement, Nak):
            self._log.info(
                "retry_scheduled", reason=settlement.reason, delay=settlement.delay.total_seconds()
            )
            await message.nak(delay=settlement.delay.total_seconds())
            self._metrics.naked.inc()
            return "retry"
        return await self._terminate(message, settlement, sequence, attempt, headers)

    async def _terminate(
        self,
        message: Msg,
        settlement: Term,
        sequence: int,
        attempt: int,
        headers: Mapping[str, str],
    ) -> str:
        self._log.error("message_poisoned", reason=settlement.reason)
        poison = Poison(
            subject=message.subject,
            stream_sequence=sequence,
            attempt=attempt,
            headers=headers,
            data=message.data,
            reason=settlement.reason,
        )
        try:
            await self._on_poison(poison)
        except Exception:
            self._log.exception("poison_callback_failed")
            if attempt < self._spec.max_deliver:
                # Keep the message so the failure can still be recorded on a later delivery.
                await message.nak(delay=self._options.backoff.delay(attempt).total_seconds())
                self._metrics.naked.inc()
                return "retry"
        await message.term()
        self._metrics.terminated.inc()
        return "poison"

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """The last delivery was never settled (its holder crashed or hung past ack_wait), so
        no loop saw it fail and the server silently stopped delivering: report it as poison."""
        try:
            notice = json.loads(advisory.data)
            sequence = int(notice["stream_seq"])
            deliveries = int(notice.get("deliveries", self._spec.max_deliver))
        except (ValueError, KeyError, TypeError) as error:
            self._log.error("max_deliveries_advisory_unreadable", error=repr(error))
            return
        reason = (
            f"delivered {deliveries} times without being settled "
            "(the handler crashed or hung past ack_wait)"
        )
        try:
            stored = await self._connection.jsm.get_msg(self._stream, sequence)
            subject, data, headers = stored.subject or "", stored.data or b"", stored.headers
        except Exception as error:  # e.g. already removed by the stream's limits
            subject, data, headers = "", b"", None
            reason += f"; message no longer readable: {error!r}"
        with message_context(
            event_id=(headers or {}).get(MSG_ID),
            object_key=subject,
            traceparent=(headers or {}).get(TRACEPARENT),
            consumer=self._spec.durable,
            stream_seq=sequence,
            attempt=deliveries,
        ):
            self._log.error("message_poisoned", reason=reason)
            self._metrics.terminated.inc()
            poison = Poison(subject, sequence, deliveries, dict(headers or {}), data, reason)
            try:
                await self._on_poison(poison)
            except Exception:
                self._log.exception("poison_callback_failed")

    async def _keep_held_messages(self) -> None:
        """Long work, and messages queued behind it in their lane, must not time out and be
        redelivered to another replica while this one still holds them."""
        while True:
            await asyncio.sleep(self._heartbeat_every)
            since = time.monotonic() - self._heartbeat_every / 2
            for message in held_since(self._held, since):
                with contextlib.suppress(Exception):
                    await message.in_progress()


def held_since(held: Mapping[str, tuple[Msg, float]], since: float) -> list[Msg]:
    """The held messages fetched at or before `since`, which are due for `in_progress()`.

    A message fetched less than half a period before a heartbeat is first told of at the one
    after, so its first `in_progress()` comes at most 1.5 periods (half of `ack_wait`) after its
    fetch, plus the timer's lateness, instead of one period: that margin buys one publish less
    for every message settled within half a period."""
    return [message for message, fetched in held.values() if fetched <= since]


def superseded(sequence: int, queued: Iterable[Msg]) -> bool:
    """Whether a message of `queued` (its lane: later deliveries of the same subject) was stored
    after `sequence`. Order of delivery is not order of storage: a redelivered message comes
    behind later ones, and it is the later one that supersedes."""
    for message in queued:
        try:
            if delivery_position(message.reply)[0] > sequence:
                return True
        except ValueError:
            continue  # not an ack subject: it cannot be settled either, so it carries nothing
    return False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait a little before retrying, but never past a stop request."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
