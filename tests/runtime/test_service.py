"""A service process: health endpoints, SIGTERM drain, and `gati-operator run` without a service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from nats.aio.client import Client
from nats.js.api import StorageType
from prometheus_client import CollectorRegistry, Counter
from structlog.testing import capture_logs

from gati_cli.commands.run import ServiceNotBuiltError, load_service
from gati_cli.main import main as cli_main
from gati_contracts.subjects import STREAM
from gati_runtime.embedded_nats import EmbeddedNats, free_port
from gati_runtime.health import HealthServer
from gati_runtime.service import ServiceContext, _until_stopped, event_loop_factory, serve
from gati_runtime.settings import Settings

SERVICE_SCRIPT = Path(__file__).with_name("drain_service.py")
WAIT = 15.0


async def _line(stream: asyncio.StreamReader, marker: str) -> str:
    """The first line containing `marker`: awaiting output, never sleeping."""
    while True:
        raw = await asyncio.wait_for(stream.readline(), WAIT)
        if not raw:
            raise AssertionError(f"process ended before printing {marker!r}")
        line = raw.decode().strip()
        if marker in line:
            return line


async def _start_service(
    nats_url: str,
    *,
    stdout: int = asyncio.subprocess.DEVNULL,
    stderr: int = asyncio.subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "GATI_NATS_URL": nats_url,
        "GATI_HTTP_PORT": "0",
        "GATI_LOG_FORMAT": "json",
        "GATI_INSTANCE_ID": "drain-1",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SERVICE_SCRIPT), env=env, stdout=stdout, stderr=stderr
    )


async def test_sigterm_finishes_in_flight_work_before_exit(gati_bus: Client, nats_url: str) -> None:
    process = await _start_service(nats_url, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        port = int((await _line(process.stdout, "ready")).split()[1])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz?verbose") as response:
                assert response.status == 200, await response.text()
                assert "[+]nats ok" in await response.text()

            ack = await gati_bus.jetstream().publish("gati.cr.gatihandler.default.api", b"{}")
            assert await _line(process.stdout, "started") == f"started {ack.seq}"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
            process.send_signal(signal.SIGTERM)

            finished = await _line(process.stdout, "finished")
        assert finished == f"finished {ack.seq}"
        assert 'gati_consumer_delivered_total{consumer="drain"} 1.0' in metrics
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    info = await gati_bus.jsm().consumer_info(STREAM, "drain")
    assert info.num_ack_pending == 0
    assert info.ack_floor is not None
    assert info.ack_floor.stream_seq == ack.seq


async def test_health_endpoints_follow_kubernetes_conventions() -> None:
    registry = CollectorRegistry()
    Counter("probe_total", "a metric to find", registry=registry).inc()
    ready = False

    async def check() -> bool:
        return ready

    server = HealthServer(0, host="127.0.0.1", registry=registry)
    server.add_readiness("nats", check)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert (response.status, await response.text()) == (200, "ok")
            async with http.get(f"{base}/readyz?verbose") as response:
                assert response.status == 503
                assert "[-]nats failed" in await response.text()
            ready = True
            async with http.get(f"{base}/readyz") as response:
                assert (response.status, await response.text()) == (200, "ok")
            server.draining()
            async with http.get(f"{base}/readyz?verbose") as response:
                assert response.status == 503
                assert "[-]shutdown failed" in await response.text()
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert "probe_total 1.0" in await response.text()
    finally:
        await server.stop()


def test_missing_service_is_reported_not_crashed() -> None:
    with pytest.raises(ServiceNotBuiltError, match=r"not built yet.*gati_nosuch\.service"):
        load_service("nosuch")


def test_run_rejects_bad_settings_with_the_variable_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["run", "scaler", "--http-port", "http"]) == 2
    assert "GATI_HTTP_PORT" in capsys.readouterr().err


async def test_sigterm_while_waiting_for_nats_exits_cleanly() -> None:
    unreachable = f"nats://127.0.0.1:{free_port()}"
    process = await _start_service(unreachable, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    try:
        await _line(process.stderr, '"event": "nats_error"')  # a failed attempt was logged
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_while_nats_server_is_frozen_exits_cleanly(tmp_path: Path) -> None:
    """A server that accepts TCP but never answers (SIGSTOPped, or a hung node) must not hold
    a service that is told to stop: each attempt waits for INFO until connect_timeout."""
    with EmbeddedNats(tmp_path / "nats") as server:
        os.kill(server.pid, signal.SIGSTOP)
        process = await _start_service(server.url, stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        try:
            await _line(process.stderr, '"event": "nats_error"')  # an attempt timed out
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), WAIT) == 0
        finally:
            os.kill(server.pid, signal.SIGCONT)
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _swallows_first_cancel(result: str | None) -> str | None:
    """Python 3.11's `asyncio.wait_for` (used throughout nats-py's connect) returns its inner
    result instead of raising when a cancel arrives just as that result does (gh-86296): this
    stands for a connect attempt that lost its cancel that way, then returns or keeps retrying."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
    if result is not None:
        return result
    await asyncio.Event().wait()  # retrying forever, as connect does while NATS is away
    return None


async def test_a_swallowed_cancel_does_not_keep_the_wait_alive() -> None:
    stop = asyncio.Event()
    stop.set()
    work = asyncio.ensure_future(_swallows_first_cancel(None))
    waiting = asyncio.ensure_future(_until_stopped(work, stop))
    await asyncio.wait({waiting}, timeout=WAIT)  # a timeout that cancels would mask a hang
    assert waiting.done(), "a stop request was lost in the work's cancel"
    assert waiting.result() is None
    assert work.cancelled()


async def test_work_that_finishes_despite_the_cancel_is_handed_back() -> None:
    """Its result (a live connection) goes to the caller, who closes it, instead of leaking."""
    stop = asyncio.Event()
    stop.set()
    waiting = asyncio.ensure_future(_until_stopped(_swallows_first_cancel("connection"), stop))
    await asyncio.wait({waiting}, timeout=WAIT)
    assert waiting.done()
    assert waiting.result() == "connection"


def _settings(nats_url: str, **extra: str) -> Settings:
    return Settings.load(environ={"GATI_NATS_URL": nats_url, "GATI_HTTP_PORT": "0", **extra})


async def test_a_failing_main_exits_1(gati_bus: Client, nats_url: str) -> None:
    async def main(ctx: ServiceContext) -> None:
        raise RuntimeError("bug in the service")

    assert await serve("failing", main, _settings(nats_url)) == 1


async def test_main_that_ignores_stop_is_cut_off_after_the_grace(
    gati_bus: Client, nats_url: str
) -> None:
    cancelled = asyncio.Event()

    async def main(ctx: ServiceContext) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # handled by serve(), which sets ctx.stop
        try:
            await asyncio.Event().wait()  # never finishes its work
        except asyncio.CancelledError:
            cancelled.set()
            raise

    settings = _settings(nats_url, GATI_SHUTDOWN_GRACE="100ms")
    assert await serve("stubborn", main, settings) == 1
    assert cancelled.is_set()


async def test_main_that_loses_its_cut_short_cancel_is_cancelled_again(
    gati_bus: Client, nats_url: str
) -> None:
    """A main whose cancel a nats-py wait_for dropped (gh-86296) goes on into a wait nothing
    else ends; the cut-short must still end it."""

    async def main(ctx: ServiceContext) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await _swallows_first_cancel(None)

    settings = _settings(nats_url, GATI_SHUTDOWN_GRACE="100ms")
    serving = asyncio.ensure_future(serve("deaf", main, settings))
    try:
        await asyncio.wait({serving}, timeout=WAIT)  # a timeout that cancels would mask a hang
        assert serving.done(), "the cut-short cancel was lost: the service never exited"
        assert serving.result() == 1
    finally:
        serving.cancel()


async def test_unfixable_bus_drift_stops_the_service_with_exit_1(
    gati_bus: Client, nats_url: str
) -> None:
    jsm = gati_bus.jsm()
    await jsm.delete_stream(STREAM)
    await jsm.add_stream(name=STREAM, subjects=["gati.cr.>"], storage=StorageType.MEMORY)
    ran = False

    async def main(ctx: ServiceContext) -> None:
        nonlocal ran
        ran = True

    with capture_logs() as logs:
        assert await serve("drifted", main, _settings(nats_url)) == 1
    assert not ran
    [failure] = [entry for entry in logs if entry["event"] == "service_failed"]
    assert "storage is" in failure["error"]
    assert "cannot change this in place" in failure["error"]


def test_load_service_finds_main_in_the_service_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "gati_fakesvc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "service.py").write_text("async def main(ctx):\n    return None\n")
    (tmp_path / "gati_halfsvc").mkdir()
    (tmp_path / "gati_halfsvc" / "__init__.py").write_text("")
    (tmp_path / "gati_halfsvc" / "service.py").write_text("VERSION = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert load_service("fakesvc").__name__ == "main"
    with pytest.raises(ServiceNotBuiltError, match="defines no async main"):
        load_service("halfsvc")


def test_services_run_on_uvloop_when_it_imports() -> None:
    factory, name = event_loop_factory()
    assert name == "uvloop"
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_without_uvloop_the_standard_loop_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` raise ImportError
    assert event_loop_factory() == (None, "asyncio")
