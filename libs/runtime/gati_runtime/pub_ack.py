"""JetStream's answer to a publish, read as nats-py's `JetStreamContext.publish` reads it.

A publish sent through `gati_runtime.replies` gets the server's raw reply; the same errors as
nats-py's must come out of it, since callers (the publisher's retries, the lease's
compare-and-set) decide on their types and codes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

from gati_runtime.nats_status import NO_RESPONDERS, status_code


def pub_ack(reply: Msg) -> PubAck:
    """The stored message's PubAck (`duplicate` set when the stream had it already).

    Raises `NoStreamResponseError` when no stream listens on the subject (503 no responders),
    the `APIError` subclass of the server's error code with its `err_code` and description
    (`ServiceUnavailableError` for 503, `BadRequestError` for 400, ...), and `ValueError` for a
    reply that is no JSON, as nats-py does."""
    if status_code(reply.headers) == NO_RESPONDERS:
        raise NoStreamResponseError
    answer: dict[str, Any] = msgspec.json.decode(reply.data)
    error = answer.get("error")
    if error is not None:
        APIError.from_error(error)
    return PubAck.from_response(answer)
