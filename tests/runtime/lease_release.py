"""Waiting for a lease release's answer, which `Leases` reads in the background."""

from __future__ import annotations

import asyncio

import pytest

from gati_runtime.lease import Leases


async def confirmed(leases: Leases, key: str) -> int:
    """The revision of `leases`' release of `key` once the server's answer came: polled, as
    nothing but `released` tells it (the release returns before its answer)."""
    for _ in range(3000):  # 30 s, for a loaded machine
        if (revision := leases.released(key)) is not None:
            return revision
        await asyncio.sleep(0.01)
    pytest.fail(f"the release of {key} was not confirmed")
