"""One handler version's traffic, read straight from `GATI_METRICS` by the replica that scales it.

The shared durable hands each sample to one replica, but the lease holder must see every sample
of its handler, so it reads them itself: an ordered consumer filtered to the handler version's
subject, starting at a time (`since`), replays the recent past into a fresh `TrafficWindow` and
then follows new samples as they are stored. Because the window is a fold over the stream with
the stream's own timestamps, a replica taking over reaches the state its predecessor had.

`caught_up` is set once the replay reached the last sample stored when the tail started: until
then the window misses history, and a decision from it could jump the replica count.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from gati_contracts.events import EventDecodeError, TrafficSample, decode_event
from gati_contracts.subjects import traffic_subject
from gati_scaler.windows import TrafficWindow

log = structlog.get_logger(__name__)

OnSample = Callable[[], Awaitable[None]]


class TrafficTail:
    def __init__(
        self, js: JetStreamContext, stream: str, window: TrafficWindow, on_sample: OnSample
    ) -> None:
        self.window = window
        self.caught_up = asyncio.Event()
        self._js = js
        self._stream = stream
        self._on_sample = on_sample
        self._subject = traffic_subject(window.namespace, window.handler, window.version)
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._last_sequence = 0
        self._replay_until = 0

    @property
    def subject(self) -> str:
        return self._subject

    async def start(self, since: datetime) -> None:
        """Replay from `since`, then follow; samples stored before `since` are not needed."""
        try:
            last = await self._js.get_last_msg(self._stream, self._subject)
        except NotFoundError:
            last = None
        if last is None or last.seq is None or (last.time is not None and last.time < since):
            self.caught_up.set()
        else:
            self._replay_until = last.seq
        self._subscription = await self._js.subscribe(
            self._subject,
            stream=self._stream,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since),
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_message(self, message: Msg) -> None:
        meta = message.metadata
        sequence = meta.sequence.stream
        if sequence <= self._last_sequence:
            return  # an ordered consumer recreated after a gap may deliver again
        self._last_sequence = sequence
        try:
            sample = decode_event(message.data, TrafficSample)
            self.window.add(sample, received_at=meta.timestamp)
        except (EventDecodeError, ValueError) as error:
            # The `scaler-traffic` durable logs refused samples once, loudly; here it is noise.
            log.debug("sample_skipped", subject=self._subject, sequence=sequence, error=str(error))
        if sequence >= self._replay_until:
            self.caught_up.set()
        if self.caught_up.is_set():
            try:
                await self._on_sample()
            except Exception:
                # A failed decision is retried by the next sample or tick; the tail goes on.
                log.exception("decision_after_sample_failed", subject=self._subject)
