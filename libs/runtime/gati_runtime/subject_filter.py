"""Whether a subject falls under consumer filters, decided in the client as the server would.

A durable can leave its filters to the client (`ConsumerSpec.filter_on_server`): nats-server
then delivers the whole stream, read in order, and the consumer loop settles what its service
does not handle without looking further. This is the server's subject matching (NATS subjects,
ADR-6): tokens split on `.`, `*` is exactly one token, `>` one or more trailing tokens, a
wildcard only when it is the whole token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_ONE_TOKEN = r"[^.]+"


def _pattern(subject_filter: str) -> str:
    tokens = subject_filter.split(".")
    if not all(tokens):
        raise ValueError(f"consumer filter {subject_filter!r} has an empty token")
    if ">" in tokens[:-1]:
        raise ValueError(f"consumer filter {subject_filter!r}: '>' may only be the last token")
    parts = []
    for token in tokens:
        if token == "*":
            parts.append(_ONE_TOKEN)
        elif token == ">":
            parts.append(rf"{_ONE_TOKEN}(?:\.{_ONE_TOKEN})*")
        else:
            parts.append(re.escape(token))
    return r"\.".join(parts)


def subject_filter(filters: Sequence[str]) -> Callable[[str], bool]:
    """A test of one subject against any of `filters` (one compiled pattern for all of them)."""
    if not filters:
        raise ValueError("a subject filter needs at least one consumer filter")
    matches = re.compile("|".join(f"(?:{_pattern(item)})" for item in filters)).fullmatch
    return lambda subject: matches(subject) is not None
