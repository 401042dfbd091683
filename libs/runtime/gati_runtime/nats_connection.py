"""One NATS connection per process that never gives up, and says so in the logs when it drops.

A Kubernetes pod may start before NATS does, and NATS may restart under a running service; both
are normal, so the connection retries forever (first connect included) and every state change is
a log line. `generation` lets consumers notice a reconnect and re-create pull subscriptions,
which nats-py does not always revive by itself (nats-py #504).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from urllib.parse import ParseResult

import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError
from nats.js.manager import JetStreamManager

from gati_runtime.settings import Settings

log = structlog.get_logger(__name__)

READINESS_TIMEOUT = 2.0

# Failures that mean "not now": the connection is reconnecting, the stream or the JetStream
# meta group has no leader yet, or the server did not answer in time (a clustered create that
# races another replica's may simply go unanswered). Anything else (a closed connection, a wrong
# expected sequence, a message too large) is the caller's to handle.
TRANSIENT_ERRORS = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    NoStreamResponseError,
    ServiceUnavailableError,
)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS only when a file asks for it: a CA to trust, or a client certificate to present."""
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None
    )
    if settings.nats_tls_cert and settings.nats_tls_key:
        context.load_cert_chain(str(settings.nats_tls_cert), str(settings.nats_tls_key))
    return context


@dataclass
class NatsConnection:
    client: Client
    generation: int = 0
    _reconnected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def js(self) -> JetStreamContext:
        return self.client.jetstream()

    @property
    def jsm(self) -> JetStreamManager:
        return self.client.jsm()

    async def ready(self) -> bool:
        """Connected is not enough: JetStream may be unavailable (no quorum) while NATS is up."""
        if not self.client.is_connected:
            return False
        try:
            await asyncio.wait_for(self.jsm.account_info(), READINESS_TIMEOUT)
        except Exception:  # any failure means "not ready"; the reason is logged by callbacks
            return False
        return True

    async def wait_reconnected(self) -> None:
        await self._reconnected.wait()

    def _on_reconnected(self) -> None:
        self.generation += 1
        self._reconnected.set()
        self._reconnected = asyncio.Event()

    async def close(self) -> None:
        """Drain (deliver what is buffered, flush publishes) when connected; while NATS is
        away there is nothing to drain into, and nats-py refuses to drain, so just close."""
        if self.client.is_closed:
            return
        if self.client.is_connected:
            await self.client.drain()
        else:
            await self.client.close()


async def connect(settings: Settings, *, name: str) -> NatsConnection:
    """Connect, retrying until the server answers; reconnect forever afterwards."""
    client = Client()
    connection = NatsConnection(client)
    bound = log.bind(nats_client=name)

    async def on_error(error: Exception) -> None:
        bound.warning("nats_error", error=str(error) or type(error).__name__)

    async def on_disconnected() -> None:
        bound.warning("nats_disconnected")

    async def on_reconnected() -> None:
        connection._on_reconnected()
        bound.info("nats_reconnected", url=_url(client), generation=connection.generation)

    async def on_closed() -> None:
        bound.info("nats_closed")

    await client.connect(
        servers=settings.nats_servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        user_credentials=str(settings.nats_creds) if settings.nats_creds else None,
        tls=tls_context(settings),
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        closed_cb=on_closed,
    )
    bound.info("nats_connected", url=_url(client))
    return connection


def _url(client: Client) -> str | None:
    url = client.connected_url
    return without_credentials(url) if url is not None else None


def without_credentials(url: ParseResult) -> str:
    """The server address alone: deploy/ hands each service `nats://user:password@host`, and
    nats-py keeps that user and password in the URL it reports, which must never reach a log."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return url._replace(netloc=f"{host}:{url.port}" if url.port else host).geturl()
