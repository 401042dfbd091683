"""The lease renewal that runs beside an inline reconcile, against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client

from gati_reconciler.lease_renewal import LeaseRenewal
from gati_runtime.lease import Leases

EVERY = 0.05


async def test_a_long_holder_keeps_its_lease_and_gets_the_newest_revision(gati_bus: Client) -> None:
    leases = Leases(gati_bus, "r0", scope="reconcile")
    other = Leases(gati_bus, "r1", scope="reconcile")
    lease = await leases.acquire("k", 10)
    assert lease is not None
    renewal = LeaseRenewal(leases, lease, EVERY)
    await asyncio.sleep(EVERY * 5)  # the point is to outlive several renewal periods
    held = await renewal.stop()
    assert held is not None
    assert held.revision > lease.revision
    assert renewal.cut_short() is None
    assert await other.acquire("k", 10) is None
    await leases.release(held)  # the newest revision is the one a release must name
    assert await other.acquire("k", 10) is not None


async def test_a_lost_lease_cancels_its_holder_which_can_tell_why(gati_bus: Client) -> None:
    leases = Leases(gati_bus, "r0", scope="reconcile")
    lease = await leases.acquire("k", 10)
    assert lease is not None
    assert await leases.renew(lease) is not None  # the renewal's revision is now stale

    async def holder() -> str | None:
        renewal = LeaseRenewal(leases, lease, EVERY)
        try:
            await asyncio.Event().wait()  # a reconcile that would never end by itself
        except asyncio.CancelledError:
            reason = renewal.cut_short()
            if reason is None:
                raise
            assert await renewal.stop() is None
            return reason
        return None

    task = asyncio.create_task(holder())
    assert await task == "the object's lease was lost during the reconcile"
    assert not task.cancelled()


async def test_a_shutdown_cancel_is_not_taken_for_a_lost_lease(gati_bus: Client) -> None:
    leases = Leases(gati_bus, "r0", scope="reconcile")
    lease = await leases.acquire("k", 10)
    assert lease is not None
    started = asyncio.Event()
    seen: list[str | None] = []

    async def holder() -> None:
        renewal = LeaseRenewal(leases, lease, EVERY)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append(renewal.cut_short())
            raise
        finally:
            assert await renewal.stop() == lease

    task = asyncio.create_task(holder())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert seen == [None]


async def test_a_cut_the_holder_never_raised_is_taken_back(gati_bus: Client) -> None:
    """Python 3.11's wait_for, in every nats-py request, may swallow the cut (gh-86296): the
    reconcile ends normally, and its lane task must not carry the cancel on to later messages
    (where KubeTransport would take its next timeout for a caller's cancel)."""
    leases = Leases(gati_bus, "r0", scope="reconcile")
    lease = await leases.acquire("k", 10)
    assert lease is not None
    assert await leases.renew(lease) is not None  # the renewal's revision is now stale

    async def holder() -> int:
        renewal = LeaseRenewal(leases, lease, EVERY)
        try:
            with contextlib.suppress(asyncio.CancelledError):  # a wait_for losing the cut
                await asyncio.Event().wait()
        finally:
            assert await renewal.stop() is None
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    task = asyncio.create_task(holder())
    assert await task == 0
