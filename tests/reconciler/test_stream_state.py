"""The per-subject sequence guard against a real JetStream stream: what `is_newest` answers for
the newest, a superseded and a removed message, with other subjects' messages in between."""

from __future__ import annotations

from nats.aio.client import Client

from gati_contracts.kinds import DEPLOYMENT
from gati_contracts.subjects import STREAM, owned_subject
from gati_reconciler.stream_state import StreamState

API = owned_subject(DEPLOYMENT.kind, "default", "api")
WEB = owned_subject(DEPLOYMENT.kind, "default", "web")


async def _store(client: Client, subject: str) -> int:
    return (await client.jetstream().publish(subject, b"{}")).seq


async def test_a_message_is_newest_until_its_subject_stores_another(gati_bus: Client) -> None:
    streams = StreamState(gati_bus.jetstream(), STREAM)
    first = await _store(gati_bus, API)
    await _store(gati_bus, WEB)  # other subjects' messages after it change nothing

    assert await streams.is_newest(API, first)

    second = await _store(gati_bus, API)
    assert not await streams.is_newest(API, first)
    assert await streams.is_newest(API, second)


async def test_a_removed_message_is_judged_by_what_came_after_it(gati_bus: Client) -> None:
    """The stream's limits drop the oldest messages first: one gone with nothing after it was
    still the newest state recorded; one gone with a successor is superseded."""
    streams = StreamState(gati_bus.jetstream(), STREAM)
    manager = gati_bus.jsm()
    alone = await _store(gati_bus, WEB)
    await manager.delete_msg(STREAM, alone)
    assert await streams.is_newest(WEB, alone)

    old = await _store(gati_bus, API)
    await _store(gati_bus, API)
    await manager.delete_msg(STREAM, old)
    assert not await streams.is_newest(API, old)
