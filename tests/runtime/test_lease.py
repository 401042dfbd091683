"""Leases against a real nats-server: one winner, expiry after a crash, renew, release, scopes."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.aio.client import Client
from nats.errors import ConnectionClosedError
from nats.js.errors import NoStreamResponseError

from gati_runtime.lease import Leases, lease_key
from runtime.lease_release import confirmed


def test_keys_are_one_token_per_part() -> None:
    assert lease_key("GatiHandler", "shop", "orders") == "gatihandler.shop.orders"
    assert lease_key("GatiHandler", "shop", "orders.v2") == "gatihandler.shop.orders_2ev2"


async def test_one_of_many_contenders_wins(gati_bus: Client) -> None:
    contenders = [Leases(gati_bus, f"replica-{i}", scope="reconcile") for i in range(8)]
    leases = await asyncio.gather(*(c.acquire("k", 10) for c in contenders))
    winners = [lease for lease in leases if lease is not None]
    assert len(winners) == 1


async def test_released_lease_is_free_and_a_lost_one_cannot_be_renewed(gati_bus: Client) -> None:
    a = Leases(gati_bus, "a", scope="reconcile")
    b = Leases(gati_bus, "b", scope="reconcile")
    held = await a.acquire("k", 10)
    assert held is not None
    assert await b.acquire("k", 10) is None
    renewed = await a.renew(held)
    assert renewed is not None
    assert renewed.revision > held.revision
    assert await a.renew(held) is None  # a stale revision: someone (here: us) wrote since
    await a.release(renewed)
    taken = await b.acquire("k", 10)
    assert taken is not None
    assert taken.holder == "b"
    await a.release(renewed)  # releasing a lease now held by b leaves it with b
    assert await a.acquire("k", 10) is None


async def test_lease_of_a_crashed_holder_expires(gati_bus: Client) -> None:
    crashed = Leases(gati_bus, "crashed", scope="scale")
    survivor = Leases(gati_bus, "survivor", scope="scale")
    assert await crashed.acquire("k", 1) is not None
    assert await survivor.acquire("k", 1) is None
    for _ in range(60):  # the server expires the key by its TTL; poll instead of one long sleep
        await asyncio.sleep(0.1)
        if (lease := await survivor.acquire("k", 1)) is not None:
            assert lease.holder == "survivor"
            return
    pytest.fail("the lease of a holder that never renewed did not expire")


async def test_same_holder_resumes_and_scopes_are_independent(gati_bus: Client) -> None:
    first = Leases(gati_bus, "pod-1", scope="reconcile")
    restarted = Leases(gati_bus, "pod-1", scope="reconcile")
    scaler = Leases(gati_bus, "pod-2", scope="scale")
    assert await first.acquire("k", 10) is not None
    assert await restarted.acquire("k", 10) is not None
    assert await scaler.acquire("k", 10) is not None


async def test_held_releases_after_the_block(gati_bus: Client) -> None:
    a = Leases(gati_bus, "a", scope="reconcile")
    b = Leases(gati_bus, "b", scope="reconcile")
    async with a.held("k", 10) as lease:
        assert lease is not None
        async with b.held("k", 10) as other:
            assert other is None
    async with b.held("k", 10) as lease:
        assert lease is not None


async def test_ttl_must_be_positive(gati_bus: Client) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        await Leases(gati_bus, "a", scope="reconcile").acquire("k", 0)


async def test_retaking_a_released_key_is_one_write(gati_bus: Client) -> None:
    leases = Leases(gati_bus, "a", scope="reconcile")
    first = await leases.acquire("k", 10)
    assert first is not None
    await leases.release(first)
    await confirmed(leases, "k")  # the release's answer, which the fast path reads
    again = await leases.acquire("k", 10)
    assert again is not None
    assert again.revision == first.revision + 2  # the release marker, then our write: no retry
    other = Leases(gati_bus, "b", scope="reconcile")
    await leases.release(again)
    assert await other.acquire("k", 10) is not None  # someone else's release marker: slow path
    assert await leases.acquire("k", 10) is None  # our remembered revision is stale: refused


async def test_a_retake_by_our_own_release_proves_no_holder_came_between(
    gati_bus: Client,
) -> None:
    """`follows` names the revision the winning write expected: equal to our confirmed release
    only when nobody wrote the key since, whoever held it meanwhile (and then let it go)."""
    a = Leases(gati_bus, "a", scope="reconcile")
    b = Leases(gati_bus, "b", scope="reconcile")
    assert a.released("k") is None
    first = await a.acquire("k", 10)
    assert first is not None
    assert first.follows == 0  # an empty key
    await a.release(first)
    since = await confirmed(a, "k")
    assert since == first.revision + 1  # our release marker, as the server stored it
    again = await a.acquire("k", 10)
    assert again is not None
    assert again.follows == since  # nobody in between
    assert a.released("k") is None  # taken by that acquire
    await a.release(again)
    since = await confirmed(a, "k")
    between = await b.acquire("k", 10)
    assert between is not None
    await b.release(between)  # applied before a's next write: one connection, in order
    after = await a.acquire("k", 10)
    assert after is not None  # free again, by the slow path
    assert after.follows != since


async def test_a_release_is_sent_without_waiting_for_its_answer(gati_bus: Client) -> None:
    """The releasing replica goes on at once; the server still applies the release before
    anything the same connection sends after it, so the next holder finds the key free."""
    a = Leases(gati_bus, "a", scope="reconcile")
    b = Leases(gati_bus, "b", scope="reconcile")
    held = await a.acquire("k", 10)
    assert held is not None
    await a.release(held)
    assert a.released("k") is None  # sent, its answer still to come
    taken = await b.acquire("k", 10)
    assert taken is not None
    assert taken.holder == "b"
    assert await confirmed(a, "k") == held.revision + 1  # the answer, read in the background


async def test_without_the_bucket_taking_a_lease_fails_as_nats_py_publish(
    nats_client: Client,
) -> None:
    with pytest.raises(NoStreamResponseError):
        await Leases(nats_client, "a", scope="reconcile").acquire("k", 10)


async def test_a_release_that_cannot_be_sent_leaves_the_key_to_its_ttl(
    gati_bus: Client, nats_url: str
) -> None:
    """`release` raises when the connection is closed; `held` logs it and lets the block's own
    outcome through, and the key stays taken until its TTL frees it."""
    own = await nats.connect(nats_url, name="gati-test-lease", max_reconnect_attempts=0)
    leases = Leases(own, "a", scope="reconcile")
    held = await leases.acquire("k", 120)
    assert held is not None
    await own.close()
    with pytest.raises(ConnectionClosedError):
        await leases.release(held)
    own = await nats.connect(nats_url, name="gati-test-lease", max_reconnect_attempts=0)
    try:
        leases = Leases(own, "a", scope="reconcile")
        async with leases.held("k", 120) as lease:
            assert lease is not None  # our own live lease, taken over
            await own.close()
    finally:
        await own.close()
    assert await Leases(gati_bus, "b", scope="reconcile").acquire("k", 10) is None
