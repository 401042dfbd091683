"""NATS status messages: the headers and codes a headers-only answer from the server carries.

The server ends a pull request, answers a direct get that finds nothing, or tells a requester
nobody listens with a message whose header block starts `NATS/1.0 <code> <description>`;
nats-py parses that line into the `Status` and `Description` headers. The pull loop, the
stream-state reads and the watcher's publish acks read the same codes, so they are stated once
here, as plain strings: nats-py's own `Header`/`StatusCode` are str enums, ~0.6 us a lookup or
comparison against ~0.05 for a str, on a path taken for every delivery and every ack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

STATUS: Final = "Status"
DESCRIPTION: Final = "Description"

IDLE_HEARTBEAT: Final = "100"
NOT_FOUND: Final = "404"
"""A pull request with nothing (more) pending, or a direct get with no such message."""
REQUEST_TIMEOUT: Final = "408"
CONFLICT: Final = "409"
NO_RESPONDERS: Final = "503"
"""No one subscribes to the request's subject (JetStream not there, or not yet)."""


def status_code(headers: Mapping[str, str] | None) -> str | None:
    """The code of a status message, None for a message that carries none (a stored message,
    a PubAck, an answer with a body)."""
    return headers.get(STATUS) if headers else None
