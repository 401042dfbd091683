"""The traffic samples of one version over a recent window, read back from `GATI_METRICS`.

The health gate judges success rate and p99 over the last analysis interval. The stream already
holds every sample durably for `GATI_METRICS_MAX_AGE`, so reading the window back at check time
needs no copy in status or in memory: a restarted replica, or a second one, judges the same
samples, and a router's samples that arrive in any order are all there.

The read starts `CLOCK_SLACK` before the window, since a router stamps `observedAt` on its own
clock and the stream stores on the server's; `read_health` then keeps exactly the window by
`observedAt`. An ephemeral pull consumer without acks is created per read and deleted after it;
should this process die mid-read, the server drops it after `INACTIVE_THRESHOLD`. The version's
last stored sample is looked up first: with none since the start, the window is empty, and one
request answers what a consumer took four for (a burst of new versions, none serving traffic
yet, is judged on every pass).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Final

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from gati_contracts.events import EventDecodeError, TrafficSample, decode_event
from gati_contracts.subjects import traffic_subject

CLOCK_SLACK: Final = timedelta(seconds=30)
INACTIVE_THRESHOLD: Final = 30.0
"""Seconds before the server removes a read consumer its process no longer uses."""
NO_MESSAGE: Final = 10037
"""JetStream's code for a subject with nothing stored (JSNoMessageFoundErr); a missing stream
answers 404 too, with its own code."""
BATCH: Final = 256
FETCH_TIMEOUT: Final = 5.0
"""Seconds one fetch of messages already stored may take before the read gives up."""

log = structlog.get_logger(__name__)


async def samples_since(
    js: JetStreamContext,
    stream: str,
    *,
    namespace: str,
    path: str,
    version_id: str,
    since: datetime,
) -> list[TrafficSample]:
    """Samples of the version stored from `since - CLOCK_SLACK` until now, in stream order.

    A message that is not a valid sample is skipped with a warning: the traffic consumer
    reports it as poison already, and one bad router must not hold every rollout.
    """
    start = since - CLOCK_SLACK
    subject = traffic_subject(namespace, path, version_id)
    try:
        last = await js.get_last_msg(stream, subject)
    except NotFoundError as error:
        if error.err_code != NO_MESSAGE:
            raise  # the stream itself is gone: the pass fails rather than judging no traffic
        return []
    if last.time is not None and last.time < start:
        return []
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=start,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=INACTIVE_THRESHOLD,
        mem_storage=True,
    )
    subscription = await js.pull_subscribe(subject, stream=stream, config=config)
    try:
        pending = (await subscription.consumer_info()).num_pending or 0
        samples: list[TrafficSample] = []
        while pending > 0:
            messages = await subscription.fetch(min(pending, BATCH), timeout=FETCH_TIMEOUT)
            pending -= len(messages)
            for message in messages:
                try:
                    samples.append(decode_event(message.data, TrafficSample))
                except EventDecodeError as error:
                    log.warning("skipping an unreadable sample", subject=subject, error=str(error))
        return samples
    finally:
        await subscription.unsubscribe()
        # pull_subscribe names the ephemeral consumer it creates; the server may have dropped it.
        if config.name is not None:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, config.name)
