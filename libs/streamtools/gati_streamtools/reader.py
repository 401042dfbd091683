"""The one way the stream tools read a stream: an ordered push consumer over a range.

An ordered consumer with a message callback is the fastest read nats-py offers here (DESIGN.md
§7, several times `next_msg`) and needs no durable state; of this bus's events, which carry three
headers nats-py parses in Python, it reads ~36-40k/s, not the ~180k/s of §7 (`bench.replay`
says why). Which filters the server applies and which the reader applies itself is
`subject_filters.plan_read`'s call (a consumer with several filters is served 10-40 times slower
by nats-server 2.15). The callback only appends to a buffer; the iterator hands the buffer out
in batches, so a slow consumer of the iterator never runs inside the callback (callbacks run one
at a time, nats-py #447).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import NamedTuple

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gati_runtime.ack_subject import ack_position
from gati_streamtools.positions import Position
from gati_streamtools.subject_filters import ReadPlan, plan_read

INACTIVE_THRESHOLD = 30.0
"""Seconds after which the server drops the ephemeral consumer should this process die."""


class StoredMessage(NamedTuple):
    """A message as the stream stored it: where, when, and the raw bytes (decoded later).

    A named tuple, immutable as a frozen dataclass is but built in ~0.6 us instead of ~1.4: a
    read builds one per message, ~10 % of what the reader adds to nats-py's own cost of it.
    """

    stream: str
    sequence: int
    subject: str
    stored_ns: int
    """When the stream stored it, in nanoseconds since the epoch, as the ack subject says."""
    headers: dict[str, str]
    data: bytes

    @property
    def time(self) -> datetime:
        """`stored_ns` as an instant, built when asked: a tool that shows or compares times asks,
        a replay of the reconciler never does, and the datetime was ~0.5 us of every message."""
        return _stored_time(self.stored_ns)


def _stored_time(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos / 1_000_000_000, UTC)


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
) -> AsyncGenerator[list[StoredMessage], None]:
    """Batches of stored messages matching `filters`, in stream order, from `since` on.

    Without `follow` the read ends at `until` or at the last message stored when the read
    reached it; with `follow` it waits for new messages until `until` or until cancelled.
    """
    if not filters:
        raise ValueError("read_range needs at least one filter subject")
    stream_info = await js.stream_info(stream)
    plan = plan_read(filters, stream_info.config.subjects or ())
    if len(plan.server_filters) > 1 and not follow:
        # Literal subjects, one object's: a consumer each, merged (see subject_filters).
        async def whole(subject: str) -> list[StoredMessage]:
            one = ReadPlan(server_filters=(subject,), client_filters=None)
            return [m async for b in _read(js, stream, one, since, until, follow) for m in b]

        parts = await asyncio.gather(*(whole(subject) for subject in plan.server_filters))
        merged = list(heapq.merge(*parts, key=attrgetter("sequence")))
        if merged:
            yield merged
        return
    async for batch in _read(js, stream, plan, since, until, follow):
        yield batch


async def _read(
    js: JetStreamContext,
    stream: str,
    plan: ReadPlan,
    since: Position | None,
    until: Position | None,
    follow: bool,
) -> AsyncGenerator[list[StoredMessage], None]:
    buffer: deque[StoredMessage] = deque()
    arrived = asyncio.Event()
    caught_up = asyncio.Event()
    past_until = False

    wants = plan.wants

    async def on_message(msg: Msg) -> None:
        nonlocal past_until
        sequence, nanos, pending = ack_position(msg.reply)
        subject = msg.subject
        if wants(subject):
            buffer.append(
                StoredMessage(stream, sequence, subject, nanos, msg.headers or {}, msg.data)
            )
        elif until is not None and until.after(sequence, _stored_time(nanos)):
            past_until = True
        if pending == 0:
            caught_up.set()
        arrived.set()

    subscription = await js.subscribe(
        plan.server_filters[0],
        stream=stream,
        cb=on_message,
        ordered_consumer=True,
        config=_start_config(plan.server_filters, since, follow),
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
            if until is None:
                # Everything buffered belongs to the range: handed out whole, not one by one.
                batch = list(buffer)
                buffer.clear()
            else:
                batch = []
                while buffer:
                    message = buffer.popleft()
                    if until.after(message.sequence, message.time):
                        if batch:
                            yield batch
                        return
                    batch.append(message)
            if batch:
                yield batch
            if past_until or (not follow and caught_up.is_set() and not buffer):
                return
    finally:
        await subscription.unsubscribe()
