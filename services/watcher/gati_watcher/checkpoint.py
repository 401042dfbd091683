"""Read the last change event of every subject under some filters, in one pass.

An ordered push consumer with `DeliverPolicy.LAST_PER_SUBJECT` delivers exactly one message per
subject (DESIGN.md §7), far cheaper than a request per object; the `num_pending` each message
carries says when the last one has arrived. A message that is not a readable change event (a
foreign publisher, an older schema) is skipped and counted: the relist then sees the subject as
unknown and republishes the object's current state, which repairs it.

The stream sequence of each last message is kept too: a relist publishes with it as the expected
last sequence of the subject, so it never lands on top of a newer change another replica
published after this read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gati_contracts.events import ChangeEvent, EventDecodeError, decode_event
from gati_watcher.metrics import SKIPPED

log = structlog.get_logger(__name__)

INACTIVE_THRESHOLD = 60.0
"""Seconds after which the server deletes the consumer should this process die mid-read."""


@dataclass
class Checkpoint:
    events: dict[str, ChangeEvent] = field(default_factory=dict)
    """The last change event per subject, when readable."""
    sequences: dict[str, int] = field(default_factory=dict)
    """The stream sequence of the last message per subject, readable or not."""


async def last_events(js: JetStreamContext, stream: str, filters: Sequence[str]) -> Checkpoint:
    """The last message per subject matching any of `filters`.

    Waits as long as the stream takes; callers bound it with `gati_runtime.cancellation.within`
    (a lost cancel would leave `asyncio.timeout` waiting here for good)."""
    found = Checkpoint()
    done = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        metadata = msg.metadata
        found.sequences[msg.subject] = metadata.sequence.stream
        try:
            found.events[msg.subject] = decode_event(msg.data, ChangeEvent)
        except EventDecodeError as error:
            found.events.pop(msg.subject, None)
            SKIPPED.labels(kind=msg.subject.split(".")[2], reason="undecodable").inc()
            log.warning("checkpoint_message_skipped", subject=msg.subject, error=str(error))
        if metadata.num_pending == 0:
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
