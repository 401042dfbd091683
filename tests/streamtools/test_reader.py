"""The stream tools' reader against a real nats-server: what a read returns whichever filters
the server applies and whichever the reader applies itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from gati_contracts.subjects import STREAM, STREAM_SUBJECTS
from gati_runtime.ack_subject import ack_position
from gati_runtime.subject_filter import subject_matches
from gati_streamtools.positions import Position
from gati_streamtools.reader import read_range

SUBJECTS = (
    "gati.cr.gatihandler.shop.orders",
    "gati.cr.gativersion.shop.orders-v1",
    "gati.status.gatihandler.shop.orders",
    "gati.cr.gatimodule.shop.auth",
    "gati.routes.shop.orders",
    "gati.owned.deployment.shop.orders",
)
SERVICE = ["gati.cr.gatihandler.>", "gati.cr.gatimodule.>"]


async def record(client: Client, rounds: int = 3) -> dict[int, str]:
    """Every subject `rounds` times, in turn; the stream sequence of each with its subject."""
    stored: dict[int, str] = {}
    for round_ in range(rounds):
        for subject in SUBJECTS:
            ack = await client.jetstream().publish(subject, f"{subject} {round_}".encode())
            stored[ack.seq] = subject
    return stored


async def read(
    client: Client,
    filters: list[str],
    since: Position | None = None,
    until: Position | None = None,
) -> list[tuple[int, str]]:
    return [
        (message.sequence, message.subject)
        async for batch in read_range(client.jetstream(), STREAM, filters, since=since, until=until)
        for message in batch
    ]


@pytest.mark.parametrize(
    "filters",
    [
        SERVICE,
        list(STREAM_SUBJECTS),
        ["gati.>"],
        ["gati.cr.gatihandler.shop.orders", "gati.status.gatihandler.shop.orders"],
        ["gati.cr.*.shop.orders", "gati.owned.>"],
    ],
)
async def test_a_read_returns_what_its_filters_match_in_stream_order(
    gati_bus: Client, filters: list[str]
) -> None:
    stored = await record(gati_bus)
    expected = [
        (s, subject)
        for s, subject in stored.items()
        if any(subject_matches(f, subject) for f in filters)
    ]
    assert await read(gati_bus, filters) == expected


async def test_a_read_ends_at_until_even_when_the_message_there_is_not_wanted(
    gati_bus: Client,
) -> None:
    stored = await record(gati_bus)
    routes_of_round_two = [s for s, subject in stored.items() if "routes" in subject][1]
    got = await read(
        gati_bus, SERVICE, since=Position(sequence=2), until=Position(sequence=routes_of_round_two)
    )
    assert got == [
        (s, subject)
        for s, subject in stored.items()
        if 2 <= s <= routes_of_round_two and subject.startswith(("gati.cr.gatih", "gati.cr.gatim"))
    ]
    assert got[-1][0] < routes_of_round_two


async def test_a_read_of_nothing_ends(gati_bus: Client) -> None:
    assert await read(gati_bus, SERVICE) == []
    await gati_bus.jetstream().publish("gati.routes.shop.orders", b"only a route")
    assert await read(gati_bus, SERVICE) == []


async def test_a_read_keeps_stored_time_and_headers(gati_bus: Client) -> None:
    before = datetime.now(UTC)
    await gati_bus.jetstream().publish(SUBJECTS[0], b"x", headers={"Gati-Schema": "gati.change"})
    [[message]] = [b async for b in read_range(gati_bus.jetstream(), STREAM, SERVICE)]
    assert message.headers["Gati-Schema"] == "gati.change"
    assert before.timestamp() - 1 <= message.time.timestamp() <= datetime.now(UTC).timestamp()
    assert message.time.tzinfo is not None


async def test_a_missing_stream_is_not_found(gati_bus: Client) -> None:
    with pytest.raises(NotFoundError):
        await read_range(gati_bus.jetstream(), "NO_SUCH_STREAM", SERVICE).__anext__()


def test_the_ack_subject_gives_position_time_and_pending_as_nats_py_reads_them() -> None:
    for reply in (
        "$JS.ACK.GATI.c1.1.42.7.1764187200123456789.3",
        "$JS.ACK.hub.ACCHASH.GATI.c1.1.42.7.1764187200123456789.3.rand0m",
    ):
        metadata = Msg(_client=None, reply=reply).metadata  # type: ignore[arg-type]
        sequence, nanos, pending = ack_position(reply)
        assert (sequence, pending) == (metadata.sequence.stream, metadata.num_pending)
        assert datetime.fromtimestamp(nanos / 1e9, UTC) == metadata.timestamp
    with pytest.raises(ValueError, match="not a JetStream ack subject"):
        ack_position("_INBOX.abc")


async def test_one_objects_subjects_are_merged_in_stream_order_within_the_range(
    gati_bus: Client,
) -> None:
    stored = await record(gati_bus)
    subjects = [SUBJECTS[0], SUBJECTS[2]]
    since, until = 3, max(stored) - 4
    got = await read(
        gati_bus, subjects, since=Position(sequence=since), until=Position(sequence=until)
    )
    assert got == [
        (s, subj) for s, subj in stored.items() if since <= s <= until and subj in subjects
    ]


async def test_following_several_subjects_delivers_new_messages_in_stream_order(
    gati_bus: Client,
) -> None:
    subjects = [SUBJECTS[0], SUBJECTS[2]]
    # From sequence 1 on, so what is published before the consumer exists is delivered too.
    reading = read_range(
        gati_bus.jetstream(), STREAM, subjects, since=Position(sequence=1), follow=True
    )
    first = asyncio.ensure_future(reading.__anext__())
    published = [
        (await gati_bus.jetstream().publish(subject, b"x")).seq
        for subject in (SUBJECTS[2], SUBJECTS[1], SUBJECTS[0])
    ]
    got = [m.sequence for m in await first]
    while len(got) < 2:
        got += [m.sequence for m in await reading.__anext__()]
    await reading.aclose()
    assert got == [published[0], published[2]]
