"""The scaler's `main`: how it ends when one of its loops fails."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from fixtures.service_context import failed_main
from gati_runtime.service import ServiceContext
from gati_scaler.scaler import Scaler
from gati_scaler.service import main


async def test_main_ends_its_other_loops_when_one_fails_and_logs_why(
    service_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One consumer loop failing fails `main`; the sample loop and the scaling tick, which may
    lose a cancel as any loop inside a nats-py request can (gh-86296), must have ended by then,
    not run on while the service drains and closes its NATS connection."""
    ended: dict[str, asyncio.Event] = {"samples": asyncio.Event(), "scaling": asyncio.Event()}

    async def deaf(name: str) -> None:
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # the cancel, lost
            await asyncio.Event().wait()  # the loop's next step
        finally:
            ended[name].set()

    class Loop:
        def __init__(self, durable: str) -> None:
            self.durable = durable

        async def run(self, stop: asyncio.Event) -> None:
            if self.durable == "scaler-traffic":
                await deaf("samples")
            await asyncio.sleep(0)
            raise RuntimeError("the change loop broke")

    async def deaf_tick(self: Scaler, stop: asyncio.Event) -> None:
        await deaf("scaling")

    monkeypatch.setattr(Scaler, "run", deaf_tick)
    monkeypatch.setattr(ServiceContext, "consumer", lambda self, spec, **_: Loop(spec.durable))
    error, why = await failed_main(main, service_context)
    assert repr(error) == repr(RuntimeError("the change loop broke"))
    assert {name: event.is_set() for name, event in ended.items()} == {
        "samples": True,
        "scaling": True,
    }, "a loop outlived main"
    assert (why["log_level"], why["failed"], sorted(why["ending"])) == (
        "error",
        "changes",
        ["samples", "scaling"],
    )
