"""The publish pipeline against a real nats-server: many in flight yet in order per subject,
the expected last subject sequence honoured, and a change the stream cannot take given up
without a crash (and without a relist when it is no failure of the stream)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from nats.aio.client import Client

from gati_contracts.events import ChangeType
from gati_contracts.subjects import STREAM, cr_subject
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.publisher import Publisher
from gati_watcher.checkpoint import last_events
from gati_watcher.envelope import Outgoing, outgoing
from gati_watcher.pipeline import Outcome, PublishPipeline, Result
from watcher.helpers import handler, sample, stream_tail


def change(name: str, rv: str, *, subject: str | None = None, filler: int = 0) -> Outgoing:
    obj = handler("ns", name) | {
        "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": rv}
    }
    if filler:
        obj["spec"] = obj["spec"] | {"env": {"FILLER": "x" * filler}}
    return outgoing(
        ChangeType.MODIFIED,
        subject or cr_subject("GatiHandler", "ns", name),
        obj,
        source="t",
        observed_at=datetime.now(UTC),
    )


async def test_many_in_flight_keep_the_order_of_each_subject(
    gati_bus: Client, gati_connection: NatsConnection
) -> None:
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    outcomes: list[Outcome] = []
    async with stream_tail(gati_bus) as tail:
        for i in range(300):
            pipeline.submit(change(f"o{i % 5}", str(i + 1)), None, outcomes.append)
        await pipeline.drain()
        await tail.wait_for(lambda events: len(events) == 300)
    assert {outcome.result for outcome in outcomes} == {Result.STORED}
    for name in (f"o{k}" for k in range(5)):
        assert [int(e.resource_version) for e in tail.of(name)] == list(
            range(int(name[1]) + 1, 301, 5)
        )
    assert pipeline.failures == 0


async def test_held_changes_are_sent_by_the_holder_or_on_release_in_order(
    gati_bus: Client, gati_connection: NatsConnection
) -> None:
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    outcomes: list[Outcome] = []
    async with stream_tail(gati_bus) as tail:
        pipeline.hold()
        for i in range(20):
            pipeline.submit(change(f"o{i % 2}", str(i + 1)), None, outcomes.append)
        await asyncio.sleep(0.05)
        assert not outcomes  # nothing sent while held
        await pipeline.send_held()  # from this task; the rest follows their PubAcks
        await pipeline.drain()
        pipeline.hold()
        pipeline.submit(change("o0", "21"), None, outcomes.append)
        pipeline.release()  # e.g. the watch ended: the sender task takes over
        await pipeline.drain()
        await tail.wait_for(lambda events: len(events) == 21)
    assert [outcome.result for outcome in outcomes] == [Result.STORED] * 21
    assert [int(e.resource_version) for e in tail.of("o0")] == [*range(1, 20, 2), 21]
    assert [int(e.resource_version) for e in tail.of("o1")] == list(range(2, 21, 2))


async def test_expected_last_subject_sequence_decides_the_outcome(
    gati_connection: NatsConnection,
) -> None:
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    subject = cr_subject("GatiHandler", "ns", "a")

    def message(rv: str) -> Outgoing:
        return change("a", rv)

    first = await pipeline.publish(message("1"), expect_last=0)
    assert first.result is Result.STORED
    assert first.sequence
    stale = await pipeline.publish(message("2"), expect_last=0)
    assert stale.result is Result.CONFLICT
    second = await pipeline.publish(message("2"), expect_last=first.sequence)
    assert second.result is Result.STORED
    assert second.sequence == first.sequence + 1
    checkpoint = await last_events(gati_connection.js, STREAM, [subject])
    assert checkpoint.sequences == {subject: second.sequence}


async def test_a_guarded_publish_sends_the_event_headers_then_the_expected_sequence(
    gati_connection: NatsConnection,
) -> None:
    """The headers on the wire are the event's, in their order, with the expected last
    sequence after them; the event's own headers, shared by its retries, stay as they were.
    Read back from the stream, which keeps a message's headers as they came (a core
    subscription to see them missed its message once in a few full runs of tests/watcher)."""
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    message = change("h", "1")
    own = dict(message.headers)
    outcome = await pipeline.publish(message, expect_last=lambda: 0)
    assert outcome.result is Result.STORED
    assert outcome.sequence is not None
    stored = await gati_connection.jsm.get_msg(STREAM, outcome.sequence, direct=True)
    sent = list((stored.headers or {}).items())[: len(own) + 1]  # a direct get appends its own
    assert sent == [*own.items(), ("Nats-Expected-Last-Subject-Sequence", "0")]
    assert message.headers == own


async def test_a_stored_change_counts_under_its_kind_and_change_type(
    gati_connection: NatsConnection,
) -> None:
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    labels = {"kind": "GatiHandler", "type": "MODIFIED"}
    before = sample("gati_watcher_events_published_total", **labels)
    outcome = await pipeline.publish(change("counted", "1"))
    assert outcome.result is Result.STORED
    assert sample("gati_watcher_events_published_total", **labels) >= before + 1


async def test_the_expected_sequence_is_checked_before_de_duplication(
    gati_connection: NatsConnection,
) -> None:
    """nats-server refuses a duplicate whose expected last subject sequence is stale before it
    would find the duplicate: a replica that repeats a change another replica stored gets a
    conflict, not the original's sequence. A duplicate expecting the true last sequence is
    acknowledged with the original's. The watcher's conflict path relies on both."""
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    duplicates = sample("gati_watcher_duplicates_total", kind="GatiHandler")
    first = await pipeline.publish(change("d", "1"), expect_last=0)
    assert first.sequence
    second = await pipeline.publish(change("d", "2"), expect_last=first.sequence)
    assert second.sequence
    for stale in (0, first.sequence, second.sequence + 100):
        for rv in ("1", "2"):
            refused = await pipeline.publish(change("d", rv), expect_last=stale)
            assert refused.result is Result.CONFLICT, (rv, stale)
    known = {"seq": first.sequence}  # read when sent, as a watch's remembered sequence is
    known["seq"] = second.sequence
    repeated = await pipeline.publish(change("d", "1"), expect_last=lambda: known["seq"])
    assert repeated == Outcome(Result.STORED, first.sequence)
    again = await pipeline.publish(change("d", "2"), expect_last=lambda: known["seq"])
    assert again == Outcome(Result.STORED, second.sequence)
    assert sample("gati_watcher_duplicates_total", kind="GatiHandler") == duplicates + 2
    assert pipeline.failures == 0


async def test_a_change_too_large_for_the_server_is_skipped_and_the_subject_goes_on(
    gati_connection: NatsConnection,
) -> None:
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), asyncio.Event())
    skipped = sample("gati_watcher_skipped_total", kind="GatiHandler", reason="too-large")
    limit = gati_connection.client.max_payload
    too_large = await pipeline.publish(change("big", "1", filler=limit + 1))
    after = await pipeline.publish(change("big", "2"))
    assert too_large.result is Result.DROPPED
    assert after.result is Result.STORED
    assert (
        sample("gati_watcher_skipped_total", kind="GatiHandler", reason="too-large") == skipped + 1
    )
    assert pipeline.failures == 0


async def test_a_change_no_stream_takes_is_retried_and_dropped_at_shutdown(
    gati_connection: NatsConnection,
) -> None:
    stop = asyncio.Event()
    stop.set()  # shutting down: the first retry gives up instead of waiting out its backoff
    pipeline = PublishPipeline(gati_connection.client, Publisher(gati_connection), stop)
    retries = sample("gati_publish_retries_total")
    outcome = await pipeline.publish(change("x", "1", subject="nowhere.x"))
    assert outcome.result is Result.DROPPED
    assert sample("gati_publish_retries_total") == retries + 1
    assert pipeline.failures == 0
