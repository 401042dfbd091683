"""Driving a watcher in a test: objects to write into kubesim, a tail of the stream to await,
and the watcher running as a task that stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes import client
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from prometheus_client import REGISTRY

from gati_contracts.events import ChangeEvent, decode_event
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.labels import FIELD_MANAGER, MANAGED_BY_LABEL
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, STREAM
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.publisher import Publisher
from gati_watcher.policy import Inactivity
from gati_watcher.verify import Report, verify
from gati_watcher.watcher import Watcher, WatcherOptions

WAIT = 30.0
"""Seconds any awaited condition may take before the test fails (never reached when healthy)."""
FAST = WatcherOptions(inactivity=Inactivity(bookmark_interval=0.2, missed_bookmarks=2.5))


def handler(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"handlerPath": "/api/users", "version": "v1", "image": "acme/u:1"} | spec,
    }


def module(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiModule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"moduleName": "@acme/auth", "image": "acme/auth:1"},
    }


def version(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiVersion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"versionId": "v1", "handlerRef": {"name": "users"}},
    }


def deployment(namespace: str, name: str, *, managed: bool = True) -> dict[str, Any]:
    labels = {"app": name} | ({MANAGED_BY_LABEL: FIELD_MANAGER} if managed else {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "acme/app:1"}]},
            },
        },
    }


class Cluster:
    """Typed-enough writes of the four kinds, as a user or the reconciler would make them."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "Deployment":
            return self._raw(self.apps.create_namespaced_deployment(self.namespace, cast(Any, obj)))
        return cast(
            dict[str, Any],
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, _plural(obj), obj
            ),
        )

    def patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if obj["kind"] == "Deployment":
            return self._raw(self.apps.patch_namespaced_deployment(name, self.namespace, patch))
        return cast(
            dict[str, Any],
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, _plural(obj), name, patch
            ),
        )

    def patch_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        patched = self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            _plural(obj),
            obj["metadata"]["name"],
            {"status": status},
        )
        return cast(dict[str, Any], patched)

    def delete(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if obj["kind"] == "Deployment":
            self.apps.delete_namespaced_deployment(name, self.namespace)
        else:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, _plural(obj), name
            )

    def _raw(self, model: Any) -> dict[str, Any]:
        raw: dict[str, Any] = self.apps.api_client.sanitize_for_serialization(model)
        return raw


def _plural(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}s"


@dataclass
class StreamTail:
    """Every change event stored in `GATI`, in stream order, as it arrives."""

    events: list[tuple[str, ChangeEvent]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, msg: Msg) -> None:
        async with self._changed:
            self.events.append((msg.subject, decode_event(msg.data, ChangeEvent)))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[list[tuple[str, ChangeEvent]]], bool]) -> None:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: predicate(self.events))

    def of(self, name: str) -> list[ChangeEvent]:
        return [event for _, event in self.events if event.name == name]


@contextlib.asynccontextmanager
async def stream_tail(nc: Client) -> AsyncIterator[StreamTail]:
    tail = StreamTail()
    subscription = await nc.jetstream().subscribe(
        f"{CR_ROOT}.>",
        stream=STREAM,
        cb=tail.on_message,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        config=_filters(),
    )
    try:
        yield tail
    finally:
        await subscription.unsubscribe()


def _filters() -> Any:
    from nats.js.api import ConsumerConfig

    return ConsumerConfig(filter_subjects=[f"{CR_ROOT}.>", f"{OWNED_ROOT}.>"])


@contextlib.asynccontextmanager
async def running_watcher(
    api: client.ApiClient,
    connection: NatsConnection,
    namespace: str,
    *,
    source: str = "test",
    options: WatcherOptions = FAST,
) -> AsyncIterator[Watcher]:
    """A watcher of `namespace` that has relisted once, stopped (and drained) on exit."""
    watcher = Watcher(
        api,
        connection,
        Publisher(connection),
        stream=STREAM,
        source=source,
        namespaces=(namespace,),
        options=options,
    )
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(target.synced.wait() for target in watcher.targets))
        yield watcher
    finally:
        watcher.stop.set()
        async with asyncio.timeout(60):
            await task


async def drift(api: client.ApiClient, connection: NatsConnection, namespace: str) -> Report:
    return await verify(api, connection.js, STREAM, (namespace,))


def sample(name: str, **labels: str) -> float:
    """The current value of one of the watcher's metrics (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
