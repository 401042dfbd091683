"""The load a fault lands in, and what "converged" means once it is over.

A burst creates handlers spread over a few namespaces (timescape re-reads a whole namespace per
event, so one huge namespace would measure that rather than the fault), then changes every
spec several times. Convergence is judged on the API server alone, the way a user would judge
it: each handler's Deployment carries its latest spec and its status observed its generation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.ownership import owned_name

PLURAL = "gatihandlers"
POLL = 0.25
WRITERS = 8
"""Concurrent writers: enough that 100 ms of injected latency does not stretch the burst."""
WRITE_ATTEMPTS = 20


def handler_spec(name: str, revision: int) -> dict[str, Any]:
    """The spec at `revision`: every revision changes image, replicas and env together. Each
    handler serves its own path (timescape refuses two handlers' `v1` on one path)."""
    return {
        "handlerPath": f"/api/{name}",
        "version": "v1",
        "image": f"acme/h:{revision}",
        "replicas": 1 + revision % 3,
        "env": {"REVISION": str(revision)},
    }


@dataclass
class Burst:
    """`handlers` x (1 create + `updates` patches) writes, made by a background thread."""

    api: client.ApiClient
    namespaces: list[str]
    handlers: int
    updates: int
    rate: float | None = None
    """Writes per second at most, so a burst lasts long enough for faults to land inside it."""
    changes: int = 0
    """Writes the API server accepted so far."""
    halfway: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    finished_at: float = 0.0
    error: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_slot: float = 0.0

    @property
    def total(self) -> int:
        return len(self.namespaces) * self.handlers * (1 + self.updates)

    def objects(self) -> list[tuple[str, str]]:
        return [(ns, f"h{index}") for ns in self.namespaces for index in range(self.handlers)]

    def start(self) -> threading.Thread:
        core = client.CoreV1Api(self.api)
        for ns in self.namespaces:
            namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name=ns))
            _retrying_5xx(core.create_namespace, namespace)
        thread = threading.Thread(target=self._run, name="burst", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)

        def create(target: tuple[str, str]) -> None:
            ns, name = target
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "GatiHandler",
                "metadata": {"name": name, "namespace": ns},
                "spec": handler_spec(name, 0),
            }
            self._write(custom.create_namespaced_custom_object, ns, PLURAL, body)

        def update(target: tuple[str, str], revision: int) -> None:
            ns, name = target
            patch = {"spec": handler_spec(name, revision)}
            self._write(custom.patch_namespaced_custom_object, ns, PLURAL, name, patch)

        try:
            with ThreadPoolExecutor(WRITERS, thread_name_prefix="burst") as pool:
                list(pool.map(create, self.objects()))
                for revision in range(1, self.updates + 1):
                    list(pool.map(update, self.objects(), [revision] * len(self.objects())))
        except BaseException as error:  # reported by the test, which owns the assertion
            self.error = error
        finally:
            self.finished_at = time.monotonic()
            self.done.set()

    def _write(self, call: Callable[..., object], *args: object) -> None:
        self._pace()
        _retrying_5xx(call, GROUP, VERSION, *args)
        with self._lock:
            self.changes += 1
            if self.changes * 2 >= self.total:
                self.halfway.set()

    def _pace(self) -> None:
        if self.rate is None:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next_slot, now)
            self._next_slot = slot + 1 / self.rate
        time.sleep(slot - now)  # the burst's own pacing


def _retrying_5xx(call: Callable[..., object], *args: object) -> None:
    """kubesim injects its faults before the request is handled, so after a 5xx the write did
    not happen and is simply made again (as a user's client would)."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            call(*args)
            return
        except ApiException as error:
            if error.status < 500 or attempt == WRITE_ATTEMPTS - 1:
                raise


def unconverged(api: client.ApiClient, burst: Burst) -> list[str]:
    """Why each handler is not yet where its spec says (empty once converged)."""
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    problems: list[str] = []
    for ns in burst.namespaces:
        listing = cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        )
        listed = api.sanitize_for_serialization(apps.list_namespaced_deployment(ns))
        deployments = {d["metadata"]["name"]: d for d in listed["items"]}
        for item in listing["items"]:
            name, spec = item["metadata"]["name"], item["spec"]
            status = item.get("status") or {}
            if status.get("observedGeneration") != item["metadata"]["generation"]:
                problems.append(
                    f"{ns}/{name}: observedGeneration {status.get('observedGeneration')} "
                    f"!= generation {item['metadata']['generation']}"
                )
            deployment = deployments.get(owned_name(name))
            if deployment is None:
                problems.append(f"{ns}/{name}: no Deployment")
                continue
            replicas = deployment["spec"].get("replicas")
            image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            if (replicas, image) != (spec["replicas"], spec["image"]):
                problems.append(
                    f"{ns}/{name}: Deployment has {replicas} x {image}, "
                    f"spec wants {spec['replicas']} x {spec['image']}"
                )
        if len(listing["items"]) != burst.handlers:
            problems.append(f"{ns}: {len(listing['items'])} handlers, {burst.handlers} created")
    return problems


@dataclass(frozen=True)
class Converged:
    at: float
    """Monotonic time every handler was found converged."""
    requests: int
    """API requests the checks themselves made (to tell them from the operator's)."""


def await_convergence(api: client.ApiClient, burst: Burst, timeout: float) -> Converged:
    """Until the burst is over and every handler converged; a 5xx on a check (injected faults)
    only means "look again"."""
    deadline = time.monotonic() + timeout
    requests = 0
    problems = ["burst unfinished"]
    while time.monotonic() < deadline:
        if burst.done.is_set():
            requests += 2 * len(burst.namespaces)
            try:
                problems = unconverged(api, burst)
            except ApiException as error:
                if error.status < 500:
                    raise
                continue
            if not problems:
                return Converged(time.monotonic(), requests)
        time.sleep(POLL)
    shown = "\n".join(problems[:20])
    raise AssertionError(
        f"{len(problems)} not converged after {timeout}s ({burst.changes} writes):\n{shown}"
    )
