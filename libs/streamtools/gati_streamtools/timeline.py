"""One object's history, built from its records: what changed, what the services did about it.

Pure: the command reads the object's subjects and hands the records here, so the rules (which
outcome belongs to which change, what counts as a status transition) are tested without a
server. An outcome is linked to its cause by the input stream sequence it carries, the same
number the stream gave the change, so the link holds whichever replica handled it and however
often it was retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gati_contracts.events import ChangeEvent, OutcomeEvent
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_KINDS, GATI_MODULE
from gati_contracts.ownership import owned_name
from gati_contracts.subjects import cr_subject, owned_subject, status_subject
from gati_reconciler.diff import Change, object_changes
from gati_streamtools.records import Record


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str


class ObjectRefError(ValueError):
    pass


def parse_object_ref(text: str) -> ObjectRef:
    """`KIND/NAMESPACE/NAME`; the kind as in kubectl: `GatiHandler`, `gatihandler`, `gh`."""
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise ObjectRefError(f"object {text!r} must be KIND/NAMESPACE/NAME, such as gh/shop/orders")
    kind, namespace, name = parts
    for info in GATI_KINDS:
        if kind.lower() in {info.kind.lower(), info.plural, info.short_name}:
            return ObjectRef(info.kind, namespace, name)
    raise ObjectRefError(
        f"object {text!r}: kind {kind!r} must be one of GatiHandler (gh), GatiModule (gm), "
        "GatiVersion (gv)"
    )


def object_subjects(ref: ObjectRef) -> list[str]:
    """The object's changes and outcomes, and its Deployment's changes when it owns one."""
    subjects = [
        cr_subject(ref.kind, ref.namespace, ref.name),
        status_subject(ref.kind, ref.namespace, ref.name),
    ]
    if ref.kind in (GATI_HANDLER.kind, GATI_MODULE.kind):
        subjects.append(owned_subject(DEPLOYMENT.kind, ref.namespace, owned_name(ref.name)))
    return subjects


@dataclass
class Entry:
    """One line of the timeline: a change (with the outcomes it caused), an outcome whose cause
    is outside the range read, or a message that could not be read."""

    record: Record
    spec_changes: list[Change] = field(default_factory=list)
    status_changes: list[str] = field(default_factory=list)
    outcomes: list[Record] = field(default_factory=list)


def build_timeline(records: Iterable[Record]) -> list[Entry]:
    entries: list[Entry] = []
    by_sequence: dict[int, Entry] = {}
    last_object: dict[str, Mapping[str, Any]] = {}
    for record in records:
        event = record.event
        if isinstance(event, OutcomeEvent):
            cause = by_sequence.get(event.input_sequence or 0)
            if cause is not None:
                cause.outcomes.append(record)
                continue
            entries.append(Entry(record))
            continue
        entry = Entry(record)
        if isinstance(event, ChangeEvent):
            before = last_object.get(record.message.subject)
            entry.spec_changes = spec_changes(before, event.obj)
            entry.status_changes = status_changes(before, event.obj)
            last_object[record.message.subject] = event.obj
            by_sequence[record.message.sequence] = entry
        entries.append(entry)
    return entries


def spec_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[Change]:
    """Differences of `spec`; a first sight shows the whole spec as added."""
    old = {"spec": before.get("spec", {})} if before is not None else {}
    return object_changes(old, {"spec": after.get("spec", {})})


def status_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """Phase, replica counts and conditions that moved, as `phase: Pending -> Running`."""
    old = _status(before)
    new = _status(after)
    lines = [
        f"{key}: {old.get(key, '-')} -> {new[key]}"
        for key in ("phase", "readyReplicas", "currentWeight", "currentStep")
        if key in new and old.get(key) != new[key]
    ]
    old_conditions = _conditions(old)
    for kind, (status, reason) in _conditions(new).items():
        if old_conditions.get(kind) != (status, reason):
            was = old_conditions.get(kind, ("-", ""))[0]
            lines.append(f"condition {kind}: {was} -> {status} ({reason})")
    return lines


def _status(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    status = obj.get("status") if obj is not None else None
    return status if isinstance(status, Mapping) else {}


def _conditions(status: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    conditions = status.get("conditions")
    if not isinstance(conditions, Sequence):
        return {}
    return {
        str(c.get("type")): (str(c.get("status")), str(c.get("reason", "")))
        for c in conditions
        if isinstance(c, Mapping)
    }
