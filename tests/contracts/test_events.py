"""Events on the bus: exact JSON round trips, and typed refusal of anything else."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import msgspec
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts import headers
from gati_contracts.asyncapi import asyncapi_document, bus_documents
from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    Event,
    EventDecodeError,
    EventTooLargeError,
    MalformedEventError,
    OutcomeEvent,
    OutcomeResult,
    RoutesEvent,
    RouteVersion,
    SchemaVersionError,
    TrafficSample,
    UnknownSchemaError,
    decode_any,
    decode_event,
    encode_event,
    event_headers,
    event_schema,
)

NOW = datetime(2026, 11, 26, 19, 0, 0, tzinfo=UTC)
OBJECT = {
    "apiVersion": "gati.dev/v1alpha1",
    "kind": "GatiHandler",
    "metadata": {
        "name": "users.v2",
        "namespace": "shop",
        "uid": "u-1",
        "resourceVersion": "42",
        "generation": 3,
    },
    "spec": {"handlerPath": "/api/users"},
}

CHANGE = ChangeEvent.of(ChangeType.MODIFIED, OBJECT, source="watcher-0", observed_at=NOW)
OUTCOME = OutcomeEvent(
    event_id="reconciler:17",
    service="reconciler",
    source="reconciler-1",
    action="reconciled",
    result=OutcomeResult.FAILED,
    kind="GatiHandler",
    namespace="shop",
    name="users.v2",
    uid="u-1",
    reason="InvalidSpec",
    message="spec.port: must be ≤ 65535",
    input_stream="GATI",
    input_sequence=17,
    observed_generation=3,
    observed_at=NOW,
    details={"attempt": 2},
)
SAMPLE = TrafficSample(
    namespace="shop",
    handler="/api/users",
    version="v2",
    window_seconds=10.0,
    requests=120,
    errors=3,
    latency_p99_ms=41.5,
    in_flight=4,
    observed_at=NOW,
)
ROUTES = RoutesEvent(
    namespace="shop",
    path="/api/users",
    default_version="v1",
    versions=[
        RouteVersion(version_id="v1", weight=90, activated_at=NOW, service="users-v1", port=8080),
        RouteVersion(
            version_id="v2",
            weight=10,
            service="users-v2",
            port=8080,
            breaking=True,
            transformers=["t"],
        ),
    ],
    observed_at=NOW,
    source="timescape-0",
)
EVENTS: list[Event] = [CHANGE, OUTCOME, SAMPLE, ROUTES]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_round_trip_through_json(event: Event) -> None:
    payload = encode_event(event)
    assert decode_any(payload) == event
    assert decode_event(payload, type(event)) == event
    wire = json.loads(payload)
    assert wire["schemaVersion"] == 1
    assert wire["schema"] == event_headers(event)[headers.SCHEMA]


def test_change_event_wire_names_follow_design() -> None:
    wire = json.loads(encode_event(CHANGE))
    assert set(wire) == {
        "schema", "schemaVersion", "eventId", "type", "kind", "apiVersion", "namespace", "name",
        "uid", "resourceVersion", "generation", "observedAt", "source", "maskedFields", "object",
    }  # fmt: skip
    assert wire["observedAt"] == "2026-11-26T19:00:00Z"
    assert wire["object"] == OBJECT
    assert wire["generation"] == 3
    assert wire["maskedFields"] == []


def test_a_change_event_of_a_watcher_before_masked_fields_still_decodes() -> None:
    """The stream keeps events for days: one published before the field existed decodes, and
    says it cannot tell what was masked (None) rather than claiming nothing was."""
    old = json.loads(encode_event(CHANGE))
    del old["maskedFields"]
    event = decode_event(json.dumps(old).encode(), ChangeEvent)
    assert event.masked_fields is None
    assert msgspec.structs.replace(event, masked_fields=()) == CHANGE


def test_msg_id_depends_on_object_state_only() -> None:
    listed = ChangeEvent.of(
        ChangeType.SYNC, OBJECT, source="watcher-1", observed_at=datetime.now(UTC)
    )
    assert listed.msg_id == CHANGE.msg_id == "u-1:42"
    deleted = ChangeEvent.of(ChangeType.DELETED, OBJECT, source="w", observed_at=NOW)
    assert deleted.msg_id == "u-1:deleted"
    assert event_headers(deleted, traceparent="00-abc-def-01") == {
        headers.MSG_ID: "u-1:deleted",
        headers.SCHEMA: "gati.change",
        headers.SCHEMA_VERSION: "1",
        headers.TRACEPARENT: "00-abc-def-01",
    }
    assert headers.MSG_ID not in event_headers(SAMPLE)
    assert event_headers(OUTCOME)[headers.MSG_ID] == "reconciler:17"


@pytest.mark.parametrize(
    ("obj", "missing"),
    [
        ({"kind": "GatiHandler", "apiVersion": "v"}, "metadata"),
        (
            {"apiVersion": "v", "metadata": {"name": "n", "uid": "u", "resourceVersion": "1"}},
            "kind",
        ),
        (
            {"kind": "K", "apiVersion": "v", "metadata": {"name": "n", "resourceVersion": "1"}},
            "metadata.uid",
        ),
        (
            {"kind": "K", "apiVersion": "v", "metadata": {"name": "n", "uid": "u"}},
            "metadata.resourceVersion",
        ),
        (
            {"kind": "K", "apiVersion": "", "metadata": {"name": "", "uid": "u"}},
            "apiVersion",
        ),
        (
            {"kind": "K", "apiVersion": "v", "metadata": {"name": "", "uid": 7}},
            "metadata.name",
        ),
        (
            {"kind": "K", "apiVersion": "v", "metadata": {"name": "n", "uid": 7}},
            "metadata.uid",
        ),
    ],
)
def test_change_event_from_a_non_object_names_what_is_missing(
    obj: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValueError, match=f"^object has no {missing}( mapping)?$"):
        ChangeEvent.of(ChangeType.ADDED, obj, source="w", observed_at=NOW)


def _with(event: Event, **changes: Any) -> bytes:
    wire = json.loads(encode_event(event)) | changes
    return json.dumps(wire).encode()


GOOD = encode_event(CHANGE)
DEEP_OBJECT = b'{"schema":"gati.change","schemaVersion":1,"object":%s1%s}' % (
    b'{"a":' * 50_000,
    b"}" * 50_000,
)
BAD_PAYLOADS = [
    (b"", MalformedEventError),
    (b"garbage", MalformedEventError),
    (b"\xff\xfe\x00", MalformedEventError),
    (b"[1, 2]", MalformedEventError),
    (b"null", MalformedEventError),
    (GOOD[: len(GOOD) // 2], MalformedEventError),
    (b'{"schemaVersion": 1}', MalformedEventError),
    (_with(CHANGE, schema="gati.unknown"), UnknownSchemaError),
    (_with(CHANGE, schemaVersion=2), SchemaVersionError),
    (_with(CHANGE, schemaVersion="1"), MalformedEventError),
    (_with(CHANGE, type="RENAMED"), MalformedEventError),
    (_with(CHANGE, observedAt="2026-11-26T19:00:00"), MalformedEventError),
    (_with(CHANGE, uid=""), MalformedEventError),
    (_with(CHANGE, object=[]), MalformedEventError),
    (_with(SAMPLE, errors=500), MalformedEventError),
    (_with(SAMPLE, requests=-1), MalformedEventError),
    (_with(SAMPLE, windowSeconds=0), MalformedEventError),
    (_with(ROUTES, defaultVersion="v9"), MalformedEventError),
    (
        _with(ROUTES, versions=[{"versionId": "v1", "weight": 50, "service": "s", "port": 80}]),
        MalformedEventError,
    ),
    (b" " * 2_000_000, EventTooLargeError),
    (DEEP_OBJECT, MalformedEventError),
    (b"[" * 100_000, MalformedEventError),
    (
        _with(CHANGE, object=None)[:-1]
        + b', "object": '
        + b'{"a":' * 50_000
        + b"1"
        + b"}" * 50_001,
        MalformedEventError,
    ),
]


@pytest.mark.parametrize(("payload", "error"), BAD_PAYLOADS)
def test_bad_payloads_raise_typed_errors(payload: bytes, error: type[EventDecodeError]) -> None:
    with pytest.raises(error):
        decode_any(payload)


def _appended(payload: bytes, members: bytes) -> bytes:
    """`payload` with `members` added at the end of its object, keeping its canonical start."""
    return payload[:-1] + b"," + members + b"}"


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (GOOD[:-1], MalformedEventError, "not an event: "),
        (_appended(GOOD, b'"schemaVersion":2'), SchemaVersionError, "gati.change version 2 is"),
        (_appended(GOOD, b'"schema":"nope"'), UnknownSchemaError, "unknown schema 'nope'; "),
        (_appended(GOOD, b'"schema":"gati.routes"'), MalformedEventError, "invalid event: "),
        (_appended(GOOD, b'"uid":""'), MalformedEventError, "invalid event: "),
        (_appended(GOOD, b'"schemaVersion":"1"'), MalformedEventError, "not an event: "),
    ],
)
def test_a_canonical_start_decodes_once_yet_keeps_every_refusal(
    payload: bytes, error: type[EventDecodeError], message: str
) -> None:
    assert payload.startswith(b'{"schema":"gati.change","schemaVersion":1,')
    with pytest.raises(error) as raised:
        decode_any(payload)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("payload", "expected", "error", "message"),
    [
        (GOOD[:-1], ChangeEvent, MalformedEventError, "not an event: "),
        (_appended(GOOD, b'"schemaVersion":2'), ChangeEvent, SchemaVersionError, "gati.change v"),
        (_appended(GOOD, b'"schema":"nope"'), ChangeEvent, UnknownSchemaError, "unknown schema "),
        (
            _appended(GOOD, b'"schema":"gati.routes"'),
            ChangeEvent,
            UnknownSchemaError,
            "expected schema 'gati.change', got 'gati.routes'",
        ),
        (_appended(GOOD, b'"uid":""'), ChangeEvent, MalformedEventError, "invalid gati.change: "),
        (_appended(GOOD, b'"schemaVersion":"1"'), ChangeEvent, MalformedEventError, "not an event"),
        (DEEP_OBJECT, ChangeEvent, MalformedEventError, "not an event: "),
        (GOOD, TrafficSample, UnknownSchemaError, "expected schema 'gati.traffic', got 'gati.c"),
    ],
)
def test_an_expected_canonical_start_decodes_once_yet_keeps_every_refusal(
    payload: bytes, expected: type[Event], error: type[EventDecodeError], message: str
) -> None:
    assert payload.startswith(b'{"schema":"gati.change","schemaVersion":1,')
    with pytest.raises(error) as raised:
        decode_event(payload, expected)
    assert str(raised.value).startswith(message)


def test_a_canonical_event_over_the_limit_is_refused_as_too_large() -> None:
    with pytest.raises(EventTooLargeError, match=f"payload of {len(GOOD)} bytes exceeds 100$"):
        decode_event(GOOD, ChangeEvent, max_bytes=100)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_is_encoded_with_the_canonical_start(event: Event) -> None:
    """What lets `decode_any` and `decode_event` decode once: the tag and the version open the
    payload."""
    start = f'{{"schema":"{type(event).__struct_config__.tag}","schemaVersion":1,'
    assert encode_event(event).startswith(start.encode())
    assert decode_any(encode_event(event)) == event
    assert decode_event(encode_event(event), type(event)) == event


def test_a_payload_of_another_schema_is_refused_when_one_is_expected() -> None:
    with pytest.raises(UnknownSchemaError, match=r"expected schema 'gati\.traffic'"):
        decode_event(GOOD, TrafficSample)


@pytest.mark.parametrize("expected", [Event, dict, "ChangeEvent"], ids=repr)
def test_a_type_that_is_no_event_is_a_type_error_naming_the_event_types(expected: Any) -> None:
    with pytest.raises(TypeError, match=r"ChangeEvent, OutcomeEvent, TrafficSample, RoutesEvent"):
        decode_event(GOOD, expected)


def test_unknown_fields_from_newer_producers_are_ignored() -> None:
    assert decode_any(_with(SAMPLE, addedLater=True)) == SAMPLE


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_the_typed_error(payload: bytes) -> None:
    with contextlib.suppress(EventDecodeError):
        decode_any(payload)


@given(st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_every_truncation_is_refused(cut: int) -> None:
    with pytest.raises(EventDecodeError):
        decode_any(GOOD[:cut])


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SAMPLE.requests = 1  # type: ignore[misc]
    assert msgspec.structs.replace(SAMPLE, requests=200).requests == 200


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_published_json_schemas_accept_what_is_encoded(event: Event) -> None:
    schema = event_schema(type(event))
    jsonschema.Draft202012Validator(schema).validate(json.loads(encode_event(event)))
    without_version = json.loads(encode_event(event))
    del without_version["schemaVersion"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(without_version)


def test_asyncapi_lists_every_subject_with_its_payload_schema() -> None:
    document = asyncapi_document()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "gati.cr.{kind}.{namespace}.{name}",
        "gati.owned.{kind}.{namespace}.{name}",
        "gati.status.{kind}.{namespace}.{name}",
        "gati.metrics.traffic.{namespace}.{handler}.{version}",
        "gati.routes.{namespace}.{path}",
    }
    files = bus_documents()
    for channel in document["channels"].values():
        params = set(re.findall(r"{(\w+)}", channel["address"]))
        assert params == set(channel["parameters"])
        for ref in channel["messages"].values():
            message = document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            assert message["payload"]["$ref"].removeprefix("./") in files
    assert yaml.safe_load(files["asyncapi.yaml"]) == document
