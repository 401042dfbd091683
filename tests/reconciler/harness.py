"""Running reconciler replicas (with the real watcher) against kubesim and nats-server in a test,
and awaiting what they publish on `gati.status.>` instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, cast

from kubernetes import client

from fixtures.subject_tail import SubjectTail, collecting
from gati_contracts.events import OutcomeEvent, decode_event
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STATUS_ROOT, STREAM
from gati_reconciler.reconcile import LEASE_SCOPE, LEASE_TTL, Reconciler
from gati_reconciler.service import CONSUMER, OPTIONS, decode_change
from gati_reconciler.stream_state import StreamState
from gati_reconciler.targets import Target
from gati_runtime.cancellation import cancel_until_done
from gati_runtime.consumer import ConsumerLoop
from gati_runtime.kube_api import Kube
from gati_runtime.lease import Leases
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.provisioning import ConsumerSpec
from gati_runtime.publisher import Publisher


class Outcomes(SubjectTail[OutcomeEvent]):
    """Every outcome the reconcilers publish, in arrival order."""

    def __init__(self) -> None:
        super().__init__(lambda data: decode_event(data, OutcomeEvent))

    def of(self, name: str) -> list[OutcomeEvent]:
        return [event for event in self.events if event.name == name]

    async def phase(self, name: str, phase: str, generation: int | None = None) -> None:
        """Until an outcome for `name` reports `phase` (at `generation`, when given)."""
        await self.until(
            lambda e: (
                e.name == name
                and e.details.get("phase") == phase
                and (generation is None or e.observed_generation == generation)
            )
        )


def outcomes(connection: NatsConnection) -> contextlib.AbstractAsyncContextManager[Outcomes]:
    return collecting(connection, f"{STATUS_ROOT}.>", Outcomes())


def replica_reconciler(
    kube: Kube,
    connection: NatsConnection,
    source: str,
    *,
    target: Target | None = None,
    lease_ttl: timedelta = LEASE_TTL,
) -> Reconciler:
    """A reconciler wired as `gati_reconciler.service.main` wires it, `source` its lease holder."""
    return Reconciler(
        kube,
        Publisher(connection),
        streams=StreamState(connection.client, STREAM),
        leases=Leases(connection.client, source, scope=LEASE_SCOPE),
        target=target,
        source=source,
        stream=STREAM,
        lease_ttl=lease_ttl,
    )


@contextlib.asynccontextmanager
async def running_reconciler(
    api: client.ApiClient,
    connection: NatsConnection,
    *,
    source: str = "r0",
    target: Callable[[Kube], Target] | None = None,
    spec: ConsumerSpec = CONSUMER,
) -> AsyncIterator[asyncio.Event]:
    """One replica on the shared durable; set the yielded event to stop it early (as a kill
    would, minus the drain, use `task.cancel()` on the caller side instead)."""
    kube = Kube(api, workers=8)
    reconciler = replica_reconciler(
        kube, connection, source, target=target(kube) if target else None
    )
    loop = ConsumerLoop(
        connection,
        STREAM,
        spec,
        decode=decode_change,
        handler=reconciler.handle,
        on_poison=reconciler.on_poison,
        options=OPTIONS,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task
        kube.close()


class Workloads:
    """The gati.dev objects of one namespace, written as a user would with the official client."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, _plural(obj), obj
            ),
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, f"{kind.lower()}s", name
            ),
        )

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, f"{kind.lower()}s", name, {"spec": spec}
            ),
        )

    def delete(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, f"{kind.lower()}s", name
        )

    def deployment(self, name: str) -> dict[str, Any]:
        model = self.apps.read_namespaced_deployment(name, self.namespace)
        return cast(dict[str, Any], self.apps.api_client.sanitize_for_serialization(model))

    def names(self, kind: str) -> set[str]:
        """Names of the objects of a built-in `kind` in the namespace."""
        listing: Any = {
            "Deployment": self.apps.list_namespaced_deployment,
            "Service": self.core.list_namespaced_service,
            "ConfigMap": self.core.list_namespaced_config_map,
        }[kind](self.namespace)
        return {item.metadata.name for item in listing.items}


def _plural(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}s"


def handler(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"handlerPath": f"/api/{name}", "version": "v1", "image": "acme/u:1"} | spec,
    }


def module(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatiModule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"moduleName": "@acme/auth", "image": "acme/auth:1"} | spec,
    }


class Replica:
    """A reconciler replica with its own NATS connection and API client, which a test may stop
    gracefully or kill: a kill closes the connection without draining and cancels the loop, so
    the messages it held come back to the others after `ack_wait`, as after a crash."""

    def __init__(
        self,
        url: str,
        connection: NatsConnection,
        spec: ConsumerSpec,
        source: str,
        *,
        lease_ttl: timedelta = LEASE_TTL,
    ) -> None:
        self.api = client.ApiClient(_configuration(url))
        self.kube = Kube(self.api, workers=8)
        self.connection = connection
        reconciler = replica_reconciler(self.kube, connection, source, lease_ttl=lease_ttl)
        self.loop = ConsumerLoop(
            connection,
            STREAM,
            spec,
            decode=decode_change,
            handler=reconciler.handle,
            on_poison=reconciler.on_poison,
            options=OPTIONS,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.loop.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        async with asyncio.timeout(30):
            await self.task
        await self.connection.close()
        self.kube.close()
        self.api.close()

    async def kill(self) -> None:
        # One cancel may be dropped by a nats-py wait_for the task is in (gh-86296): repeat it.
        killing = asyncio.create_task(cancel_until_done(self.task))
        with contextlib.suppress(Exception):
            await self.connection.client.close()
        await killing
        self.kube.close()
        self.api.close()


def _configuration(url: str) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = url
    return configuration
