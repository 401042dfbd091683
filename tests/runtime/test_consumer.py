"""The consumer loop against a real server: retries, poison, order, heartbeats, drain, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import BadSubscriptionError
from prometheus_client import REGISTRY

from fixtures.nats_server import PrivateBus
from gati_contracts.subjects import STREAM
from gati_runtime.ack_subject import delivery_position
from gati_runtime.consumer import (
    MAX_DELIVERIES_ADVISORY,
    ConsumerLoop,
    ConsumerOptions,
    Delivery,
    Poison,
    PoisonCallback,
    held_since,
    superseded,
)
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.outcomes import DONE, Backoff, Fail, Outcome, Retry
from gati_runtime.provisioning import ConsumerSpec, ensure_consumer

FAST = ConsumerOptions(
    fetch_timeout=0.5,
    backoff=Backoff(base=timedelta(milliseconds=20), cap=timedelta(milliseconds=100)),
)
WAIT = 10.0

Handler = Callable[[Delivery[Any]], Awaitable[Outcome]]


class Poisoned:
    def __init__(self) -> None:
        self.items: list[Poison] = []
        self.arrived = asyncio.Event()

    async def __call__(self, poison: Poison) -> None:
        self.items.append(poison)
        self.arrived.set()


class Recorder:
    """A handler that records each event's `n` and lets the test await the next arrival."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self._arrived = asyncio.Event()

    async def __call__(self, delivery: Delivery[Any]) -> Outcome:
        self.seen.append(delivery.event["n"])
        self._arrived.set()
        return DONE

    async def next_arrival(self) -> None:
        await _within(self._arrived.wait(), f"message after {self.seen}")
        self._arrived.clear()

    async def arrival_of(self, n: int) -> None:
        """Until `n` has arrived, whatever arrives first: a replay can bring earlier ones."""
        while n not in self.seen:
            await self.next_arrival()


@asynccontextmanager
async def running(
    connection: NatsConnection,
    handler: Handler,
    *,
    durable: str = "test",
    max_deliver: int = 5,
    ack_wait: timedelta = timedelta(seconds=30),
    on_poison: PoisonCallback | None = None,
    decode: Callable[[bytes], Any] = json.loads,
    options: ConsumerOptions = FAST,
    filter_on_server: bool = True,
) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    spec = ConsumerSpec(
        durable=durable,
        filter_subjects=("gati.cr.>",),
        max_deliver=max_deliver,
        ack_wait=ack_wait,
        filter_on_server=filter_on_server,
    )
    loop = ConsumerLoop(
        connection,
        STREAM,
        spec,
        decode=decode,
        handler=handler,
        on_poison=on_poison or Poisoned(),
        options=options,
    )
    task = asyncio.create_task(loop.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await _within(task, "consumer loop stop")


async def _within(step: Awaitable[object], what: str) -> None:
    """Like wait_for, but a timeout says which step of a multi-step test stalled."""
    try:
        await asyncio.wait_for(step, WAIT)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {WAIT}s") from None


async def publish(connection: NatsConnection, subject: str, body: object) -> int:
    ack = await connection.js.publish(subject, json.dumps(body).encode())
    return ack.seq


async def pending(connection: NatsConnection, durable: str = "test") -> int:
    info = await connection.jsm.consumer_info(STREAM, durable)
    return info.num_ack_pending or 0


def metric(name: str, durable: str = "test") -> float:
    return REGISTRY.get_sample_value(name, {"consumer": durable}) or 0.0


async def test_redelivers_after_nak_then_acks(gati_connection: NatsConnection) -> None:
    attempts: list[int] = []
    finished = asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        attempts.append(delivery.attempt)
        if delivery.attempt == 1:
            return Retry("not yet", after=timedelta(milliseconds=50))
        finished.set()
        return DONE

    naked_before = metric("gati_consumer_naked_total")
    async with running(gati_connection, handler):
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {"n": 1})
        await asyncio.wait_for(finished.wait(), WAIT)
    assert attempts == [1, 2]
    assert await pending(gati_connection) == 0
    assert metric("gati_consumer_naked_total") == naked_before + 1


async def test_a_durable_filtered_in_the_client_acks_what_is_not_its_own_unread(
    gati_connection: NatsConnection,
) -> None:
    recorder, poisoned = Recorder(), Poisoned()
    foreign_before = metric("gati_consumer_foreign_total")
    async with running(gati_connection, recorder, on_poison=poisoned, filter_on_server=False):
        # Not JSON: had it reached the decoder it would be poison.
        await gati_connection.js.publish("gati.status.gatihandler.default.api", b"not json")
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {"n": 1})
        await recorder.arrival_of(1)
    assert recorder.seen == [1]
    assert poisoned.items == []
    assert metric("gati_consumer_foreign_total") == foreign_before + 1
    info = await gati_connection.jsm.consumer_info(STREAM, "test")
    assert (info.config.filter_subject, info.config.filter_subjects) == (None, None)
    assert (info.num_ack_pending, info.num_pending) == (0, 0)


async def test_handler_exception_is_retried(gati_connection: NatsConnection) -> None:
    finished = asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        if delivery.attempt == 1:
            raise RuntimeError("API server hiccup")
        finished.set()
        return DONE

    async with running(gati_connection, handler):
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {})
        await asyncio.wait_for(finished.wait(), WAIT)
    assert await pending(gati_connection) == 0


async def test_terminates_after_max_deliver_and_reports_poison(
    gati_connection: NatsConnection,
) -> None:
    poisoned = Poisoned()
    attempts: list[int] = []

    async def handler(delivery: Delivery[Any]) -> Outcome:
        attempts.append(delivery.attempt)
        return Retry("still broken")

    terminated_before = metric("gati_consumer_terminated_total")
    async with running(gati_connection, handler, max_deliver=3, on_poison=poisoned):
        seq = await publish(gati_connection, "gati.cr.gatimodule.default.m", {"x": 1})
        await asyncio.wait_for(poisoned.arrived.wait(), WAIT)
    assert attempts == [1, 2, 3]
    [poison] = poisoned.items
    assert poison.stream_sequence == seq
    assert poison.attempt == 3
    assert poison.reason == "gave up after 3 deliveries: still broken"
    assert json.loads(poison.data) == {"x": 1}
    assert await pending(gati_connection) == 0
    assert metric("gati_consumer_terminated_total") == terminated_before + 1


async def test_undecodable_and_failed_messages_are_poison_at_once(
    gati_connection: NatsConnection,
) -> None:
    poisoned = Poisoned()
    handled: list[object] = []

    async def handler(delivery: Delivery[Any]) -> Outcome:
        handled.append(delivery.event)
        return Fail("spec.port: must be 1..65535")

    async with running(gati_connection, handler, on_poison=poisoned):
        await gati_connection.js.publish("gati.cr.gatihandler.default.bad", b"{not json")
        await publish(gati_connection, "gati.cr.gatihandler.default.invalid", {"port": 0})
        while len(poisoned.items) < 2:
            poisoned.arrived.clear()
            await asyncio.wait_for(poisoned.arrived.wait(), WAIT)
    reasons = {p.subject.rsplit(".", 1)[1]: p for p in poisoned.items}
    assert reasons["bad"].reason.startswith("undecodable message:")
    assert reasons["bad"].data == b"{not json"
    assert reasons["invalid"].reason == "spec.port: must be 1..65535"
    assert {p.attempt for p in poisoned.items} == {1}
    assert handled == [{"port": 0}]


async def test_poison_callback_failure_keeps_the_message(gati_connection: NatsConnection) -> None:
    calls: list[int] = []
    recorded = asyncio.Event()

    async def flaky_poison(poison: Poison) -> None:
        calls.append(poison.attempt)
        if poison.attempt == 1:
            raise RuntimeError("status write failed")
        recorded.set()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        return Fail("bad")

    async with running(gati_connection, handler, on_poison=flaky_poison):
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {})
        await asyncio.wait_for(recorded.wait(), WAIT)
    assert calls == [1, 2]


async def test_same_subject_in_order_one_at_a_time_others_concurrently(
    gati_connection: NatsConnection,
) -> None:
    subjects = [f"gati.cr.gatihandler.default.h{i}" for i in range(4)]
    seen: dict[str, list[int]] = {subject: [] for subject in subjects}
    active: dict[str, int] = dict.fromkeys(subjects, 0)
    overlap = {"same": 0, "across": 0}
    total = 40
    finished = asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        active[delivery.subject] += 1
        overlap["same"] = max(overlap["same"], active[delivery.subject])
        overlap["across"] = max(overlap["across"], sum(1 for n in active.values() if n))
        for _ in range(3):
            await asyncio.sleep(0)  # yield so other lanes get a chance to run meanwhile
        seen[delivery.subject].append(delivery.event["n"])
        active[delivery.subject] -= 1
        if sum(len(v) for v in seen.values()) == total:
            finished.set()
        return DONE

    for n in range(total):
        await publish(gati_connection, subjects[n % len(subjects)], {"n": n})
    async with running(gati_connection, handler):
        await asyncio.wait_for(finished.wait(), WAIT)
    for subject in subjects:
        assert seen[subject] == sorted(seen[subject])
        assert len(seen[subject]) == total // len(subjects)
    assert overlap["same"] == 1
    assert overlap["across"] > 1


async def test_long_work_and_its_queued_successor_keep_their_messages(
    gati_connection: NatsConnection,
) -> None:
    attempts: list[tuple[int, int]] = []
    finished = asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        attempts.append((delivery.event["n"], delivery.attempt))
        if delivery.event["n"] == 1:
            await asyncio.sleep(1.6)  # the work itself: longer than ack_wait
        else:
            finished.set()
        return DONE

    async with running(gati_connection, handler, ack_wait=timedelta(seconds=1)):
        # The second waits in the same lane for longer than ack_wait, too.
        await publish(gati_connection, "gati.cr.gatihandler.default.slow", {"n": 1})
        await publish(gati_connection, "gati.cr.gatihandler.default.slow", {"n": 2})
        await asyncio.wait_for(finished.wait(), WAIT)
    assert attempts == [(1, 1), (2, 1)]
    assert await pending(gati_connection) == 0


async def test_stop_finishes_and_acks_in_flight_work(gati_connection: NatsConnection) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[int] = []

    async def handler(delivery: Delivery[Any]) -> Outcome:
        started.set()
        await release.wait()
        finished.append(delivery.stream_sequence)
        return DONE

    stop = asyncio.Event()
    spec = ConsumerSpec(durable="drain", filter_subjects=("gati.cr.>",))
    loop = ConsumerLoop(
        gati_connection,
        STREAM,
        spec,
        decode=json.loads,
        handler=handler,
        on_poison=Poisoned(),
        options=FAST,
    )
    task = asyncio.create_task(loop.run(stop))
    seq = await publish(gati_connection, "gati.cr.gatihandler.default.api", {})
    await asyncio.wait_for(started.wait(), WAIT)
    stop.set()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the handler
    release.set()
    await asyncio.wait_for(task, WAIT)
    assert finished == [seq]
    assert await pending(gati_connection, "drain") == 0


class _Observed(ConsumerLoop[Any]):
    """A loop that says when its stop reached the drain of in-flight work, and which task
    keeps its held messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = asyncio.Event()
        self.heartbeats: asyncio.Task[Any] | None = None

    async def _keep_held_messages(self) -> None:
        self.heartbeats = asyncio.current_task()
        await super()._keep_held_messages()

    async def _finish_in_flight(self) -> None:
        self.draining.set()
        await super()._finish_in_flight()


async def test_a_cancel_during_the_drain_still_ends_heartbeats_and_the_advisory_subscription(
    gati_connection: NatsConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service cut short (grace overrun) cancels its consumer loop while it waits for the
    handlers it holds; the loop must not leave its heartbeat task or its queue-group interest
    in max-deliveries advisories behind."""
    client = gati_connection.client
    subscriptions: dict[str, Subscription] = {}
    subscribe = client.subscribe

    async def recorded(subject: str, **options: Any) -> Subscription:
        subscriptions[subject] = await subscribe(subject, **options)
        return subscriptions[subject]

    monkeypatch.setattr(client, "subscribe", recorded)
    started = asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        started.set()
        await asyncio.Event().wait()  # still working when the cut comes
        return DONE

    stop = asyncio.Event()
    spec = ConsumerSpec(durable="cut", filter_subjects=("gati.cr.>",))
    loop = _Observed(
        gati_connection, STREAM, spec, decode=json.loads, handler=handler, on_poison=Poisoned()
    )
    task = asyncio.create_task(loop.run(stop))
    await publish(gati_connection, "gati.cr.gatihandler.default.cut", {})
    await _within(started.wait(), "delivery to the handler")
    stop.set()
    await _within(loop.draining.wait(), "the drain of in-flight work")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await _within(task, "the cancelled loop's end")
    assert loop.heartbeats is not None
    await asyncio.wait({loop.heartbeats}, timeout=WAIT)
    assert loop.heartbeats.done(), "the heartbeat task outlived its loop"
    advisories = subscriptions[f"{MAX_DELIVERIES_ADVISORY}.{STREAM}.cut"]
    with pytest.raises(BadSubscriptionError):  # already unsubscribed by the loop
        await advisories.unsubscribe()


async def test_keeps_consuming_after_the_server_restarts(private_bus: PrivateBus) -> None:
    server, connection = private_bus.server, private_bus.connection
    recorder = Recorder()
    async with running(connection, recorder):
        await publish(connection, "gati.cr.gatihandler.default.api", {"n": 1})
        await recorder.next_arrival()
        generation = connection.generation
        server.restart()
        await _within(connection.wait_reconnected(), "client reconnect")
        assert connection.generation == generation + 1
        await publish(connection, "gati.cr.gatihandler.default.api", {"n": 2})
        await recorder.next_arrival()
    assert recorder.seen == [1, 2]


async def test_recreates_its_durable_when_it_disappears(gati_connection: NatsConnection) -> None:
    recorder = Recorder()
    async with running(gati_connection, recorder):
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {"n": 1})
        await recorder.next_arrival()
        await gati_connection.jsm.delete_consumer(STREAM, "test")  # e.g. an operator's mistake
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {"n": 2})
        # Not the next arrival: recreated with DeliverPolicy.ALL, the durable replays the log
        # (handlers are idempotent by design), and when it is recreated before 2 is stored,
        # the replayed 1 arrives alone first.
        await recorder.arrival_of(2)
    assert recorder.seen[0] == 1
    assert recorder.seen[-1] == 2


async def test_a_failed_ack_does_not_strand_the_rest_of_its_lane(private_bus: PrivateBus) -> None:
    connection = private_bus.connection
    seen: list[int] = []
    both = asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        seen.append(delivery.event["n"])
        if delivery.event["n"] == 1:
            await connection.client.close()  # the ack of this message will fail
        if len(seen) == 2:
            both.set()
        return DONE

    for n in (1, 2):
        await publish(connection, "gati.cr.gatihandler.default.api", {"n": n})
    async with running(connection, handler):
        await _within(both.wait(), "second message of the lane")
    assert seen == [1, 2]


async def test_a_last_delivery_lost_with_its_replica_still_reaches_the_poison_callback(
    gati_connection: NatsConnection,
) -> None:
    spec = ConsumerSpec(
        durable="test", filter_subjects=("gati.cr.>",), max_deliver=1, ack_wait=timedelta(seconds=1)
    )
    await ensure_consumer(gati_connection.jsm, STREAM, spec)
    seq = await publish(gati_connection, "gati.cr.gatihandler.default.api", {"n": 1})
    # A replica takes the only delivery allowed and dies before settling it.
    doomed = await gati_connection.js.pull_subscribe_bind(durable="test", stream=STREAM)
    assert len(await doomed.fetch(1, timeout=WAIT)) == 1
    await doomed.unsubscribe()

    poisoned = Poisoned()
    handled: list[int] = []

    async def handler(delivery: Delivery[Any]) -> Outcome:
        handled.append(delivery.stream_sequence)
        return DONE

    async with running(
        gati_connection, handler, max_deliver=1, ack_wait=spec.ack_wait, on_poison=poisoned
    ):
        await _within(poisoned.arrived.wait(), "max-deliveries advisory")
    [poison] = poisoned.items
    assert (poison.stream_sequence, poison.attempt) == (seq, 1)
    assert poison.subject == "gati.cr.gatihandler.default.api"
    assert json.loads(poison.data) == {"n": 1}
    assert "without being settled" in poison.reason
    assert handled == []


async def test_idle_pulls_expire_and_are_asked_again_without_errors(
    gati_connection: NatsConnection,
) -> None:
    """Pulled by JetStream's own requests: a request for the next message expires on an idle
    consumer (the server's 408 ends it, no client timeout), the loop asks again, and messages
    pending in numbers come in one request and are all handled."""
    errors = metric("gati_consumer_fetch_errors_total")
    recorder = Recorder()
    options = ConsumerOptions(fetch_timeout=0.1, backoff=FAST.backoff)
    async with running(gati_connection, recorder, options=options):
        await publish(gati_connection, "gati.cr.gatihandler.default.api", {"n": 1})
        await recorder.next_arrival()
        await asyncio.sleep(0.5)  # the point is several request expiries with nothing pending
        for n in range(2, 12):
            await publish(gati_connection, f"gati.cr.gatihandler.default.a{n}", {"n": n})
        await _polled(lambda: _seen_all(recorder, 11), "ten messages published at once")
    assert sorted(recorder.seen) == list(range(1, 12))
    assert metric("gati_consumer_fetch_errors_total") == errors
    assert await pending(gati_connection) == 0


async def _seen_all(recorder: Recorder, count: int) -> bool:
    return len(recorder.seen) == count


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.GATI.reconciler.3.1234.77.1700000000000000000.5",
        "$JS.ACK._.ACCHASH.GATI.reconciler.3.1234.77.1700000000000000000.5.tok",
        "$JS.ACK.hub.ACCHASH.GATI.reconciler.1.9.9.1700000000000000000.0",
    ],
)
def test_delivery_position_reads_what_nats_py_reads(reply: str) -> None:
    metadata = Msg(None, subject="x", reply=reply).metadata  # type: ignore[arg-type]
    assert delivery_position(reply) == (metadata.sequence.stream, metadata.num_delivered)


@pytest.mark.parametrize("reply", ["_INBOX.abc.def", "$JS.ACK.GATI.reconciler.3", ""])
def test_a_reply_that_is_no_ack_subject_is_named_in_the_error(reply: str) -> None:
    with pytest.raises(ValueError, match="not a JetStream ack subject"):
        delivery_position(reply)


def test_only_messages_held_since_the_cut_are_due_for_in_progress() -> None:
    """A message settled within half a heartbeat period is never told of: no publish for it."""
    old, at_cut, fresh = (Msg(None, subject="x", reply=f"r{i}") for i in range(3))  # type: ignore[arg-type]
    held = {"r0": (old, 10.0), "r1": (at_cut, 12.5), "r2": (fresh, 12.6)}
    assert held_since(held, 12.5) == [old, at_cut]
    assert held_since({}, 12.5) == []


def _ack_reply(stream_sequence: int) -> Msg:
    reply = f"$JS.ACK.GATI.reconciler.1.{stream_sequence}.{stream_sequence}.1700000000000000000.0"
    return Msg(None, subject="x", reply=reply)  # type: ignore[arg-type]


def test_a_message_is_superseded_only_by_a_later_stored_one() -> None:
    assert superseded(5, [_ack_reply(7)])
    assert not superseded(7, [_ack_reply(5)])  # a redelivery queued behind a newer message
    assert not superseded(5, [])
    assert superseded(5, [Msg(None, subject="x", reply="_INBOX.x"), _ack_reply(6)])  # type: ignore[arg-type]


async def _coalescing_run(
    connection: NatsConnection, second: bytes, poisoned: Poisoned
) -> list[int]:
    """A coalescing consumer handles `{"n": 1}` while `second` and `{"n": 3}` of the same
    subject are fetched behind it; what reached the handler, by `n`."""
    seen: list[int] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(delivery: Delivery[Any]) -> Outcome:
        seen.append(delivery.event["n"])
        started.set()
        await release.wait()
        return DONE

    delivered = metric("gati_consumer_delivered_total")

    async def all_three_held() -> bool:  # in this process, not just sent by the server
        return metric("gati_consumer_delivered_total") - delivered == 3

    subject = "gati.cr.gatihandler.default.api"
    options = ConsumerOptions(fetch_timeout=0.5, backoff=FAST.backoff, coalesce=True)
    async with running(connection, handler, options=options, on_poison=poisoned):
        await publish(connection, subject, {"n": 1})
        await _within(started.wait(), "the first message handled")
        await connection.js.publish(subject, second)
        await publish(connection, subject, {"n": 3})
        await _polled(all_three_held, "the next two fetched behind the first")
        release.set()
    return seen


async def test_coalescing_hands_over_only_the_newest_of_what_a_subject_has_queued(
    gati_connection: NatsConnection,
) -> None:
    before = metric("gati_consumer_coalesced_total")
    seen = await _coalescing_run(gati_connection, json.dumps({"n": 2}).encode(), Poisoned())
    assert seen == [1, 3]
    assert metric("gati_consumer_coalesced_total") - before == 1
    assert await pending(gati_connection) == 0  # the skipped one was acked too


async def test_coalescing_never_waves_garbage_through_behind_a_good_message(
    gati_connection: NatsConnection,
) -> None:
    """A later event of the subject makes a good one redundant, not a bad one: garbage is still
    terminated and reported, whatever follows it."""
    coalesced = metric("gati_consumer_coalesced_total")
    terminated = metric("gati_consumer_terminated_total")
    poisoned = Poisoned()
    assert await _coalescing_run(gati_connection, b"\xff not json", poisoned) == [1, 3]
    assert metric("gati_consumer_coalesced_total") == coalesced
    assert metric("gati_consumer_terminated_total") - terminated == 1
    assert [poison.data for poison in poisoned.items] == [b"\xff not json"]


async def _polled(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """For server state no event announces: ask every 10 ms, up to WAIT."""
    for _ in range(int(WAIT / 0.01)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} did not happen within {WAIT}s")
