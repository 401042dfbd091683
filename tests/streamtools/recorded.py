"""Events as the services publish them, for tests that record a history on a real server."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client

from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    Event,
    OutcomeEvent,
    OutcomeResult,
    RoutesEvent,
    RouteVersion,
    encode_event,
    event_headers,
)
from gati_contracts.subjects import STREAM, cr_subject, routes_subject, status_subject

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def stored_ns(time: datetime) -> int:
    """`time` as a stream stores it (ns since the epoch), exact to the microsecond."""
    return int(time.timestamp()) * 1_000_000_000 + time.microsecond * 1000


def handler_object(
    resource_version: int,
    *,
    image: str = "ghcr.io/x/orders:1.0.0",
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {
            "name": "orders",
            "namespace": "shop",
            "uid": "uid-orders",
            "resourceVersion": str(resource_version),
            "generation": 1 if image.endswith("1.0.0") else 2,
        },
        "spec": {
            "handlerPath": "/orders/:id",
            "version": "v1",
            "image": image,
            "replicas": 2,
            "port": 8080,
            "env": {"LOG_LEVEL": "info"},
        },
    }
    if status is not None:
        obj["status"] = copy.deepcopy(status)
    return obj


def change(obj: dict[str, Any], change_type: ChangeType = ChangeType.MODIFIED) -> ChangeEvent:
    return ChangeEvent.of(change_type, obj, source="watcher-0", observed_at=NOW)


def outcome(input_sequence: int, *, reason: str = "Applied") -> OutcomeEvent:
    return OutcomeEvent(
        event_id=f"reconciler:{input_sequence}",
        service="reconciler",
        source="reconciler-0",
        action="reconciled",
        result=OutcomeResult.SUCCEEDED,
        kind="GatiHandler",
        namespace="shop",
        name="orders",
        reason=reason,
        input_stream=STREAM,
        input_sequence=input_sequence,
        observed_at=NOW,
    )


def routes(weights: dict[str, int]) -> RoutesEvent:
    return RoutesEvent(
        namespace="shop",
        path="/orders/:id",
        default_version="v1",
        versions=[
            RouteVersion(version_id=v, weight=w, service=f"orders-{v}", port=8080)
            for v, w in weights.items()
        ],
        observed_at=NOW,
    )


def subject_of(event: Event) -> str:
    if isinstance(event, ChangeEvent):
        return cr_subject(event.kind, event.namespace, event.name)
    if isinstance(event, OutcomeEvent):
        return status_subject(event.kind, event.namespace, event.name)
    assert isinstance(event, RoutesEvent)
    return routes_subject(event.namespace, event.path)


async def publish(client: Client, event: Event) -> int:
    """Publish as the services do; returns the stream sequence."""
    headers = event_headers(event)
    headers.setdefault("Nats-Msg-Id", f"test-{id(event)}")
    ack = await client.jetstream().publish(subject_of(event), encode_event(event), headers=headers)
    return ack.seq
