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
    return _settle(subject, last, listed)


def _settle(
    subject: str, last: ChangeEvent | None, current: Mapping[str, Any] | None
) -> list[Change]:
    """What makes `subject`'s last event `last` record `current` (None: the object is gone)."""
    return relist_changes(
        {subject: current} if current is not None else {},
        {subject: last} if last is not None else {},
    )


def after_conflict(
    subject: str,
    obj: Mapping[str, Any],
    *,
    deleted: bool,
    last: ChangeEvent | None,
    current: Mapping[str, Any] | None,
) -> list[Change]:
    """What a watch publishes after its change (`obj`, or its deletion if `deleted`) found the
    subject's last sequence not the one it expected.

    `last` is the subject's last event now and `current` the object as the API server has it,
    read after `last`, so `last` is never newer than `current`. Publishing is safe only where
    `last` is provably older than the change: if the watch is level with the API server, if
    `last` records an earlier incarnation of the object (another uid, while this one lives), or
    if a deletion finds its object's earlier state on top. Where `last` already records the
    change (another replica stored it: the server checks the expected sequence before it
    de-duplicates), or may be newer (this watch lags behind), nothing is published: the watch's
    later changes of the subject conflict too until one of them is recorded.
    """
    if holds(last, obj, deleted=deleted):
        return []
    uid = _metadata(obj).get("uid")
    lives = current is not None and _metadata(current).get("uid") == uid
    if deleted:
        if not lives and last is not None and last.uid == uid:
            return [Change(ChangeType.DELETED, subject, obj)]
        return []
    earlier_incarnation = lives and (last is None or last.uid != uid)
    if _state(current) == _state(obj) or earlier_incarnation:
        return _settle(subject, last, obj)
    return []


def holds(last: ChangeEvent | None, obj: Mapping[str, Any], *, deleted: bool) -> bool:
    """Whether `last` records the state a watch (or list) read as `obj` (`deleted`: its
    deletion), so the reader's next change of that subject may follow `last` directly.

    A deletion is matched by uid alone: a relist records the object's last state it knew, the
    watch the state it was deleted in."""
    if last is None or (last.type is ChangeType.DELETED) != deleted:
        return False
    if deleted:
        return last.uid == _metadata(obj).get("uid")
    return (last.uid, last.resource_version) == _state(obj)
