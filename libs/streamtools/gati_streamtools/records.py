"""A stored message with its event, and the export line that carries both to other tools.

A message that is not a readable event (a foreign publisher, a newer schema) is still a fact in
the stream: every tool shows it as such, with the reason, and the export keeps its bytes
(base64), so nothing read from the stream is lost or silently dropped.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from gati_contracts.events import AnyEvent, EventDecodeError, decode_any
from gati_streamtools.reader import StoredMessage


class Record(NamedTuple):
    """A named tuple for the reason `StoredMessage` is one: one per message read."""

    message: StoredMessage
    event: AnyEvent | None
    error: str | None = None
    """Why `event` is None: the decoder's own words."""


def decode_record(message: StoredMessage) -> Record:
    try:
        return Record(message, decode_any(message.data))
    except EventDecodeError as error:
        return Record(message, None, str(error))


_NULL = b"null"


class ExportLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of `gati-operator export`: stream metadata, then the event as published."""

    stream: str
    sequence: int
    subject: str
    time: datetime
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    event: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(_NULL))
    """The event as published, or JSON null when the payload is not a readable event."""
    error: str | None = None
    data_base64: str | None = msgspec.field(default=None, name="dataBase64")
    """The raw payload, only when it is not a readable event."""


class ExportLineError(ValueError):
    pass


_LINE_ENCODER = msgspec.json.Encoder()
_LINE_DECODER = msgspec.json.Decoder(ExportLine)


def export_line(record: Record) -> bytes:
    """The JSON line (no newline); a readable event is embedded byte for byte as published."""
    message = record.message
    line = ExportLine(
        stream=message.stream,
        sequence=message.sequence,
        subject=message.subject,
        time=message.time,
        headers=message.headers,
    )
    if record.event is not None:
        line.event = msgspec.Raw(message.data)
    else:
        line.error = record.error
        line.data_base64 = base64.b64encode(message.data).decode("ascii")
    return _LINE_ENCODER.encode(line)


def read_export_line(line: bytes | str) -> tuple[ExportLine, AnyEvent | None]:
    """Parse a line back into its metadata and event; the inverse of `export_line`."""
    try:
        parsed = _LINE_DECODER.decode(line)
    except msgspec.DecodeError as error:
        raise ExportLineError(f"not an export line: {error}") from None
    if bytes(parsed.event) == _NULL:
        return parsed, None
    try:
        return parsed, decode_any(bytes(parsed.event))
    except EventDecodeError as error:
        raise ExportLineError(f"line of sequence {parsed.sequence}: {error}") from None


def event_json(record: Record) -> dict[str, Any] | None:
    """The event as plain JSON values, for `--json` outputs that nest it."""
    return msgspec.to_builtins(record.event) if record.event is not None else None
