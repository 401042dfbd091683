"""Publishing to JetStream that only returns once the stream has stored the message.

A change a watcher saw, or an outcome a service decided, must not vanish because NATS was
restarting or a stream leader was being elected at that moment (DESIGN.md §4, "no lost change").
So a publish is retried until a PubAck arrives. Retrying is only safe with a `Nats-Msg-Id`: if the
first attempt was stored but its ack was lost, the retry is recognised as a duplicate inside the
stream's duplicate window instead of being stored twice, hence the id is required.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta

import structlog
from nats.js.api import PubAck
from prometheus_client import Counter

from gati_contracts.headers import MSG_ID
from gati_runtime.nats_connection import TRANSIENT_ERRORS, NatsConnection
from gati_runtime.outcomes import Backoff
from gati_runtime.pub_ack import pub_ack
from gati_runtime.replies import Replies

log = structlog.get_logger(__name__)

PUBLISH_RETRIES = Counter(
    "gati_publish_retries_total", "Publish attempts repeated after a transient failure"
)


class PublishAbandonedError(RuntimeError):
    """Shutdown was requested before the stream acknowledged the message."""


class Publisher:
    def __init__(
        self,
        connection: NatsConnection,
        *,
        backoff: Backoff | None = None,
        attempt_timeout: float = 5.0,
    ) -> None:
        # Requests on an inbox of the publisher's own instead of nats-py's `js.publish` (a NUID
        # token, wait_for and json.loads per message; see gati_runtime.replies), same answers.
        self._replies = Replies(connection.client, timeout=attempt_timeout)
        self._backoff = backoff or Backoff(
            base=timedelta(milliseconds=100), cap=timedelta(seconds=5)
        )

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str],
        *,
        stop: asyncio.Event | None = None,
    ) -> PubAck:
        """Retry until stored; `PubAck.duplicate` is True when an earlier attempt had been."""
        if not headers.get(MSG_ID):
            raise ValueError(
                f"publish to {subject}: header {MSG_ID} is required, since retries without it "
                "could store the message twice (contracts' event_headers() sets it)"
            )
        attempt = 0
        while True:
            attempt += 1
            try:
                return pub_ack(await self._replies.request(subject, payload, dict(headers)))
            except TRANSIENT_ERRORS as error:
                delay = self._backoff.delay(attempt).total_seconds()
                PUBLISH_RETRIES.inc()
                log.warning(
                    "publish_retry",
                    subject=subject,
                    msg_id=headers[MSG_ID],
                    attempt=attempt,
                    delay=delay,
                    error=repr(error),
                )
                if stop is None:
                    await asyncio.sleep(delay)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    raise PublishAbandonedError(
                        f"publish to {subject} ({headers[MSG_ID]}) abandoned at shutdown "
                        f"after {attempt} attempts"
                    ) from error
