"""The HTTP face of a service for Kubernetes probes and Prometheus.

`/healthz` answers while the event loop does (liveness: restart only a wedged process);
`/readyz` runs the registered checks, such as "NATS connected and JetStream answering", and
fails while the service drains so nothing counts on it. Both follow the Kubernetes API server's
convention: `ok` or a 503, and `?verbose` lists every check as `[+]name ok` / `[-]name failed`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT = 3.0


class HealthServer:
    def __init__(
        self, port: int, *, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
    ) -> None:
        self._host = host
        self._requested_port = port
        self._registry = registry
        self._checks: dict[str, ReadinessCheck] = {}
        self._draining = False
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None

    def add_readiness(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def draining(self) -> None:
        """From now on `/readyz` fails: the process is shutting down."""
        self._draining = True

    @property
    def port(self) -> int:
        """The bound port; differs from the requested one when that was 0."""
        if self._socket is None:
            raise RuntimeError("health server is not started")
        port: int = self._socket.getsockname()[1]
        return port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Binding the socket ourselves tells us the real port when 0 (any free port) was asked.
        self._socket = socket.create_server((self._host, self._requested_port), reuse_port=False)
        await web.SockSite(self._runner, self._socket).start()
        log.info("health_server_started", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        outcomes = await asyncio.gather(*map(_run, self._checks.values()))
        results = dict(zip(self._checks, outcomes, strict=True))
        if self._draining:
            results["shutdown"] = False
        ready = all(results.values())
        if "verbose" in request.query:
            lines = [
                f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed'}"
                for name, ok in results.items()
            ]
            lines.append("readyz check passed" if ready else "readyz check failed")
            text = "\n".join(lines) + "\n"
        else:
            text = "ok" if ready else "not ready"
        return web.Response(text=text, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self._registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


async def _run(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception:
        return False
