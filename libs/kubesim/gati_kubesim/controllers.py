"""Simulated controllers: what kube-controller-manager would do to the objects in kubesim.

- Deployments: status reaches the spec after a delay (global default, or the
  `kubesim.gati.dev/ready-after` annotation), or never becomes available when the
  `kubesim.gati.dev/fail: "true"` annotation is set or a container image tag ends in
  `-failing`; then, after the same delay, `Progressing` turns False with
  `ProgressDeadlineExceeded`, the signal rollout logic watches for.
- Garbage collector: dependents whose every owner is gone are deleted in the background,
  also one written after its owners went (a controller re-creating what it owned from a stale
  view, as Kubernetes' collector deletes dependents with dangling ownerReferences); foreground
  and orphan deletion are honoured through their finalizers.
- Namespace lifecycle: a deleted namespace is emptied, then removed.

HPAs get no controller: their status stays as clients write it.

Controllers learn of changes from store events (synchronously) and act from a queue on the
event loop, so no write ever happens inside another write.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

import structlog

from gati_contracts.durations import parse_duration
from gati_kubesim.errors import ApiError
from gati_kubesim.registry import Registry, ResourceType
from gati_kubesim.store import FOREGROUND, ORPHAN, Obj, Store, deep_copy
from gati_kubesim.timestamps import now_rfc3339
from gati_kubesim.watch import WatchEvent

log = structlog.get_logger("kubesim.controllers")

READY_AFTER = "kubesim.gati.dev/ready-after"
FAIL = "kubesim.gati.dev/fail"
MANAGER = "kube-controller-manager"


def pods_fail(deployment: Obj) -> bool:
    annotations = deployment["metadata"].get("annotations") or {}
    if str(annotations.get(FAIL, "")).lower() == "true":
        return True
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in [*(template.get("containers") or []), *(template.get("initContainers") or [])]:
        image = str(c.get("image", "")) if isinstance(c, dict) else ""
        tag = image.rsplit("/", 1)[-1].partition("@")[0]
        if ":" in tag and tag.rsplit(":", 1)[1].endswith("-failing"):
            return True
    return False


def ready_delay(deployment: Obj, default: float) -> float:
    """The annotation's delay when it parses; a bad one falls back to the default (logged)."""
    raw = (deployment["metadata"].get("annotations") or {}).get(READY_AFTER)
    if raw is None:
        return default
    try:
        return parse_duration(str(raw)).total_seconds()
    except ValueError as exc:
        log.warning(
            "kubesim.bad_ready_after", deployment=deployment["metadata"]["name"], error=str(exc)
        )
        return default


def _condition(old: list[Obj], ctype: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    previous = next((c for c in old if c.get("type") == ctype), None)
    transition = (
        previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    )
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def deployment_status(deployment: Obj, phase: str) -> Obj:
    """Status for `phase` in progressing | ready | failed, in the real controller's shape.

    Zero counts are omitted, as the real API omits them.
    """
    spec = deployment.get("spec") or {}
    old = deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    name = deployment["metadata"]["name"]
    conditions = list(old.get("conditions") or [])
    if phase == "ready" or replicas == 0:
        available = replicas
    else:
        available = min(int(old.get("availableReplicas", 0)), replicas)
    max_unavailable = math.floor(replicas * 0.25)
    is_available = available >= replicas - max_unavailable
    counts = {
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": replicas - available,
    }
    status: Obj = {"observedGeneration": deployment["metadata"].get("generation", 1)}
    status.update({k: v for k, v in counts.items() if v})
    avail = _condition(
        conditions,
        "Available",
        "True" if is_available else "False",
        "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
        "Deployment has minimum availability."
        if is_available
        else "Deployment does not have minimum availability.",
    )
    if phase == "ready" or replicas == 0:
        prog = _condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
        )
    elif phase == "failed":
        prog = _condition(
            conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}" has timed out progressing.',
        )
    else:
        prog = _condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{name}" is progressing.',
        )
    status["conditions"] = [avail, prog]
    return status


def _same_status(a: Obj, b: Obj) -> bool:
    def strip(s: Obj) -> Obj:
        conds = [
            {k: v for k, v in c.items() if k != "lastUpdateTime"} for c in s.get("conditions") or []
        ]
        return {**s, "conditions": conds}

    return strip(a) == strip(b)


class Controllers:
    def __init__(self, store: Store, registry: Registry, ready_after: float) -> None:
        self.store = store
        self.registry = registry
        self.ready_after = ready_after
        self._queue: asyncio.Queue[Callable[[], None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._fingerprints: dict[tuple[str, str], Any] = {}
        # owner uid -> dependents (storage key, namespace, name)
        self._dependents: dict[str, set[tuple[tuple[str, str], str, str]]] = {}
        self._live_uids: set[str] = set()
        # Owners in foreground/orphan deletion, re-examined when one of their dependents goes.
        self._waiting_owners: dict[str, tuple[ResourceType, str, str]] = {}
        # Namespaces being emptied; each deletion inside one re-examines it.
        self._terminating: set[str] = set()
        store.listeners.append(self._on_event)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                job()
            except ApiError as err:
                # Conflicts and vanished objects are normal races; the next event retries.
                log.debug("kubesim.controller_skip", reason=err.reason, message=err.message)
            except Exception:
                log.exception("kubesim.controller_error")

    def _later(self, job: Callable[[], None]) -> None:
        self._queue.put_nowait(job)

    # -- event intake ----------------------------------------------------------------------

    def _on_event(self, rt: ResourceType, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        uid = meta.get("uid", "")
        key = rt.storage_key
        if event.type == "DELETED":
            self._live_uids.discard(uid)
            self._waiting_owners.pop(uid, None)
            namespace = meta.get("namespace", "")
            if namespace in self._terminating:
                self._later(lambda: self._empty_namespace(namespace))
            if key == ("", "namespaces"):
                self._terminating.discard(meta["name"])
            if key == ("apps", "deployments"):
                dkey = (namespace, meta["name"])
                self._fingerprints.pop(dkey, None)
                timer = self._timers.pop(dkey, None)
                if timer is not None:
                    timer.cancel()
            if self._dependents.get(uid):
                self._later(lambda: self._collect(uid))
            for ref in meta.get("ownerReferences") or []:
                waiting = self._waiting_owners.get(str(ref.get("uid", "")))
                if waiting is not None:
                    self._later(lambda w=waiting: self._finish_owner(*w))  # type: ignore[misc]
        else:
            self._live_uids.add(uid)
            owners = [
                str(ref["uid"])
                for ref in meta.get("ownerReferences") or []
                if isinstance(ref, dict) and ref.get("uid")
            ]
            for owner in owners:
                self._dependents.setdefault(owner, set()).add(
                    (key, meta.get("namespace", ""), meta["name"])
                )
            if owners and not any(owner in self._live_uids for owner in owners):
                # Every owner went before this write: nobody's DELETED will come to collect it.
                self._later(lambda: self._collect(owners[0]))
            if meta.get("deletionTimestamp"):
                finalizers = meta.get("finalizers") or []
                if FOREGROUND in finalizers or ORPHAN in finalizers:
                    self._waiting_owners[uid] = (rt, meta.get("namespace", ""), meta["name"])
                    self._later(
                        lambda: self._finish_owner(rt, meta.get("namespace", ""), meta["name"])
                    )
        if (
            key == ("", "namespaces")
            and event.type != "DELETED"
            and meta.get("deletionTimestamp")
            and meta["name"] not in self._terminating
        ):
            self._terminating.add(meta["name"])
            self._later(lambda: self._empty_namespace(meta["name"]))
        if key == ("apps", "deployments") and event.type != "DELETED":
            self._deployment_changed(rt, event.obj)

    # -- deployments -----------------------------------------------------------------------

    def _deployment_changed(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        annotations = meta.get("annotations") or {}
        fingerprint = (meta.get("generation"), annotations.get(READY_AFTER), annotations.get(FAIL))
        if self._fingerprints.get(key) == fingerprint or meta.get("deletionTimestamp"):
            return
        self._fingerprints[key] = fingerprint
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._later(lambda: self._set_deployment(rt, key, "progressing"))
        final = "failed" if pods_fail(obj) else "ready"
        delay = ready_delay(obj, self.ready_after)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(
            delay, lambda: self._later(lambda: self._set_deployment(rt, key, final))
        )

    def _set_deployment(self, rt: ResourceType, key: tuple[str, str], phase: str) -> None:
        live = self.store.find(rt, *key)
        if live is None:
            self._fingerprints.pop(key, None)
            return
        status = deployment_status(live, phase)
        if _same_status(status, live.get("status") or {}):
            return
        new = dict(live)
        new["status"] = status
        self.store.replace(rt, new, MANAGER, "status")
        if phase != "progressing":
            self._timers.pop(key, None)

    # -- garbage collection ----------------------------------------------------------------

    def _types(self, key: tuple[str, str]) -> ResourceType | None:
        return next((rt for rt in self.registry if rt.storage_key == key), None)

    def _collect(self, owner_uid: str) -> None:
        for key, ns, name in list(self._dependents.pop(owner_uid, set())):
            rt = self._types(key)
            obj = self.store.find(rt, ns, name) if rt is not None else None
            if rt is None or obj is None:
                continue
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]
            if any(r.get("uid") in self._live_uids for r in refs):
                continue
            if not obj["metadata"].get("deletionTimestamp"):
                self.store.delete(rt, ns, name, propagation="Background")

    def _finish_owner(self, rt: ResourceType, ns: str, name: str) -> None:
        owner = self.store.find(rt, ns, name)
        if owner is None:
            return
        uid = owner["metadata"]["uid"]
        finalizers = list(owner["metadata"].get("finalizers") or [])
        for key, dep_ns, dep_name in list(self._dependents.get(uid, set())):
            dep_rt = self._types(key)
            dep = self.store.find(dep_rt, dep_ns, dep_name) if dep_rt is not None else None
            if dep_rt is None or dep is None:
                continue
            if ORPHAN in finalizers:
                new = deep_copy(dep)
                new["metadata"]["ownerReferences"] = [
                    r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                new["metadata"].pop("resourceVersion", None)
                self.store.replace(dep_rt, new, MANAGER)
            else:
                # Foreground: the owner stays until its dependents are gone.
                if not dep["metadata"].get("deletionTimestamp"):
                    self.store.delete(dep_rt, dep_ns, dep_name, propagation="Foreground")
                return
        if ORPHAN in finalizers:
            self._dependents.pop(uid, None)
        new = deep_copy(owner)
        new["metadata"]["finalizers"] = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
        new["metadata"].pop("resourceVersion", None)
        self.store.replace(rt, new, MANAGER)

    # -- namespaces ------------------------------------------------------------------------

    def _empty_namespace(self, namespace: str) -> None:
        ns_rt = self._types(("", "namespaces"))
        if ns_rt is None:
            return
        ns = self.store.find(ns_rt, "", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if (ns.get("status") or {}).get("phase") != "Terminating":
            new = deep_copy(ns)
            new["status"] = {"phase": "Terminating"}
            new["metadata"].pop("resourceVersion", None)
            ns = self.store.replace(ns_rt, new, MANAGER, "status")
        remaining = 0
        seen: set[tuple[str, str]] = set()
        for rt in self.registry:
            if not rt.namespaced or rt.storage_key in seen:
                continue
            seen.add(rt.storage_key)
            for obj in list(self.store.items(rt, namespace)):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self.store.delete(
                        rt, namespace, obj["metadata"]["name"], propagation="Background"
                    )
        if remaining and any(
            rt.namespaced and any(self.store.items(rt, namespace)) for rt in self.registry
        ):
            return  # finalizers hold some objects; their deletion brings us back here
        new = deep_copy(ns)
        new["spec"] = {**(new.get("spec") or {}), "finalizers": []}
        new["metadata"].pop("resourceVersion", None)
        self.store.replace(ns_rt, new, MANAGER, "finalize")
