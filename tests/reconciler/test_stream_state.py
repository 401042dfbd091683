"""The per-subject sequence guard against a real JetStream stream: what `is_newest` answers for
the newest, a superseded and a removed message, with other subjects' messages in between."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from gati_contracts.events import ChangeEvent, ChangeType, encode_event
from gati_contracts.kinds import DEPLOYMENT
from gati_contracts.subjects import STREAM, owned_subject
from gati_reconciler.stream_state import StreamState

API = owned_subject(DEPLOYMENT.kind, "default", "api")
WEB = owned_subject(DEPLOYMENT.kind, "default", "web")


async def _store(client: Client, subject: str) -> int:
    return (await client.jetstream().publish(subject, b"{}")).seq


async def test_a_message_is_newest_until_its_subject_stores_another(gati_bus: Client) -> None:
    streams = StreamState(gati_bus, STREAM)
    first = await _store(gati_bus, API)
    await _store(gati_bus, WEB)  # other subjects' messages after it change nothing

    assert await streams.is_newest(API, first)

    second = await _store(gati_bus, API)
    assert not await streams.is_newest(API, first)
    assert await streams.is_newest(API, second)


async def test_a_removed_message_is_judged_by_what_came_after_it(gati_bus: Client) -> None:
    """The stream's limits drop the oldest messages first: one gone with nothing after it was
    still the newest state recorded; one gone with a successor is superseded."""
    streams = StreamState(gati_bus, STREAM)
    manager = gati_bus.jsm()
    alone = await _store(gati_bus, WEB)
    await manager.delete_msg(STREAM, alone)
    assert await streams.is_newest(WEB, alone)

    old = await _store(gati_bus, API)
    await _store(gati_bus, API)
    await manager.delete_msg(STREAM, old)
    assert not await streams.is_newest(API, old)


async def test_latest_is_the_last_change_stored_on_the_subject(gati_bus: Client) -> None:
    streams = StreamState(gati_bus, STREAM)
    assert await streams.latest(API) is None  # nothing stored yet
    events = [
        ChangeEvent.of(
            change,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "default", "uid": "u1"}
                | {"resourceVersion": version},
            },
            source="test",
            observed_at=datetime.now(UTC),
        )
        for change, version in ((ChangeType.ADDED, "1"), (ChangeType.MODIFIED, "2"))
    ]
    for event in events:
        await gati_bus.jetstream().publish(API, encode_event(event))
    await _store(gati_bus, WEB)
    assert await streams.latest(API) == events[-1]


async def test_a_read_of_a_stream_nobody_serves_fails_instead_of_finding_nothing(
    gati_bus: Client,
) -> None:
    """A missing stream is not an empty history: the read fails, and the reconcile is retried."""
    with pytest.raises(NoRespondersError):
        await StreamState(gati_bus, "NO_SUCH_STREAM").latest(API)


async def test_reads_sent_together_each_get_their_own_answer(gati_bus: Client) -> None:
    """Reads sent without waiting (one socket write) are told apart by their reply subjects."""
    streams = StreamState(gati_bus, STREAM)
    first = await _store(gati_bus, API)
    second = await _store(gati_bus, API)
    only = await _store(gati_bus, WEB)
    newest = [
        await streams.ask_newest(API, first),
        await streams.ask_newest(API, second),
        await streams.ask_newest(WEB, only),
    ]
    latest = await streams.ask_latest(owned_subject(DEPLOYMENT.kind, "default", "none"))
    version = await streams.ask_version("default", "none")
    assert [await answer.result() for answer in newest] == [False, True, True]
    assert await latest.result() is None
    assert await version.result() is None


async def test_an_unanswered_read_times_out_and_a_discarded_one_is_forgotten(
    gati_bus: Client,
) -> None:
    """A server that never answers (here a silent subscriber standing in for the stream) fails
    the read with nats-py's TimeoutError, as its request did; a read discarded before its
    answer came is dropped without a trace."""
    silent = await gati_bus.subscribe("$JS.API.DIRECT.GET.SILENT.>")
    streams = StreamState(gati_bus, "SILENT", timeout=0.05)
    with pytest.raises(NatsTimeoutError):
        await streams.latest(API)
    discarded = await streams.ask_latest(API)
    discarded.discard()
    answered = await StreamState(gati_bus, STREAM).ask_latest(API)
    answered.discard()  # answered or not, nothing is reported for it
    await silent.unsubscribe()
