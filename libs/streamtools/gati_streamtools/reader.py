"""The one way the stream tools read `GATI`: an ordered push consumer over a range.

An ordered consumer with a message callback is the fastest read nats-py offers here (DESIGN.md
§7: ~180k msg/s against ~36k/s for `next_msg`), needs no durable state, and is filtered on the
server, so reading one object's history never scans the other subjects. The callback only
appends to a buffer; the iterator hands the buffer out in batches, so a slow consumer of the
iterator never runs inside the callback (callbacks run one at a time, nats-py #447).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gati_streamtools.positions import Position

INACTIVE_THRESHOLD = 30.0
"""Seconds after which the server drops the ephemeral consumer should this process die."""


@dataclass(frozen=True)
class StoredMessage:
    """A message as the stream stored it: where, when, and the raw bytes (decoded later)."""

    stream: str
    sequence: int
    subject: str
    time: datetime
    headers: dict[str, str]
    data: bytes


def _stored(msg: Msg) -> StoredMessage:
    meta = msg.metadata
    return StoredMessage(
        stream=meta.stream,
        sequence=meta.sequence.stream,
        subject=msg.subject,
        time=meta.timestamp,
        headers=dict(msg.headers or {}),
        data=msg.data,
    )


def _start_config(filters: Sequence[str], since: Position | None, follow: bool) -> ConsumerConfig:
    config = ConsumerConfig(filter_subjects=list(filters) if len(filters) > 1 else None)
    if since is None:
        config.deliver_policy = DeliverPolicy.NEW if follow else DeliverPolicy.ALL
    elif since.sequence is not None:
        config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = since.sequence
    else:
        config.deliver_policy = DeliverPolicy.BY_START_TIME
        config.opt_start_time = since.time
    return config


async def read_range(
    js: JetStreamContext,
    stream: str,
    filters: Sequence[str],
    *,
    since: Position | None = None,
    until: Position | None = None,
    follow: bool = False,
) -> AsyncIterator[list[StoredMessage]]:
    """Batches of stored messages matching `filters`, in stream order, from `since` on.

    Without `follow` the read ends at `until` or at the last message stored when the read
    reached it; with `follow` it waits for new messages until `until` or until cancelled.
    """
    if not filters:
        raise ValueError("read_range needs at least one filter subject")
    buffer: deque[StoredMessage] = deque()
    arrived = asyncio.Event()
    caught_up = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        buffer.append(_stored(msg))
        if msg.metadata.num_pending == 0:
            caught_up.set()
        arrived.set()

    subscription = await js.subscribe(
        filters[0],
        stream=stream,
        cb=on_message,
        ordered_consumer=True,
        config=_start_config(filters, since, follow),
        inactive_threshold=INACTIVE_THRESHOLD,
    )
    try:
        if not follow:
            info = await subscription.consumer_info()
            delivered = info.delivered.consumer_seq if info.delivered else 0
            if not info.num_pending and not delivered:
                return
        while True:
            await arrived.wait()
            arrived.clear()
            batch: list[StoredMessage] = []
            while buffer:
                message = buffer.popleft()
                if until is not None and until.after(message.sequence, message.time):
                    if batch:
                        yield batch
                    return
                batch.append(message)
            if batch:
                yield batch
            if not follow and caught_up.is_set() and not buffer:
                return
    finally:
        await subscription.unsubscribe()
