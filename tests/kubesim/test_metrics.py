"""kubesim's request metrics read as prometheus-client's Counter and Histogram would show them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gati_kubesim.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_verb_resource_and_code() -> None:
    metrics = Metrics(watchers=lambda: 2, objects=lambda: 5)
    for _ in range(3):
        metrics.observe("get", "configmaps", 200, 0.0002)
    metrics.observe("get", "configmaps", 404, 0.0002)
    got = samples(metrics)
    key = (("code", "200"), ("resource", "configmaps"), ("verb", "get"))
    assert got["apiserver_request_total", key] == 3
    assert got["apiserver_request_total", (("code", "404"), *key[1:])] == 1
    assert got["apiserver_longrunning_requests", ()] == 2
    assert got["kubesim_objects", ()] == 5


def test_latency_buckets_are_cumulative_and_a_bound_is_inclusive() -> None:
    metrics = Metrics(watchers=lambda: 0, objects=lambda: 0)
    for seconds in (0.0005, 0.001, 0.003, 0.2, 400.0):
        metrics.observe("list", "pods", 200, seconds)
    got = samples(metrics)

    def bucket(le: str) -> float:
        return got["apiserver_request_duration_seconds_bucket", (("le", le), ("verb", "list"))]

    assert [bucket(le) for le in ("0.001", "0.005", "0.1", "0.5", "300.0", "+Inf")] == [
        2,
        3,
        3,
        4,
        4,
        5,
    ]
    assert got["apiserver_request_duration_seconds_count", (("verb", "list"),)] == 5
    total = got["apiserver_request_duration_seconds_sum", (("verb", "list"),)]
    assert abs(total - 400.2045) < 1e-9
