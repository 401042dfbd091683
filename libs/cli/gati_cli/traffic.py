"""Synthetic router traffic for `gati-operator dev`.

In a cluster, Gati routers publish a traffic sample per handler version and window; locally no
router runs, so the dev stack plays one: it splits a steady request rate over each path's
versions by their current rollout weight and publishes the samples the scaler and timescape
consume. Versions at weight 0 get no requests, so drained versions are decommissioned as they
would be in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gati_contracts.events import RoutesEvent, TrafficSample, encode_event, event_headers
from gati_contracts.subjects import traffic_subject


@dataclass(frozen=True)
class VersionWeight:
    namespace: str
    path: str
    version: str
    weight: int


Routed = Mapping[tuple[str, str], Mapping[str, int]]
"""Weight by version id, by (namespace, path): the routing tables as a router reads them."""


def routed_weights(tables: Iterable[RoutesEvent]) -> dict[tuple[str, str], dict[str, int]]:
    """The routing tables timescape keeps in the KV bucket `gati-routes`. Only the table says
    what the stable version serves during a rollout: its own status keeps the 100 % it reached."""
    return {(t.namespace, t.path): {v.version_id: v.weight for v in t.versions} for t in tables}


def current_weights(
    handlers: Sequence[Mapping[str, Any]],
    versions: Sequence[Mapping[str, Any]],
    routed: Routed | None = None,
) -> list[VersionWeight]:
    """Each handler version's share of its path: from the path's routing table when timescape
    has written one, else from its GatiVersion's status.

    Before timescape has written any weight, the oldest handler of a path takes all traffic:
    that is what a router does with one known version.
    """
    routed = routed or {}
    by_handler = {
        (v["metadata"]["namespace"], v["spec"]["handlerRef"]["name"]): v.get("status") or {}
        for v in versions
    }
    oldest: dict[tuple[str, str], str] = {}
    for handler in sorted(handlers, key=lambda h: h["metadata"].get("creationTimestamp", "")):
        key = (handler["metadata"]["namespace"], handler["spec"]["handlerPath"])
        oldest.setdefault(key, handler["metadata"]["name"])
    weights: list[VersionWeight] = []
    for handler in handlers:
        namespace, name = handler["metadata"]["namespace"], handler["metadata"]["name"]
        path = handler["spec"]["handlerPath"]
        status = by_handler.get((namespace, name))
        table = routed.get((namespace, path))
        if table is not None:
            weight = table.get(handler["spec"]["version"], 0)
        elif status and "currentWeight" in status:
            weight = int(status["currentWeight"])
        else:
            weight = 100 if oldest[(namespace, path)] == name else 0
        weights.append(VersionWeight(namespace, path, handler["spec"]["version"], weight))
    return weights


def samples(
    weights: Sequence[VersionWeight],
    *,
    requests_per_second: float,
    window_seconds: float,
    now: datetime | None = None,
) -> list[TrafficSample]:
    """One window's samples: the path's rate split by weight, with a healthy error rate."""
    observed_at = now or datetime.now(UTC)
    result: list[TrafficSample] = []
    for entry in weights:
        requests = round(requests_per_second * window_seconds * entry.weight / 100)
        result.append(
            TrafficSample(
                namespace=entry.namespace,
                handler=entry.path,
                version=entry.version,
                window_seconds=window_seconds,
                requests=requests,
                errors=requests // 1000,
                latency_p99_ms=42.0 if requests else None,
                in_flight=round(requests / window_seconds * 0.05),
                observed_at=observed_at,
                source="gati-operator-dev",
            )
        )
    return result


def publication(sample: TrafficSample) -> tuple[str, bytes, dict[str, str]]:
    """Subject, payload and headers of a sample, as a router would publish it."""
    subject = traffic_subject(sample.namespace, sample.handler, sample.version)
    return subject, encode_event(sample), event_headers(sample)
