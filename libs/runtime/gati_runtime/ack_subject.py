"""What a JetStream delivery's ack subject says of the message, read straight from its tokens.

ADR-15: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
or with `<domain>.<account hash>` before the stream and a random token after `<pending>`.
nats-py's `Msg.metadata` builds every field, a datetime included, about 13 times dearer; the
consumer loop and the stream tools read a position from every message they get, so both read
the tokens here.
"""

from __future__ import annotations

from typing import Final

_V1_TOKENS: Final = 9
_V1_DELIVERED: Final = 4
_V2_MIN_TOKENS: Final = 11
_V2_DELIVERED: Final = 6
"""Where `<delivered>` sits in each shape; the fields after it follow in the same order."""


def _tokens(reply: str) -> tuple[list[str], int]:
    """The subject's tokens and the index of `<delivered>` among them."""
    tokens = reply.split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == _V1_TOKENS:
            return tokens, _V1_DELIVERED
        if len(tokens) >= _V2_MIN_TOKENS:
            return tokens, _V2_DELIVERED
    raise ValueError(f"not a JetStream ack subject: {reply!r}")


def delivery_position(reply: str) -> tuple[int, int]:
    """The stream sequence and the delivery count."""
    tokens, delivered = _tokens(reply)
    return int(tokens[delivered + 1]), int(tokens[delivered])


def ack_position(reply: str) -> tuple[int, int, int]:
    """The stream sequence, the stored time (ns since the epoch) and the messages still
    pending."""
    tokens, delivered = _tokens(reply)
    return int(tokens[delivered + 1]), int(tokens[delivered + 3]), int(tokens[delivered + 4])
