"""A change as it goes on the bus: subject, the contracts' envelope and headers, trace context.

The trace id is derived from the `Nats-Msg-Id`, so every replica that publishes the same change
starts the same trace and the copy JetStream keeps carries the trace all replicas logged; the
span id is this publish's own. W3C asks span ids to be random, not secret, so they come from the
process's PRNG: a system call per change for `secrets` showed in the watcher's profile.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gati_contracts.events import ChangeEvent, ChangeType, encode_event, event_headers

TRACE_VERSION = "00"
SAMPLED = "01"


@dataclass(frozen=True, slots=True)
class Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str]
    event: ChangeEvent


def traceparent(msg_id: str) -> str:
    """W3C `traceparent` (version 00, sampled) whose trace id identifies the change itself."""
    trace_id = hashlib.blake2b(msg_id.encode(), digest_size=16).hexdigest()
    if trace_id == "0" * 32:  # all-zero ids are invalid in W3C trace context
        trace_id = "0" * 31 + "1"
    span = random.getrandbits(64) or 1  # an all-zero span id is invalid too
    return f"{TRACE_VERSION}-{trace_id}-{span:016x}-{SAMPLED}"


def outgoing(
    change: ChangeType,
    subject: str,
    obj: Mapping[str, Any],
    *,
    source: str,
    observed_at: datetime,
    masked_fields: tuple[str, ...] = (),
) -> Outgoing:
    """Raises `ValueError` naming the missing field when `obj` is not a Kubernetes object."""
    event = ChangeEvent.of(
        change, obj, source=source, observed_at=observed_at, masked_fields=masked_fields
    )
    return Outgoing(
        subject=subject,
        payload=encode_event(event),
        headers=event_headers(event, traceparent(event.event_id)),  # a change's id is its msg id
        event=event,
    )
