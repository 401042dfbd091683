"""Read the last change event of every subject under some filters, in one pass.

An ordered push consumer with `DeliverPolicy.LAST_PER_SUBJECT` delivers exactly one message per
subject (DESIGN.md §7), far cheaper than a request per object; the `num_pending` each message
carries says when the last one has arrived. A message that is not a readable change event (a
foreign publisher, an older schema) is skipped and counted: the relist then sees the subject as
unknown and republishes the object's current state, which repairs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gati_contracts.events import ChangeEvent, EventDecodeError, decode_event
from gati_watcher.metrics import SKIPPED

log = structlog.get_logger(__name__)

INACTIVE_THRESHOLD = 60.0
"""Seconds after which the server deletes the consumer should this process die mid-read."""


async def last_events(
    js: JetStreamContext, stream: str, filters: Sequence[str]
) -> dict[str, ChangeEvent]:
    """The last `ChangeEvent` per subject matching any of `filters`, keyed by subject.

    Waits as long as the stream takes; callers bound it with `asyncio.timeout`."""
    found: dict[str, ChangeEvent] = {}
    done = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        try:
            found[msg.subject] = decode_event(msg.data, ChangeEvent)
        except EventDecodeError as error:
            found.pop(msg.subject, None)
            SKIPPED.labels(kind=msg.subject.split(".")[2], reason="undecodable").inc()
            log.warning("checkpoint_message_skipped", subject=msg.subject, error=str(error))
        if msg.metadata.num_pending == 0:
            done.set()

    subscription = await js.subscribe(
        filters[0],
        stream=stream,
        cb=on_message,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        config=ConsumerConfig(filter_subjects=list(filters)) if len(filters) > 1 else None,
        inactive_threshold=INACTIVE_THRESHOLD,
    )
    try:
        info = await subscription.consumer_info()
        if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
            return found  # nothing under these filters
        await done.wait()
        return found
    finally:
        await subscription.unsubscribe()
