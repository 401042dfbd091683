"""withheld: a bus copy with a masked field a consumer reads is told from a usable one, by the
paths the watcher names in the event, never by searching the object for the marker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from gati_contracts.events import ChangeEvent, ChangeType, decode_event, encode_event
from gati_runtime.bus_copy import withheld
from gati_runtime.redaction import LAST_APPLIED, REDACTED, Redaction

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def obj(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {"name": "h", "uid": "u", "resourceVersion": "1", "annotations": annotations},
        "spec": {"image": "a:1", "env": {"TOKEN": "s3cret"}},
        "status": {"phase": "Running"},
    }


def published(redaction: Redaction, source: dict[str, Any]) -> ChangeEvent:
    """The event as a watcher with `redaction` publishes it, read back off the wire."""
    masked = redaction.apply(source)
    event = ChangeEvent.of(
        ChangeType.MODIFIED,
        masked.obj,
        source="w",
        observed_at=NOW,
        masked_fields=masked.paths,
    )
    return decode_event(encode_event(event), ChangeEvent)


def test_the_default_mask_of_the_last_applied_annotation_leaves_the_copy_usable() -> None:
    event = published(
        Redaction.default(), obj(**{"kubectl.kubernetes.io/last-applied-configuration": "{...}"})
    )
    assert event.masked_fields == (LAST_APPLIED,)
    assert "s3cret" in str(event.obj)
    assert "{...}" not in str(event.obj)
    assert not withheld(event)
    assert not withheld(published(Redaction.default(), obj()))


@pytest.mark.parametrize(
    "paths", ["metadata.annotations", "metadata.annotations[*]", "metadata.annotations['team']"]
)
def test_any_mask_under_the_annotations_leaves_the_copy_usable(paths: str) -> None:
    event = published(Redaction.parse(paths), obj(team="secret-team"))
    assert event.masked_fields
    assert not withheld(event)


@pytest.mark.parametrize("paths", [f"{LAST_APPLIED},spec.env[*]", "status.phase", "*.env"])
def test_a_masked_field_a_consumer_may_read_makes_the_copy_unusable(paths: str) -> None:
    event = published(
        Redaction.parse(paths), obj(**{"kubectl.kubernetes.io/last-applied-configuration": "{}"})
    )
    assert event.masked_fields
    assert withheld(event)


def test_an_objects_own_marker_value_is_no_mask() -> None:
    source = obj()
    source["spec"]["env"]["TOKEN"] = REDACTED
    event = published(Redaction.parse("spec.env[*]"), source)
    assert event.masked_fields == ()
    assert not withheld(event)


def test_a_path_this_build_cannot_read_is_taken_as_masked() -> None:
    event = msgspec.structs.replace(
        published(Redaction.default(), obj()), masked_fields=("spec..[",)
    )
    assert withheld(event)


def test_an_event_of_a_watcher_before_masked_fields_is_read_from_the_api_server() -> None:
    current = encode_event(published(Redaction.default(), obj()))
    old = msgspec.json.decode(current)
    del old["maskedFields"]
    event = decode_event(msgspec.json.encode(old), ChangeEvent)
    assert event.masked_fields is None
    assert event.obj == obj()
    assert withheld(event)
