"""Which subjects a read asks the server to filter, and which it filters itself.

nats-server 2.15 serves a consumer with several `filter_subjects` through `LoadNextMsgMulti`
(nats-server #4888, #5274): measured here at ~200 µs of server CPU per delivered message on the
`GATI` stream, against ~5 µs with no filter and ~15 µs with one, which capped such a read at
2-4k messages/s whatever the client did. So a read for several wildcard filters (the subjects a
service consumes: most of the stream) asks the server for the one pattern that covers them all
and drops the rest itself, which costs the client a subject match per extra message. Several
literal subjects (one object's history) stay filtered on the server: it finds each in its
per-subject index, so the read's cost follows the object's history, not the stream's size. The
reader then reads each with a consumer of its own and merges them by sequence (an object's
history among 100,000 events: 0.02-0.17 s against 0.07-0.32 s with one multi-filter consumer),
except when it follows live messages, which only one consumer delivers in stream order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from gati_runtime.subject_filter import ANY_TOKEN, REST, any_of, subject_matches

WHOLE_STREAM = REST
"""The filter that asks for every message; nats-server takes it as no filter at all, where a
filter equal to the stream's own subject (`gati.>`) is still matched per message."""


def covering_pattern(filters: Sequence[str]) -> str:
    """The narrowest single pattern matching every subject any of `filters` matches."""
    if not filters:
        raise ValueError("covering_pattern needs at least one filter")
    split = [f.split(".") for f in filters]
    shortest = min(len(tokens) for tokens in split)
    cover: list[str] = []
    for index in range(shortest):
        column = {tokens[index] for tokens in split}
        if REST in column:
            return ".".join([*cover, REST])
        cover.append(column.pop() if len(column) == 1 else ANY_TOKEN)
    if any(len(tokens) != shortest for tokens in split):
        # The shorter filters end here and the longer go on: one or more tokens from here.
        cover[-1] = REST
    return ".".join(cover)


def _literal(pattern: str) -> bool:
    return not any(token in (ANY_TOKEN, REST) for token in pattern.split("."))


@dataclass(frozen=True)
class ReadPlan:
    server_filters: tuple[str, ...]
    """What the consumer is created with: one pattern (`>` for the whole stream), or several
    literal subjects."""
    client_filters: tuple[str, ...] | None
    """What a delivered message's subject must match as well, or None when the server's
    filter is exactly what was asked for."""

    def wants(self, subject: str) -> bool:
        return self.client_filters is None or self._client_match(subject)

    @cached_property
    def _client_match(self) -> Callable[[str], bool]:
        return any_of(self.client_filters or ())


def plan_read(filters: Sequence[str], stream_subjects: Sequence[str]) -> ReadPlan:
    """How to read `filters` from a stream configured with `stream_subjects`."""
    if not filters or any(not f for f in filters):
        raise ValueError("a read needs one or more non-empty filter subjects")
    wanted = tuple(dict.fromkeys(filters))
    if len(wanted) > 1 and all(_literal(f) for f in wanted):
        return ReadPlan(server_filters=wanted, client_filters=None)
    cover = covering_pattern(wanted)
    whole = bool(stream_subjects) and all(subject_matches(cover, s) for s in stream_subjects)
    # Nothing to check here when one filter takes all the cover does, or when the filters
    # between them take every subject the stream holds.
    exact = any(subject_matches(f, cover) for f in wanted) or (
        whole and all(any(subject_matches(f, s) for f in wanted) for s in stream_subjects)
    )
    return ReadPlan(
        server_filters=(WHOLE_STREAM if whole else cover,),
        client_filters=None if exact else wanted,
    )
