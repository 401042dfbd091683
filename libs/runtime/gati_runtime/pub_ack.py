"""JetStream's answer to a publish, read once for callers that raise and callers that branch.

A publish sent as a plain request (`gati_runtime.replies`, the watcher's pipeline) gets the
server's raw reply. Most callers want nats-py's `JetStreamContext.publish` behaviour, since they
decide on its error types and codes (the publisher's retries, the lease's compare-and-set):
`pub_ack`. The watcher's pipeline reads thousands of acks a second and turns each outcome into
a branch, where an exception per conflict or retry would cost more than the decode: it reads
the same answer with `read_pub_ack`, which never raises.
"""

from __future__ import annotations

from typing import Final

import msgspec
from nats.aio.msg import Msg
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

from gati_runtime.nats_status import NO_RESPONDERS, status_code

WRONG_LAST_SEQUENCE: Final = frozenset({10071, 10164})
"""JetStream's error codes (JSStreamWrongLastSequenceErrF and its constant form) when an expected
last (subject) sequence does not hold: somebody else wrote the subject first."""


class JetStreamError(msgspec.Struct, frozen=True):
    """The server's refusal of a publish: HTTP-like `code`, JetStream's own `err_code`."""

    code: int = 0
    err_code: int | None = None
    description: str | None = None


class PubAckReply(msgspec.Struct, frozen=True):
    """A stream's answer to a publish: where it stored the message, or why it did not."""

    stream: str = ""
    seq: int = 0
    domain: str | None = None
    duplicate: bool | None = None
    error: JetStreamError | None = None


_decode = msgspec.json.Decoder(PubAckReply).decode


def read_pub_ack(reply: Msg) -> PubAckReply | None:
    """The stream's answer, None when the reply is none: no stream listens on the subject (the
    503 no-responders status, which has no body) or the body is no PubAck JSON."""
    try:
        return _decode(reply.data)
    except msgspec.DecodeError:
        return None


def pub_ack(reply: Msg) -> PubAck:
    """The stored message's PubAck (`duplicate` set when the stream had it already).

    Raises as nats-py does: `NoStreamResponseError` when no stream listens on the subject (503
    no responders), the `APIError` subclass of the server's error code with its `err_code` and
    description (`ServiceUnavailableError` for 503, `BadRequestError` for 400, ...), and
    `ValueError` for a reply that is no JSON."""
    answer = read_pub_ack(reply)
    if answer is None:
        if status_code(reply.headers) == NO_RESPONDERS:
            raise NoStreamResponseError
        raise ValueError(f"a publish's reply is no JSON PubAck: {reply.data[:200]!r}")
    if answer.error is not None:
        APIError.from_error(msgspec.structs.asdict(answer.error))
    return PubAck(
        stream=answer.stream, seq=answer.seq, domain=answer.domain, duplicate=answer.duplicate
    )
