"""structlog set up once per process: JSON for log collectors, readable text in a terminal.

Context lives in contextvars, so each message's processing task (see `consumer`) carries its own
event id, object key and trace id on every line it logs, including lines logged by libraries
deep inside a handler, without passing a logger around.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]

# W3C Trace Context: version-traceid-parentid-flags, 32 lowercase hex digits for the trace id.
_TRACEPARENT_PARTS = 4
_TRACE_ID_LENGTH = 32
_INVALID_TRACE_ID = "0" * _TRACE_ID_LENGTH
_TRACE_ID = re.compile(f"[0-9a-f]{{{_TRACE_ID_LENGTH}}}")


def configure_logging(
    log_format: LogFormat = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    """Also routes the standard `logging` module (nats-py, aiohttp) through the same renderer."""
    out = stream or sys.stderr
    as_json = log_format == "json" or (log_format == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        shared.append(structlog.processors.dict_tracebacks)
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` header, or None when absent or malformed."""
    if not traceparent:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) != _TRACEPARENT_PARTS:
        return None
    candidate = parts[1].lower()
    if candidate == _INVALID_TRACE_ID or _TRACE_ID.fullmatch(candidate) is None:
        return None
    return candidate


def _context_var(key: str) -> ContextVar[Any]:
    """structlog's own variable for `key` (the token of a binding names it), so a binding made
    here and one made through structlog are the same variable, merged into lines alike."""
    var = _CONTEXT_VARS.get(key)
    if var is None:
        token = structlog.contextvars.bind_contextvars(**{key: None})[key]
        var = _CONTEXT_VARS[key] = token.var
        var.reset(token)
    return var


_CONTEXT_VARS: dict[str, ContextVar[Any]] = {}


class MessageContext:
    """The block of `message_context`: a plain context manager, since it runs once per consumed
    message and a generator-based one cost ~3 of its ~10 us. It sets structlog's variables
    itself, found once per key, where `bind_contextvars` and `reset_contextvars` spell and look
    up each one's name again on every call (about half of the block's cost)."""

    __slots__ = ("_fields", "_tokens")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._tokens: list[Token[Any]] = []

    def __enter__(self) -> None:
        self._tokens = [_context_var(key).set(value) for key, value in self._fields.items()]

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for token in self._tokens:
            token.var.reset(token)


def message_context(
    *, event_id: str | None, object_key: str, traceparent: str | None, **extra: object
) -> MessageContext:
    """Bind what identifies one message's processing to every log line inside the block.

    Restored by the tokens of the binding rather than by `bound_contextvars`, which copies the
    whole context first to remember what it replaces: that copy made this block ~40 % dearer,
    and it runs once per consumed message."""
    return MessageContext(
        {"event_id": event_id, "object_key": object_key, "trace_id": trace_id(traceparent)} | extra
    )
