"""The lifecycle every service shares, so a service is only its own `main(ctx)` coroutine.

settings → logging → NATS (waiting for it if need be) → provisioning (likewise) → health server →
`main(ctx)` → on SIGTERM/SIGINT: `ctx.stop` is set, `/readyz` fails, `main` gets
`shutdown_grace` to finish its in-flight work (a `ConsumerLoop.run(ctx.stop)` returns once it
has), then NATS is drained and the process exits 0. A second signal, or an overrun grace,
cancels `main`: unacked messages are then redelivered to another replica after `ack_wait`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import structlog

from gati_runtime.cancellation import cancel_until_done
from gati_runtime.consumer import ConsumerLoop, ConsumerOptions, Decoder, Handler, PoisonCallback
from gati_runtime.health import HealthServer
from gati_runtime.logging import configure_logging
from gati_runtime.nats_connection import NatsConnection, connect
from gati_runtime.provisioning import ConsumerSpec, provision_bus
from gati_runtime.publisher import Publisher
from gati_runtime.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1

# How long a cut-short `main` gets to end before it is cancelled again: longer than connect's
# or provisioning's, since its cancel starts cleanup worth finishing (leases given back, the
# last acks flushed, itself bounded at 2 s).
MAIN_CANCEL_REPEAT_SECONDS = 1.0


@dataclass
class ServiceContext:
    """What a service's `main` gets: everything already connected and provisioned."""

    name: str
    settings: Settings
    connection: NatsConnection
    health: HealthServer
    stop: asyncio.Event
    publisher: Publisher

    def consumer(
        self,
        spec: ConsumerSpec,
        *,
        decode: Decoder[T],
        handler: Handler[T],
        on_poison: PoisonCallback,
        options: ConsumerOptions | None = None,
        stream: str | None = None,
    ) -> ConsumerLoop[T]:
        """A loop on `stream` (default `GATI`; the scaler passes `settings.metrics_stream`);
        `await loop.run(ctx.stop)` consumes until shutdown, then drains."""
        return ConsumerLoop(
            self.connection,
            stream or self.settings.stream,
            spec,
            decode=decode,
            handler=handler,
            on_poison=on_poison,
            options=options,
        )


ServiceMain = Callable[[ServiceContext], Awaitable[None]]


def run_service(name: str, main: ServiceMain, settings: Settings) -> int:
    """Blocking entry point for `gati-operator run` and tests that run a service as a process."""
    configure_logging(settings.log_format, settings.log_level)
    settings.log_unknown_variables()
    loop_factory, loop_name = event_loop_factory()
    log.info("event_loop_selected", service=name, loop=loop_name)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(name, main, settings))


def event_loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """uvloop when it imports: asyncio's own loop machinery was ~22 % of a service's CPU per
    event, and uvloop runs the same coroutines for a fraction of that. Without it (a platform
    it has no wheel for) the standard loop still works, only slower; `None` means that loop."""
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


async def serve(name: str, main: ServiceMain, settings: Settings) -> int:
    stop = asyncio.Event()
    forced = asyncio.Event()
    bound = log.bind(service=name, instance=settings.instance_id)
    with _signals_stop(stop, forced):
        return await _serve(name, main, settings, stop, forced, bound)


async def _serve(
    name: str,
    main: ServiceMain,
    settings: Settings,
    stop: asyncio.Event,
    forced: asyncio.Event,
    bound: structlog.typing.FilteringBoundLogger,
) -> int:
    try:
        connection = await _until_stopped(
            connect(settings, name=f"{name}/{settings.instance_id}"), stop
        )
    except Exception as error:  # e.g. credentials refused: retrying cannot help
        bound.exception("nats_connect_failed", error=str(error))
        return EXIT_FAILED
    if connection is None:
        return EXIT_OK
    health = HealthServer(settings.http_port)
    try:
        changes = await _until_stopped(provision_bus(connection.jsm, settings), stop)
        if changes is None:
            return EXIT_OK
        bound.info("bus_ready", changes=[str(change) for change in changes])
        health.add_readiness("nats", connection.ready)
        await health.start()
        context = ServiceContext(name, settings, connection, health, stop, Publisher(connection))
        return await _run_main(main(context), stop, forced, health, settings, bound)
    except Exception as error:
        bound.exception("service_failed", error=str(error))
        return EXIT_FAILED
    finally:
        await health.stop()
        await connection.close()
        bound.info("service_exited")


async def _run_main(
    work: Awaitable[None],
    stop: asyncio.Event,
    forced: asyncio.Event,
    health: HealthServer,
    settings: Settings,
    bound: structlog.typing.FilteringBoundLogger,
) -> int:
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        health.draining()
        grace = settings.shutdown_grace.total_seconds()
        bound.info("draining", grace_seconds=grace)
        overrun = asyncio.ensure_future(forced.wait())
        await asyncio.wait({task, overrun}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        overrun.cancel()
        if not task.done():
            bound.warning("drain_cut_short")
            await cancel_until_done(task, MAIN_CANCEL_REPEAT_SECONDS)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return EXIT_FAILED
    if task.cancelled():
        return EXIT_FAILED
    error = task.exception()
    if error is not None:
        bound.error("service_main_failed", error=repr(error), exc_info=error)
        return EXIT_FAILED
    if not stop.is_set():
        bound.warning("service_main_returned_without_stop")
    return EXIT_OK


async def _until_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """Connecting and provisioning wait for NATS forever; a SIGTERM meanwhile must still end
    the process.

    The connect loop would otherwise retry on after a cancel it lost (see
    `gati_runtime.cancellation`). Work that finished regardless hands back its result (a live
    connection), for the caller to close."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    await cancel_until_done(task)
    if task.cancelled():
        return None
    return task.result()


@contextlib.contextmanager
def _signals_stop(stop: asyncio.Event, forced: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT request a drain; a second one cuts it short."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            forced.set()
        stop.set()
        log.info("signal_received", signal=signum.name, forced=forced.is_set())

    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
