"""The small pure parts: watch policy, inactivity timeout, envelope and trace context, options,
targets, and the hand-off's backpressure (no servers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gati_contracts.events import ChangeEvent, ChangeType, EventDecodeError, decode_event
from gati_contracts.headers import MSG_ID
from gati_contracts.subjects import ObjectSubject, parse_subject
from gati_watcher.envelope import outgoing, traceparent
from gati_watcher.handoff import Handoff, HandoffClosedError
from gati_watcher.policy import Inactivity, Next, WatchEnd, next_step
from gati_watcher.targets import MANAGED_SELECTOR, watch_targets
from gati_watcher.watcher import WatcherOptions

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("end", "step"),
    [
        (WatchEnd.CLOSED, Next.REWATCH),
        (WatchEnd.SILENT, Next.REWATCH),
        (WatchEnd.FAILED, Next.REWATCH),
        (WatchEnd.EXPIRED, Next.RELIST),
        (WatchEnd.NATS_RECONNECTED, Next.RELIST),
        (WatchEnd.PUBLISH_FAILED, Next.RELIST),
    ],
)
def test_only_gone_outages_and_lost_publishes_relist(end: WatchEnd, step: Next) -> None:
    assert next_step(end) is step


def test_inactivity_timeout_follows_bookmarks_with_a_floor() -> None:
    assert Inactivity(bookmark_interval=60).timeout == 150
    assert Inactivity(bookmark_interval=0.1).timeout == 1.0
    with pytest.raises(ValueError, match="missed_bookmarks must be > 1"):
        Inactivity(missed_bookmarks=1)
    with pytest.raises(ValueError, match="bookmark_interval must be > 0"):
        Inactivity(bookmark_interval=0)


def test_options_from_environment_name_the_variable_on_bad_input() -> None:
    options = WatcherOptions.from_environ(
        {"GATI_WATCH_BOOKMARK_INTERVAL": "5", "GATI_WATCH_CAPACITY": "8"}
    )
    assert options.inactivity.bookmark_interval == 5
    assert options.capacity == 8
    assert WatcherOptions.from_environ({}) == WatcherOptions()
    for env in ({"GATI_WATCH_BOOKMARK_INTERVAL": "soon"}, {"GATI_WATCH_CAPACITY": "0"}):
        with pytest.raises(ValueError, match="GATI_WATCH_CAPACITY"):
            WatcherOptions.from_environ(env)


def test_envelope_of_a_dotted_name_round_trips_with_state_only_id() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web.v1", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
    }
    target = next(t for t in watch_targets() if t.owned)
    message = outgoing(ChangeType.DELETED, target.subject(obj), obj, source="w", observed_at=NOW)
    assert parse_subject(message.subject) == ObjectSubject(
        "gati.owned", target.kind, "ns", "web.v1"
    )
    assert message.headers[MSG_ID] == "u:deleted"
    assert decode_event(message.payload, ChangeEvent) == message.event
    assert message.event.obj == obj


def test_an_object_without_uid_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        outgoing(
            ChangeType.ADDED,
            "gati.cr.gatihandler.ns.a",
            {"apiVersion": "v", "kind": "GatiHandler", "metadata": {"name": "a"}},
            source="w",
            observed_at=NOW,
        )
    with pytest.raises(EventDecodeError):
        decode_event(b"{}", ChangeEvent)


def test_traceparent_shares_the_trace_of_a_change_across_replicas() -> None:
    first, second = traceparent("u:1").split("-"), traceparent("u:1").split("-")
    assert first[0] == "00"
    assert first[3] == "01"
    assert first[1] == second[1]
    assert first[2] != second[2]
    assert traceparent("u:2").split("-")[1] != first[1]


def test_targets_cover_every_kind_per_configured_namespace() -> None:
    targets = watch_targets(("a", "b"))
    assert len(targets) == 8
    assert {t.namespace for t in targets} == {"a", "b"}
    deployments = [t for t in targets if t.owned]
    assert all(t.label_selector == MANAGED_SELECTOR for t in deployments)
    assert all(t.label_selector is None for t in targets if not t.owned)
    assert targets[0].subject_filter == "gati.cr.gatihandler.a.*"


async def test_handoff_holds_the_reader_until_items_are_released() -> None:
    handoff: Handoff[int] = Handoff(capacity=2)
    reader = asyncio.create_task(handoff.put_many([0, 1, 2]))
    assert await _next(handoff) == 0
    assert await _next(handoff) == 1
    await asyncio.sleep(0)
    assert not reader.done()  # two unreleased: the reader waits for a slot
    assert handoff.get_nowait() is None
    handoff.release()
    assert await _next(handoff) == 2
    async with asyncio.timeout(5):
        await reader
    assert handoff.high_water == 2


async def test_a_batch_fills_every_free_slot_then_waits_for_a_quarter() -> None:
    handoff: Handoff[int] = Handoff(capacity=8)
    await handoff.put_many(range(7))
    reader = asyncio.create_task(handoff.put_many(range(7, 10)))
    await asyncio.sleep(0)
    assert handoff.in_flight == 8  # the last free slot is taken, not left for a quarter
    handoff.release()
    await asyncio.sleep(0)
    assert handoff.in_flight == 7  # one free slot of eight: the reader still waits
    assert not reader.done()
    handoff.release()
    async with asyncio.timeout(5):
        await reader
    assert (handoff.in_flight, handoff.high_water) == (8, 8)


async def _next(handoff: Handoff[int]) -> int:
    while (item := handoff.get_nowait()) is None:
        await handoff.wait()
    return item


async def test_a_wake_ends_the_wait_for_an_item_without_one() -> None:
    handoff: Handoff[int] = Handoff(capacity=1)
    waiting = asyncio.create_task(handoff.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    handoff.wake()
    async with asyncio.timeout(5):
        await waiting
    assert handoff.get_nowait() is None


async def test_closing_the_handoff_frees_a_blocked_reader() -> None:
    handoff: Handoff[int] = Handoff(capacity=1)
    await handoff.put_many([0])
    reader = asyncio.create_task(handoff.put_many([1]))
    await asyncio.sleep(0)
    assert not reader.done()
    handoff.close()
    with pytest.raises(HandoffClosedError):
        async with asyncio.timeout(5):
            await reader
    with pytest.raises(ValueError, match="capacity"):
        Handoff(capacity=0)
