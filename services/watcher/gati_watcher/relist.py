"""The stream is the checkpoint: a fresh list compared with the last event of each subject.

Pure, so the rule that decides what a relist publishes is tested without servers. Equality of
resourceVersion (an opaque string, never ordered, as Kubernetes requires) means "already
recorded": a relist of unchanged objects publishes nothing. A subject whose last event is not a
deletion but whose object is gone gets `DELETED`; an object recreated under the same name (a new
uid) first gets its predecessor's `DELETED`, so a consumer never mistakes one object for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gati_contracts.events import ChangeEvent, ChangeType


@dataclass(frozen=True)
class Change:
    type: ChangeType
    subject: str
    obj: Mapping[str, Any]


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def relist_changes(
    listed: Mapping[str, Mapping[str, Any]], last: Mapping[str, ChangeEvent]
) -> list[Change]:
    """What to publish so the stream's last event per subject matches `listed`.

    `listed` and `last` are keyed by subject and cover the same scope (one kind, one namespace
    or all); subjects in `last` outside what was listed are taken as deleted.
    """
    changes: list[Change] = []
    for subject, obj in listed.items():
        metadata = _metadata(obj)
        previous = last.get(subject)
        if previous is None or previous.type is ChangeType.DELETED:
            changes.append(Change(ChangeType.ADDED, subject, obj))
        elif previous.uid != metadata.get("uid"):
            changes.append(Change(ChangeType.DELETED, subject, previous.obj))
            changes.append(Change(ChangeType.ADDED, subject, obj))
        elif previous.resource_version != metadata.get("resourceVersion"):
            changes.append(Change(ChangeType.MODIFIED, subject, obj))
    for subject, previous in last.items():
        if subject not in listed and previous.type is not ChangeType.DELETED:
            changes.append(Change(ChangeType.DELETED, subject, previous.obj))
    return changes


def _state(obj: Mapping[str, Any] | None) -> tuple[Any, Any] | None:
    if obj is None:
        return None
    metadata = _metadata(obj)
    return metadata.get("uid"), metadata.get("resourceVersion")


def redecide(
    subject: str,
    listed: Mapping[str, Any] | None,
    last: ChangeEvent | None,
    current: Mapping[str, Any] | None,
) -> list[Change]:
    """What to publish after another publisher stored something on `subject` between our read
    of the stream and our relist's publish.

    `listed` is the object as our list saw it (None: absent), `last` the subject's last event
    now, `current` the object as the API server has it now (None: gone). resourceVersions
    cannot be ordered, so which of `listed` and `last` is newer is decided by `current`: if the
    object changed since our list, our own watch (which starts from the list's resourceVersion)
    publishes those changes in order, as the other replica does, so nothing is published here.
    If it did not change, `last` is older than `listed` (nothing newer exists), and the relist's
    diff stands against it.
    """
    if _state(current) != _state(listed):
        return []
    return relist_changes(
        {subject: listed} if listed is not None else {},
        {subject: last} if last is not None else {},
    )
