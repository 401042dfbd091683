"""Drift between the cluster and the stream: the same diff a relist makes, reported instead of
published, so `gati-operator verify` and the tests judge the stream by the watcher's own rule."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from kubernetes import client
from nats.js import JetStreamContext

from gati_contracts.events import ChangeType
from gati_runtime.cancellation import within
from gati_watcher.checkpoint import last_events
from gati_watcher.kube import KubeReader
from gati_watcher.relist import relist_changes
from gati_watcher.targets import watch_targets

READ_TIMEOUT: Final = 30.0
"""Seconds the last events of one watched kind may take to read, as the watcher's relist."""


class StreamReadTimeout(TimeoutError):
    """The stream's last events were not read in time: no verdict, and nothing to compare."""

    def __init__(self, subject_filter: str, stream: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"the last events of {subject_filter} in stream {stream} were not read within "
            f"{seconds:g}s"
        )


class DriftKind(StrEnum):
    MISSING = "missing"
    """In the cluster, never recorded (or recorded as deleted)."""
    STALE = "stale"
    """Recorded at another resourceVersion than the cluster's."""
    DELETED_NOT_RECORDED = "deleted-not-recorded"
    """Recorded as live, gone from the cluster."""


_KIND_OF: dict[ChangeType, DriftKind] = {
    ChangeType.ADDED: DriftKind.MISSING,
    ChangeType.MODIFIED: DriftKind.STALE,
    ChangeType.DELETED: DriftKind.DELETED_NOT_RECORDED,
}


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    subject: str
    object_kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": self.kind.value,
            "subject": self.subject,
            "kind": self.object_kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
        }


@dataclass(frozen=True)
class Report:
    drifts: list[Drift]
    objects: int
    """Objects listed in the cluster."""
    recorded: int
    """Subjects with a last event in the stream."""

    @property
    def clean(self) -> bool:
        return not self.drifts


async def verify(
    api: client.ApiClient,
    js: JetStreamContext,
    stream: str,
    namespaces: Sequence[str] = (),
    *,
    read_timeout: float = READ_TIMEOUT,
) -> Report:
    """Raises `StreamReadTimeout` when a kind's last events take over `read_timeout` seconds:
    the read waits as long as the stream takes, and one cancel may not end it (`within`)."""
    drifts: list[Drift] = []
    objects = recorded = 0
    for target in watch_targets(namespaces):
        listing = await asyncio.to_thread(KubeReader(api, target).list_objects)
        try:
            checkpoint = await within(
                last_events(js, stream, [target.subject_filter]), read_timeout
            )
        except TimeoutError:
            raise StreamReadTimeout(target.subject_filter, stream, read_timeout) from None
        last = checkpoint.events
        listed = {target.subject(obj): obj for obj in listing.objects}
        objects += len(listed)
        recorded += len(last)
        for change in relist_changes(listed, last):
            metadata = change.obj.get("metadata") or {}
            drifts.append(
                Drift(
                    kind=_KIND_OF[change.type],
                    subject=change.subject,
                    object_kind=target.kind.kind,
                    namespace=str(metadata.get("namespace", "")),
                    name=str(metadata.get("name", "")),
                    uid=str(metadata.get("uid", "")),
                    resource_version=str(metadata.get("resourceVersion", "")),
                )
            )
    return Report(drifts, objects, recorded)
