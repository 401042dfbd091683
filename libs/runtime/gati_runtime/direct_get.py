"""JetStream's direct get answers, read as nats-py's `get_msg(direct=True)` reads them.

A direct get (a stream with `allow_direct`) is a plain request any replica of the stream
answers, so it is sent on an inbox of one's own (`gati_runtime.replies`) rather than through
nats-py's `get_msg`, which builds its request with json.dumps and lifts every answer into a
RawStreamMsg. The answer is then the stored message itself, or a status saying why there is none.
"""

from __future__ import annotations

from typing import Final

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js.errors import APIError

from gati_runtime.nats_status import NO_RESPONDERS, NOT_FOUND, status_code

DIRECT_GET: Final = "$JS.API.DIRECT.GET."
"""Followed by the stream's name: the subject to ask by sequence or by subject in a JSON body;
followed by `<stream>.<subject>` as well: the subject's last message, with an empty body."""
SEQUENCE: Final = "Nats-Sequence"
"""The header of a direct get's answer that holds the message's stream sequence."""


def stored(reply: Msg) -> Msg | None:
    """The stored message a direct get's answer carries, None when the stream has none (404).

    Raises `NoRespondersError` when nobody serves the stream, as nats-py's request does, and the
    `APIError` of any other status, as nats-py's `get_msg` does."""
    status = status_code(reply.headers)
    if status is None:
        return reply
    if status == NOT_FOUND:
        return None
    if status == NO_RESPONDERS:
        raise NoRespondersError
    raise APIError.from_msg(reply)
