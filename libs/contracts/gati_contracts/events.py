"""The messages on the bus: msgspec Structs, JSON on the wire so any tool can read them.

Every payload names its schema (`"schema": "gati.change"`) and `schemaVersion` in the body, so
a message read from a stream dump is self-describing; the same pair travels in headers for tools
that filter without parsing. Decoding never raises anything but `EventDecodeError`: a garbage,
truncated, oversized, absurdly nested or wrong-version message is the sender's fault and must
be terminated and counted by the consumer, never crash it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

import msgspec

from gati_contracts import headers

SCHEMA_VERSION: Final = 1
MAX_EVENT_BYTES: Final = 1024 * 1024
"""NATS's default max_payload; a larger message could not have been published intact."""

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
Count = Annotated[int, msgspec.Meta(ge=0)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class Event(msgspec.Struct, kw_only=True, frozen=True, rename="camel", tag_field="schema"):
    schema_version: int = SCHEMA_VERSION

    @property
    def msg_id(self) -> str | None:
        """The de-duplication id; None where a repeat is harmless (samples, tables)."""
        return None


class ChangeType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    SYNC = "SYNC"
    """Republished from a full list, so a consumer can converge without the original event."""


class ChangeEvent(Event, kw_only=True, frozen=True, tag="gati.change"):
    """A Kubernetes object as the watcher saw it, on `gati.cr.>` and `gati.owned.>`."""

    event_id: NonEmpty
    type: ChangeType
    kind: NonEmpty
    api_version: NonEmpty
    namespace: str
    name: NonEmpty
    uid: NonEmpty
    resource_version: NonEmpty
    generation: int | None = None
    observed_at: Timestamp
    source: NonEmpty
    """The watcher instance that published it."""
    masked_fields: tuple[str, ...] | None = None
    """The `GATI_REDACT_FIELDS` paths, as configured, that masked a value of `object` (empty:
    `object` is as the API server returned it). None in events of watchers that predate the
    field: any value of such a copy may be the marker, so a consumer that acts on the object
    must read it from the API server instead."""
    obj: dict[str, Any] = msgspec.field(name="object")

    @property
    def msg_id(self) -> str:
        return headers.change_msg_id(
            self.uid, self.resource_version, deleted=self.type is ChangeType.DELETED
        )

    @classmethod
    def of(
        cls,
        change: ChangeType,
        obj: Mapping[str, Any],
        *,
        source: str,
        observed_at: datetime,
        masked_fields: tuple[str, ...] = (),
    ) -> ChangeEvent:
        """Build the event from the object itself, so every replica derives the same fields;
        `masked_fields` names the paths the publisher masked in `obj`.

        Raises `ValueError` naming the missing field when `obj` is not a Kubernetes object.
        """
        metadata = obj.get("metadata")
        if type(metadata) is not dict and not isinstance(metadata, Mapping):
            raise ValueError("object has no metadata mapping")
        kind = _identifying(obj, "kind", "kind")
        api_version = _identifying(obj, "apiVersion", "apiVersion")
        name = _identifying(metadata, "name", "metadata.name")
        uid = _identifying(metadata, "uid", "metadata.uid")
        resource_version = _identifying(metadata, "resourceVersion", "metadata.resourceVersion")
        generation = metadata.get("generation")
        return cls(
            event_id=headers.change_msg_id(
                uid, resource_version, deleted=change is ChangeType.DELETED
            ),
            type=change,
            kind=kind,
            api_version=api_version,
            namespace=str(metadata.get("namespace", "")),
            name=name,
            uid=uid,
            resource_version=resource_version,
            generation=generation if isinstance(generation, int) else None,
            observed_at=observed_at,
            source=source,
            masked_fields=masked_fields,
            obj=dict(obj),
        )


def _identifying(place: Mapping[str, Any], field: str, path: str) -> str:
    """An identifying field of an object: a non-empty string, else the object is no
    Kubernetes object and the error names the field's `path`."""
    value = place.get(field)
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"object has no {path}")


class OutcomeResult(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    """Nothing to do: the input was stale or already applied."""


class OutcomeEvent(Event, kw_only=True, frozen=True, tag="gati.outcome"):
    """What a service decided and did about one object, on `gati.status.>`."""

    event_id: NonEmpty
    """Deterministic per input (such as `<service>:<input sequence>`) so retries deduplicate."""
    service: NonEmpty
    source: NonEmpty
    action: NonEmpty
    """What was done: reconciled, scaled, rollout-step, rolled-back, decommissioned…"""
    result: OutcomeResult
    kind: NonEmpty
    namespace: str
    name: NonEmpty
    uid: str | None = None
    reason: NonEmpty
    """CamelCase, as the reason of a Kubernetes condition."""
    message: str = ""
    input_stream: str | None = None
    input_sequence: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Stream sequence of the event that caused this outcome."""
    observed_generation: int | None = None
    observed_at: Timestamp
    details: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def msg_id(self) -> str:
        return self.event_id


@dataclasses.dataclass(frozen=True)
class OutcomeReport:
    """An `OutcomeEvent` before it is addressed: the pure decisions of the scaler and timescape
    return it, the service adds the object, the event id and the time and publishes it, and a
    replay prints it; one type, so what a replay shows is what the service would publish."""

    action: str
    result: OutcomeResult
    reason: str
    message: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


class TrafficSample(Event, kw_only=True, frozen=True, tag="gati.traffic"):
    """Requests one router or runtime saw for one handler version over a window."""

    namespace: str
    handler: NonEmpty
    """The handler path (`/api/users`), as in the subject `gati.metrics.traffic.<ns>.<path>.<v>`."""
    version: NonEmpty
    window_seconds: Annotated[float, msgspec.Meta(gt=0)]
    requests: Count
    errors: Count
    latency_p99_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    in_flight: Count = 0
    observed_at: Timestamp
    source: str = ""

    def __post_init__(self) -> None:
        if self.errors > self.requests:
            raise ValueError("errors must not exceed requests")


class RouteVersion(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    version_id: NonEmpty
    weight: Annotated[int, msgspec.Meta(ge=0, le=100)]
    activated_at: Timestamp | None = None
    service: NonEmpty
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    breaking: bool = False
    transformers: list[str] = msgspec.field(default_factory=list)


class RoutesEvent(Event, kw_only=True, frozen=True, tag="gati.routes"):
    """The routing table of one namespace and path, whole, on `gati.routes.>` and in KV."""

    namespace: str
    path: NonEmpty
    default_version: str | None = None
    versions: list[RouteVersion] = msgspec.field(default_factory=list)
    observed_at: Timestamp
    source: str = ""

    def __post_init__(self) -> None:
        ids = [version.version_id for version in self.versions]
        if len(set(ids)) != len(ids):
            raise ValueError("versionId must be unique within a routing table")
        if ids and sum(version.weight for version in self.versions) != 100:
            raise ValueError("version weights must sum to 100")
        if self.default_version is not None and self.default_version not in ids:
            raise ValueError("defaultVersion must be one of the versions")


AnyEvent = ChangeEvent | OutcomeEvent | TrafficSample | RoutesEvent
EVENT_TYPES: Final[tuple[type[Event], ...]] = (
    ChangeEvent,
    OutcomeEvent,
    TrafficSample,
    RoutesEvent,
)


def schema_name(event_type: type[Event]) -> str:
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)  # every concrete event names its schema
    return tag


_SCHEMA_NAMES: Final = tuple(schema_name(event_type) for event_type in EVENT_TYPES)


class EventDecodeError(ValueError):
    """The payload is not an event this version can read; terminate it, do not retry it."""


class MalformedEventError(EventDecodeError):
    pass


class EventTooLargeError(EventDecodeError):
    pass


class UnknownSchemaError(EventDecodeError):
    pass


class SchemaVersionError(EventDecodeError):
    pass


class _Envelope(msgspec.Struct, rename="camel"):
    schema: str
    schema_version: int


_ENCODER: Final = msgspec.json.Encoder()
_ENVELOPE_DECODER: Final = msgspec.json.Decoder(_Envelope)
_ANY_DECODER: Final[msgspec.json.Decoder[AnyEvent]] = msgspec.json.Decoder(AnyEvent)
_CANONICAL_START: Final = {
    event_type: f'{{"schema":"{schema_name(event_type)}","schemaVersion":{SCHEMA_VERSION},'.encode()
    for event_type in EVENT_TYPES
}
"""How `encode_event` opens each event: the tag, then `schemaVersion`, both first."""
_CANONICAL_STARTS: Final = tuple(_CANONICAL_START.values())
_DECODERS: Final[dict[type[Event], msgspec.json.Decoder[Any]]] = {
    event_type: msgspec.json.Decoder(event_type) for event_type in EVENT_TYPES
}

E = TypeVar("E", bound=Event)


def encode_event(event: Event) -> bytes:
    return _ENCODER.encode(event)


def event_headers(event: Event, traceparent: str | None = None) -> dict[str, str]:
    """Headers to publish `event` with: its schema, its de-duplication id and trace context."""
    result = {
        headers.SCHEMA: schema_name(type(event)),
        headers.SCHEMA_VERSION: str(event.schema_version),
    }
    msg_id = event.msg_id
    if msg_id is not None:
        result[headers.MSG_ID] = msg_id
    if traceparent is not None:
        result[headers.TRACEPARENT] = traceparent
    return result


def decode_any(payload: bytes, *, max_bytes: int = MAX_EVENT_BYTES) -> AnyEvent:
    """Decode whichever event `payload` holds, as named by its `schema` field.

    An event as this build's encoder writes it opens with its schema and `schemaVersion`, which
    proves the version present (the event's own field has a default) and readable, so one decode
    does; a replay decodes every event it reads, and the envelope's pass was a third of it. Any
    other payload, and any failure, takes the envelope first, so every refusal keeps its error.
    """
    event = _decoded_once(payload, max_bytes, _CANONICAL_STARTS, _ANY_DECODER)
    if event is not None:
        return event
    _checked_envelope(payload, max_bytes)
    try:
        return _ANY_DECODER.decode(payload)
    except (msgspec.DecodeError, RecursionError) as error:
        raise MalformedEventError(f"invalid event: {error}") from None


def decode_event(payload: bytes, expected: type[E], *, max_bytes: int = MAX_EVENT_BYTES) -> E:
    """Decode `payload` as `expected`, refusing any other schema with `UnknownSchemaError`.

    As in `decode_any`, a payload that opens as `encode_event` writes `expected` decodes once:
    every consumer decodes each delivery, and the envelope's pass was a third of it. A type
    that is no event (a caller's mistake, not bad input) is a `TypeError` naming the ones there
    are.
    """
    try:
        decoder: msgspec.json.Decoder[E] = _DECODERS[expected]
    except KeyError:
        accepted = ", ".join(event_type.__name__ for event_type in EVENT_TYPES)
        raise TypeError(
            f"decode_event: expected must be one of the event types ({accepted}), got {expected!r}"
        ) from None
    event = _decoded_once(payload, max_bytes, _CANONICAL_START[expected], decoder)
    if event is not None:
        return event
    envelope = _checked_envelope(payload, max_bytes)
    if envelope.schema != schema_name(expected):
        raise UnknownSchemaError(
            f"expected schema {schema_name(expected)!r}, got {envelope.schema!r}"
        )
    return _decode_body(payload, expected)


def _decoded_once(
    payload: bytes,
    max_bytes: int,
    starts: bytes | tuple[bytes, ...],
    decoder: msgspec.json.Decoder[E],
) -> E | None:
    """The event in `payload` when it opens with one of `starts` and decodes as read, which
    proves its version present and readable; else None, and the caller takes the envelope path,
    which alone words the refusals."""
    if len(payload) > max_bytes or not payload.startswith(starts):
        return None
    try:
        event = decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return None
    # A repeated key decodes as its last value: the version must still be this one.
    return event if event.schema_version == SCHEMA_VERSION else None


def _checked_envelope(payload: bytes, max_bytes: int) -> _Envelope:
    if len(payload) > max_bytes:
        raise EventTooLargeError(f"payload of {len(payload)} bytes exceeds {max_bytes}")
    try:
        envelope = _ENVELOPE_DECODER.decode(payload)
    except (msgspec.DecodeError, RecursionError) as error:
        raise MalformedEventError(f"not an event: {error}") from None
    if envelope.schema not in _SCHEMA_NAMES:
        raise UnknownSchemaError(
            f"unknown schema {envelope.schema!r}; expected one of {', '.join(_SCHEMA_NAMES)}"
        )
    if envelope.schema_version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{envelope.schema} version {envelope.schema_version} is not supported; "
            f"this build reads version {SCHEMA_VERSION}"
        )
    return envelope


def _decode_body(payload: bytes, event_type: type[E]) -> E:
    try:
        event: E = _DECODERS[event_type].decode(payload)
    except (msgspec.DecodeError, RecursionError) as error:
        raise MalformedEventError(f"invalid {schema_name(event_type)}: {error}") from None
    return event


def event_schema(event_type: type[Event]) -> dict[str, Any]:
    """The JSON Schema of one event, as strict about `schemaVersion` as `decode_event` is.

    msgspec marks the field optional because it has a default; the decoder requires it, so the
    published schema does too, and names the one version this build reads.
    """
    schema: dict[str, Any] = msgspec.json.schema(event_type)
    body = schema["$defs"][event_type.__name__]
    body["required"] = sorted({*body["required"], "schemaVersion"})
    body["properties"]["schemaVersion"] = {"type": "integer", "enum": [SCHEMA_VERSION]}
    return schema


def schema_file_name(event_type: type[Event]) -> str:
    return f"{schema_name(event_type)}.v{SCHEMA_VERSION}.json"


def schema_files() -> dict[str, str]:
    """The JSON Schema of each event as committed in `docs/schemas/`, keyed by file name."""
    return {
        schema_file_name(event_type): json.dumps(
            event_schema(event_type), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for event_type in EVENT_TYPES
    }
