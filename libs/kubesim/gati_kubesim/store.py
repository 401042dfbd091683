"""The object store: one resourceVersion counter, and the metadata rules every write obeys.

Stored objects are never mutated after they are stored; every write builds a new dict. That
lets reads and watch events hand out the stored dict itself (no copies on the hot path) while
a later write cannot change what an earlier reader or event saw.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gati_kubesim import fieldmanager
from gati_kubesim.errors import already_exists, conflict, not_found
from gati_kubesim.registry import ResourceType
from gati_kubesim.timestamps import now_rfc3339
from gati_kubesim.watch import WatchEvent

Obj = dict[str, Any]
Key = tuple[str, str]
Listener = Callable[[ResourceType, WatchEvent], None]

# Finalizers the garbage collector itself honours for foreground and orphan deletion.
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def deep_copy(obj: Obj) -> Obj:
    """A private copy for callers that modify an object taken from the store."""
    return copy.deepcopy(obj)


def _spec_view(obj: Obj, has_status: bool) -> dict[str, Any]:
    """What a generation tracks: everything but metadata (and status, when it has its own
    subresource)."""
    return {k: v for k, v in obj.items() if k != "metadata" and not (has_status and k == "status")}


@dataclass
class DeleteResult:
    obj: Obj
    # False when finalizers hold the object: it is only marked with deletionTimestamp.
    removed: bool


class Store:
    """Objects per resource and namespace/name, with events to the listeners on every change."""

    def __init__(self) -> None:
        self._objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self._rv = 1
        self.listeners: list[Listener] = []

    @property
    def resource_version(self) -> int:
        return self._rv

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def bucket(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        b = self._objects.get(rt.storage_key)
        if b is None:
            b = self._objects[rt.storage_key] = {}
        return b

    def drop_bucket(self, rt: ResourceType) -> None:
        self._objects.pop(rt.storage_key, None)

    def _emit(self, rt: ResourceType, event: WatchEvent) -> None:
        for listener in self.listeners:
            listener(rt, event)

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.bucket(rt).get((namespace, name))
        if obj is None:
            raise not_found(rt.group, rt.plural, name)
        return obj

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self.bucket(rt).get((namespace, name))

    def items(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        """Objects in key order (namespace, name), as etcd lists them."""
        bucket = self.bucket(rt)
        for key in sorted(bucket):
            if namespace is None or key[0] == namespace:
                yield bucket[key]

    def _manage(
        self, rt: ResourceType, old: Obj | None, new: Obj, manager: str | None, sub: str | None
    ) -> Obj:
        """managedFields after `manager` wrote `new` (apply writes come with theirs: no manager)."""
        if not manager:
            return new
        return fieldmanager.record_update(old, new, manager, sub, gvk=rt.gvk, schema=rt.schema)

    def create(
        self, rt: ResourceType, obj: Obj, manager: str | None = None, dry_run: bool = False
    ) -> Obj:
        obj = dict(obj)
        meta = obj["metadata"] = dict(obj["metadata"])  # never write into the caller's dict
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        name = meta["name"]
        bucket = self.bucket(rt)
        if (namespace, name) in bucket:
            raise already_exists(rt.group, rt.plural, name)
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        obj = self._manage(rt, None, obj, manager, None)
        if dry_run:
            obj["metadata"]["resourceVersion"] = str(self._rv)
            return obj
        obj["metadata"]["resourceVersion"] = self._next_rv()
        bucket[(namespace, name)] = obj
        self._emit(rt, WatchEvent("ADDED", self._rv, obj))
        return obj

    def replace(
        self,
        rt: ResourceType,
        new: Obj,
        manager: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Store `new` over the live object; 409 if it names a stale resourceVersion.

        Server-owned metadata (uid, creationTimestamp, deletionTimestamp) is kept from the
        live object whatever the client sent, and a write that changes nothing keeps the
        resourceVersion, as the real server does.
        """
        new = dict(new)
        meta = new["metadata"] = dict(new["metadata"])  # it may share dicts with a stored object
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        name = meta["name"]
        old = self.get(rt, namespace, name)
        old_meta = old["metadata"]
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old_meta["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if rt.has_generation:
            generation = int(old_meta.get("generation", 1))
            if _spec_view(new, rt.has_status) != _spec_view(old, rt.has_status):
                generation += 1
            meta["generation"] = generation
        else:
            meta.pop("generation", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        new = self._manage(rt, old, new, manager, subresource)
        if _same(new, old):
            return old
        if dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not _holds(new):
            return self.remove_now(rt, new)
        new["metadata"]["resourceVersion"] = self._next_rv()
        self.bucket(rt)[(namespace, name)] = new
        self._emit(rt, WatchEvent("MODIFIED", self._rv, new, old))
        return new

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        propagation: str | None = None,
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
        dry_run: bool = False,
    ) -> DeleteResult:
        old = self.get(rt, namespace, name)
        old_meta = old["metadata"]
        if precondition_uid and precondition_uid != old_meta["uid"]:
            raise conflict(rt.group, rt.plural, name)
        if precondition_rv and precondition_rv != old_meta["resourceVersion"]:
            raise conflict(rt.group, rt.plural, name)
        finalizers = list(old_meta.get("finalizers") or [])
        if propagation == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        elif propagation == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        held = bool(finalizers) or _holds(old)
        if not held:
            if dry_run:
                return DeleteResult(old, True)
            return DeleteResult(self.remove_now(rt, old), True)
        if old_meta.get("deletionTimestamp") and finalizers == list(
            old_meta.get("finalizers") or []
        ):
            return DeleteResult(old, False)
        new = dict(old)
        meta = new["metadata"] = dict(old_meta)
        meta.setdefault("deletionTimestamp", now_rfc3339())
        meta.setdefault("deletionGracePeriodSeconds", 0)
        if finalizers:
            meta["finalizers"] = finalizers
        if rt.has_generation:
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            return DeleteResult(new, False)
        meta["resourceVersion"] = self._next_rv()
        self.bucket(rt)[(namespace, name)] = new
        self._emit(rt, WatchEvent("MODIFIED", self._rv, new, old))
        return DeleteResult(new, False)

    def remove_now(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        old = self.bucket(rt).pop(key, obj)
        gone = dict(obj)
        gone["metadata"] = dict(meta, resourceVersion=self._next_rv())
        self._emit(rt, WatchEvent("DELETED", self._rv, gone, old))
        return gone

    def restore(self, rt: ResourceType, obj: Obj) -> None:
        """Load a snapshot object as it was saved, keeping its uid and resourceVersion."""
        meta = obj["metadata"]
        self.bucket(rt)[(meta.get("namespace", ""), meta["name"])] = obj
        self._rv = max(self._rv, int(meta.get("resourceVersion", "0")))

    def restore_rv(self, rv: int) -> None:
        self._rv = max(self._rv, rv)

    def dump(self) -> Iterator[tuple[tuple[str, str], Obj]]:
        for key, bucket in self._objects.items():
            for obj in bucket.values():
                yield key, obj


def _holds(obj: Obj) -> bool:
    """Whether something still blocks removal: metadata finalizers, or a namespace's own."""
    if obj["metadata"].get("finalizers"):
        return True
    return obj.get("kind") == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))


def _same(a: Obj, b: Obj) -> bool:
    """Equal apart from managedFields timestamps: a no-op write must not bump resourceVersion.

    Compared in place rather than as copies without managedFields: every write asks, and
    most differ in a top-level field (a status write's status) found before metadata."""
    if not _equal_but(a, b, "metadata"):
        return False
    return _equal_but(a["metadata"], b["metadata"], "managedFields")


_ABSENT = object()


def _equal_but(a: Obj, b: Obj, skipped: str) -> bool:
    """`a == b` apart from the member `skipped`, which either may lack."""
    if len(a) - (skipped in a) != len(b) - (skipped in b):
        return False
    return all(key == skipped or value == b.get(key, _ABSENT) for key, value in a.items())
