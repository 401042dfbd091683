"""Prometheus metrics of one kubesim, served at `/metrics` like a real API server's.

Each server has its own registry so several in one test process never share counters.
Names follow the apiserver's (`apiserver_request_total` by verb, resource and code) so
dashboards and tests written for a real cluster read them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, watchers: Callable[[], int], objects: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "apiserver_request_total",
            "Requests by verb, resource and HTTP code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Request latency by verb (watches: until the stream ends).",
            ["verb"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300),
            registry=self.registry,
        )
        watching = Gauge(
            "apiserver_longrunning_requests", "Open watch streams.", registry=self.registry
        )
        watching.set_function(lambda: float(watchers()))
        stored = Gauge("kubesim_objects", "Objects stored.", registry=self.registry)
        stored.set_function(lambda: float(objects()))

    def observe(self, verb: str, resource: str, code: int, seconds: float) -> None:
        # Looking a labelled child up takes a lock and builds its key; every request
        # observes, and the label sets are few, so the children are kept at hand.
        key = (verb, resource, code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(verb, resource, str(code)),
                self.latency.labels(verb),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
