"""Publishing changes with many PubAcks outstanding, yet in order per subject.

Waiting for each PubAck before sending the next would cap the watcher at one round trip per
change. Messages from one connection are stored in the order they are sent, so many may be in
flight; but a publish that fails and is retried could land after a later change of the same
object, so each publish of a subject waits for the one before it. The in-flight count is bounded
by the callers' hand-offs, never here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats.errors
import structlog

from gati_runtime.publisher import PublishAbandonedError, Publisher
from gati_watcher.envelope import Outgoing
from gati_watcher.metrics import (
    CHANGE_LAG_SECONDS,
    DUPLICATES,
    EVENTS_PUBLISHED,
    PUBLISH_SECONDS,
    SKIPPED,
)

log = structlog.get_logger(__name__)

Done = Callable[[bool], None]
"""Told, once a publish is over, whether the change is in the stream (False: given up)."""


class PublishPipeline:
    def __init__(self, publisher: Publisher, stop: asyncio.Event) -> None:
        self._publisher = publisher
        self._stop = stop
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0
        """Publishes given up for a reason other than shutdown; the watcher relists after one."""

    def submit(self, message: Outgoing, received: float | None, done: Done) -> None:
        """Publish in the background; `received` is the `perf_counter` when the change was read
        off a watch (None for a relist, which has no moment of change to measure from)."""
        previous = self._tails.get(message.subject)
        task = asyncio.create_task(self._publish(message, received, previous, done))
        self._tails[message.subject] = task
        self._tasks.add(task)
        task.add_done_callback(lambda finished: self._forget(message.subject, finished))

    def _forget(self, subject: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(subject) is task:
            del self._tails[subject]

    async def _publish(
        self,
        message: Outgoing,
        received: float | None,
        previous: asyncio.Task[None] | None,
        done: Done,
    ) -> None:
        stored = False
        try:
            if previous is not None:
                await asyncio.wait({previous})
            started = time.perf_counter()
            ack = await self._publisher.publish(
                message.subject, message.payload, message.headers, stop=self._stop
            )
            acked = time.perf_counter()
            PUBLISH_SECONDS.observe(acked - started)
            if received is not None:
                CHANGE_LAG_SECONDS.observe(acked - received)
            kind = message.event.kind
            if ack.duplicate:
                DUPLICATES.labels(kind=kind).inc()
            else:
                EVENTS_PUBLISHED.labels(kind=kind, type=message.event.type.value).inc()
            stored = True
        except PublishAbandonedError:
            pass  # shutdown: the next start's relist publishes whatever did not land
        except nats.errors.MaxPayloadError as error:
            SKIPPED.labels(kind=message.event.kind, reason="too-large").inc()
            log.error(
                "change_too_large",
                subject=message.subject,
                bytes=len(message.payload),
                error=str(error),
                fix="raise max_payload of the NATS server or shrink the object",
            )
        except Exception as error:  # a service must not die of one publish; relisting repairs
            self.failures += 1
            log.exception("publish_failed", subject=message.subject, error=repr(error))
        finally:
            done(stored)

    async def drain(self) -> None:
        """Wait until every submitted publish is over."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
