"""Timescape end to end: watcher, reconciler and timescape against kubesim and nats-server.

Pauses are one second in the spec, so a rollout takes seconds; every wait is for a published
table or outcome, never a sleep."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import structlog.testing
from kubernetes import client
from nats.aio.msg import Msg

from fixtures.key_history import key_history
from fixtures.service_context import failed_main
from fixtures.stage import Stage
from fixtures.subject_tail import WAIT
from gati_contracts.events import (
    ChangeEvent,
    RoutesEvent,
    TrafficSample,
    decode_event,
    encode_event,
    event_headers,
)
from gati_contracts.kinds import GATI_VERSION
from gati_contracts.ownership import owned_name
from gati_contracts.subjects import (
    ROUTES_BUCKET,
    STREAM,
    cr_subject,
    status_subject,
    traffic_subject,
)
from gati_runtime.cancellation import cancel_until_done
from gati_runtime.nats_connection import NatsConnection
from gati_runtime.publisher import Publisher
from gati_runtime.service import ServiceContext
from gati_timescape.service import (
    ROUTES_CONFIG_MAP,
    TRAFFIC_CONSUMER,
    Timescape,
    config_map_key,
    main,
    routes_key,
)
from reconciler.harness import Workloads, handler, outcomes, running_reconciler
from timescape.running import has_weights, routes, running_timescape, weights

PATH = "/api/users"
STARTING_CHECKS = 3
"""The failureThreshold of the tests' one-second checks. A version's checks count NotReady
until the reconciler has made its Deployment ready, which on a loaded machine can take longer
than one interval: at the default threshold of 1 a healthy version was rolled back for it."""
FAST_ROLLOUT: dict[str, Any] = {
    "steps": [{"weight": 10, "pause": "1s"}, {"weight": 50, "pause": "1s"}, {"weight": 100}],
    "analysis": {"interval": "1s", "failureThreshold": STARTING_CHECKS},
}


def version(namespace: str, name: str, version_id: str, image: str) -> dict[str, Any]:
    return handler(
        namespace,
        name,
        handlerPath=PATH,
        version=version_id,
        image=image,
        timescape={"rollout": FAST_ROLLOUT},
    )


def quick_decommission(
    namespace: str, name: str, version_id: str, action: str = "delete"
) -> dict[str, Any]:
    """A GatiVersion created before its handler, so that it is decommissioned one second after
    one idle report once it drains (the defaults wait 300 s and five reports); timescape
    creates the GatiVersion of any other handler itself."""
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiVersion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "versionId": version_id,
            "handlerRef": {"name": name},
            "decommission": {"graceSeconds": 1, "idleSamples": 1, "action": action},
        },
    }


def failing_version(namespace: str, name: str, version_id: str) -> dict[str, Any]:
    """A version whose pods never get ready (kubesim fails an image tag ending `-failing`),
    rolled back at its first failed check: no later check could pass."""
    spec = version(namespace, name, version_id, f"acme/u:{version_id}-failing")
    spec["spec"]["timescape"]["rollout"] = FAST_ROLLOUT | {"analysis": {"interval": "1s"}}
    return spec


def config_map_table(core: client.CoreV1Api, namespace: str) -> dict[str, Any]:
    data = core.read_namespaced_config_map(ROUTES_CONFIG_MAP, namespace).data or {}
    table: dict[str, Any] = json.loads(data[config_map_key(PATH)])
    return table


def cm_weights(table: dict[str, Any]) -> dict[str, int]:
    return {v["versionId"]: v["weight"] for v in table["versions"] if v["weight"]}


async def test_rollout_steps_to_full_then_a_failing_version_rolls_back(stage: Stage) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    async with (
        routes(gati_connection) as tables,
        outcomes(gati_connection) as seen,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection),
    ):
        workloads.create(version(ns, "users-v1", "v1", "acme/u:1"))
        await tables.until(lambda t: weights(t) == {"v1": 100})

        workloads.create(version(ns, "users-v2", "v2", "acme/u:2"))
        steps = [{"v1": 90, "v2": 10}, {"v1": 50, "v2": 50}, {"v2": 100}]
        for step in steps:
            await tables.until(partial(has_weights, step))
            # The ConfigMap is written before the event: it shows this step or a later one.
            now_in_map = cm_weights(config_map_table(workloads.core, ns))
            assert now_in_map in steps[steps.index(step) :]

        workloads.create(failing_version(ns, "users-v3", "v3"))
        await seen.wait_for(lambda events: any(e.action == "rolled-back" for e in events))

    history = await table_history(gati_connection, ns)
    assert changes_in(history)[:4] == [{"v1": 100}, *steps]
    assert weights(history[-1]) == {"v2": 100}
    assert cm_weights(config_map_table(workloads.core, ns)) == {"v2": 100}
    rolled = workloads.get("GatiVersion", "users-v3")
    assert (rolled["status"]["phase"], rolled["status"]["currentWeight"]) == ("RolledBack", 0)
    assert [e.name for e in seen.events if e.action == "rolled-back"] == ["users-v3"]
    v2 = workloads.get("GatiVersion", "users-v2")
    assert (v2["status"]["phase"], v2["status"]["currentWeight"]) == ("Active", 100)
    owner = v2["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("GatiHandler", "users-v2")


async def table_history(connection: NatsConnection, namespace: str) -> list[RoutesEvent]:
    stored = await key_history(connection.jsm, ROUTES_BUCKET, routes_key(namespace, PATH))
    return [decode_event(value, RoutesEvent) for value in stored]


def changes_in(history: list[RoutesEvent]) -> list[dict[str, int]]:
    shares = [weights(t) for t in history]
    return [w for w, before in zip(shares, [{}, *shares], strict=False) if w != before]


async def test_restarted_in_a_pause_finishes_the_rollout_on_time(stage: Stage) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    rollout: dict[str, Any] = {
        "steps": [{"weight": 10, "pause": "3s"}, {"weight": 100}],
        "analysis": {"interval": "1s", "failureThreshold": STARTING_CHECKS},
    }
    v1, v2 = (version(ns, f"users-{v}", v, f"acme/u:{v}") for v in ("v1", "v2"))
    v2["spec"]["timescape"] = {"rollout": rollout}
    async with routes(gati_connection) as tables, running_reconciler(gati_api, gati_connection):
        async with running_timescape(gati_api, gati_connection, source="before"):
            workloads.create(v1)
            await tables.until(partial(has_weights, {"v1": 100}))
            workloads.create(v2)
            await tables.until(partial(has_weights, {"v1": 90, "v2": 10}))
        paused = workloads.get("GatiVersion", "users-v2")["status"]
        async with running_timescape(gati_api, gati_connection, source="after"):
            await tables.until(partial(has_weights, {"v2": 100}))
    done = workloads.get("GatiVersion", "users-v2")["status"]
    started = datetime.fromisoformat(paused["stepStartedAt"])
    # The last step begins at the pause's deadline, not whenever the new process got to it.
    assert datetime.fromisoformat(done["activatedAt"]) == started + timedelta(seconds=3)
    assert tables.events[-1].source == "after"


async def test_two_replicas_write_one_table_that_never_goes_back(stage: Stage) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    async with (
        routes(gati_connection) as tables,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection, source="a"),
        running_timescape(gati_api, gati_connection, source="b"),
    ):
        workloads.create(version(ns, "users-v1", "v1", "acme/u:1"))
        await tables.until(partial(has_weights, {"v1": 100}))
        workloads.create(version(ns, "users-v2", "v2", "acme/u:2"))
        await tables.until(partial(has_weights, {"v2": 100}))
    steps = [{"v1": 100}, {"v1": 90, "v2": 10}, {"v1": 50, "v2": 50}, {"v2": 100}]
    history = await table_history(gati_connection, ns)
    assert changes_in(history) == steps
    assert changes_in(tables.events) == steps
    assert len(tables.events) == len(history)


async def test_an_unusable_rollout_is_reported_by_field_and_the_version_holds(stage: Stage) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    bad = version(ns, "users-v1", "v1", "acme/u:1")
    bad["spec"]["timescape"]["rollout"] = FAST_ROLLOUT | {"analysis": {"interval": "0s"}}
    async with (
        outcomes(gati_connection) as seen,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection) as timescape,
    ):
        workloads.create(bad)
        await seen.wait_for(lambda events: any(e.reason == "InvalidRollout" for e in events))
        # Passes redone from the same object decide alike and name the outcome alike, so the
        # stream keeps one report however often the namespace is re-read.
        for _ in range(3):
            await timescape.reconcile(ns)
    subject = status_subject(GATI_VERSION.kind, ns, "users-v1")
    stored = await gati_connection.jsm.stream_info(STREAM, subjects_filter=subject)
    assert stored.state.subjects == {subject: 1}
    assert sum(e.reason == "InvalidRollout" for e in seen.events) >= 4
    refused = next(e for e in seen.events if e.reason == "InvalidRollout")
    assert "rollout.analysis.interval" in refused.message
    status = workloads.get("GatiVersion", "users-v1").get("status") or {}
    assert status.get("phase", "Pending") == "Pending"


def serves(path: str, expected: dict[str, int], table: RoutesEvent) -> bool:
    return table.path == path and weights(table) == expected


async def send_traffic(
    connection: NatsConnection,
    namespace: str,
    path: str,
    version_id: str,
    requests: int,
    errors: int = 0,
) -> None:
    sample = TrafficSample(
        namespace=namespace,
        handler=path,
        version=version_id,
        window_seconds=10,
        requests=requests,
        errors=errors,
        observed_at=datetime.now(UTC),
        source="router-0",
    )
    subject = traffic_subject(namespace, path, version_id)
    await connection.js.publish(subject, encode_event(sample), headers=event_headers(sample))


async def test_an_idle_superseded_version_is_decommissioned_and_a_used_one_is_not(
    stage: Stage,
) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    paths = {"users": "/api/users", "orders": "/api/orders"}
    async with (
        outcomes(gati_connection) as seen,
        routes(gati_connection) as tables,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection),
    ):
        for app, path in paths.items():
            for v in ("v1", "v2"):
                workloads.create(quick_decommission(ns, f"{app}-{v}", v))
                spec = version(ns, f"{app}-{v}", v, f"acme/{app}:{v}")
                spec["spec"]["handlerPath"] = path
                workloads.create(spec)
                await tables.until(partial(serves, path, {v: 100}))
        counted = asyncio.Event()

        async def on_change(msg: Msg) -> None:
            status = decode_event(msg.data, ChangeEvent).obj.get("status") or {}
            if status.get("trafficCount", 0) >= 5:
                counted.set()

        watched = cr_subject(GATI_VERSION.kind, ns, "orders-v1")
        subscription = await gati_connection.client.subscribe(watched, cb=on_change)
        await send_traffic(gati_connection, ns, paths["orders"], "v1", requests=5)
        # Both are past their one-second grace by now: only the busy one's requests keep it.
        await send_traffic(gati_connection, ns, paths["users"], "v1", requests=0)
        await seen.wait_for(lambda events: any(e.action == "decommissioned" for e in events))
        async with asyncio.timeout(WAIT):
            await counted.wait()
        await subscription.unsubscribe()
    gone = workloads.get("GatiVersion", "users-v1")["status"]
    kept = workloads.get("GatiVersion", "orders-v1")["status"]
    assert gone["phase"] == "Decommissioned"
    assert gone["decommissionedAt"]
    assert kept["phase"] == "Draining"
    assert kept["trafficCount"] >= 5
    # Its Deployment was deleted, but the reconciler re-creates it while the GatiHandler lives
    # (the handler's objects are the reconciler's): a cross-service gap, so not asserted here.
    assert [e.name for e in seen.events if e.action == "decommissioned"] == ["users-v1"]


async def test_a_version_whose_requests_fail_is_rolled_back_by_the_traffic_gate(
    stage: Stage,
) -> None:
    gati_api, gati_connection, _, workloads = stage
    ns = workloads.namespace
    held: dict[str, Any] = {
        "steps": [{"weight": 10, "pause": "1h"}, {"weight": 100}],
        "analysis": {
            "interval": "1s",
            "minSuccessRate": 0.95,
            "failureThreshold": STARTING_CHECKS,
        },
    }
    v2 = version(ns, "users-v2", "v2", "acme/u:2")
    v2["spec"]["timescape"] = {"rollout": held}
    async with (
        routes(gati_connection) as tables,
        outcomes(gati_connection) as seen,
        running_reconciler(gati_api, gati_connection),
        running_timescape(gati_api, gati_connection),
    ):
        # A dotted name is no Service name: the table names the Service the reconciler made.
        workloads.create(version(ns, "users.v1", "v1", "acme/u:1"))
        await tables.until(partial(has_weights, {"v1": 100}))
        workloads.create(v2)
        await tables.until(partial(has_weights, {"v1": 90, "v2": 10}))
        split_from = len(tables.events)

        async def report_failures() -> None:
            # A router reports every fraction of a second, as real ones report every window.
            while True:
                await send_traffic(gati_connection, ns, PATH, "v2", requests=100, errors=20)
                await asyncio.sleep(0.2)

        router = asyncio.create_task(report_failures())
        try:
            await seen.wait_for(lambda events: any(e.action == "rolled-back" for e in events))
        finally:
            await cancel_until_done(router)  # one cancel may be lost in nats-py (gh-86296)
        back = await tables.until(partial(has_weights, {"v1": 100}), after=split_from)
    listed = workloads.core.list_namespaced_service(ns).items
    services = {s.metadata.name for s in listed if s.metadata is not None}
    assert {v.service for v in back.versions} <= services
    assert {v.service for v in back.versions} >= {owned_name("users.v1")}
    rolled = next(e for e in seen.events if e.action == "rolled-back")
    assert (rolled.name, rolled.reason) == ("users-v2", "LowSuccessRate")
    assert "minSuccessRate is 0.95" in rolled.message
    rolled_back = workloads.get("GatiVersion", "users-v2")
    status = rolled_back["status"]
    assert (status["phase"], status["currentWeight"]) == ("RolledBack", 0)
    assert status["trafficCount"] >= 100
    assert status["observedGeneration"] == rolled_back["metadata"]["generation"]
    assert condition(status, "Degraded") == ("True", "LowSuccessRate")
    assert condition(status, "Ready")[0] == "False"
    assert condition(workloads.get("GatiVersion", "users.v1")["status"], "Ready")[0] == "True"


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


async def test_a_failing_tick_pass_is_logged_and_its_namespace_stays_due(
    gati_api: client.ApiClient, gati_connection: NatsConnection, workloads: Workloads
) -> None:
    ns = workloads.namespace
    workloads.create(version(ns, "users-v1", "v1", "acme/u:1"))
    kv = await gati_connection.js.key_value(ROUTES_BUCKET)
    # The health gate reads a stream that is not there: every pass of this namespace fails.
    timescape = Timescape(
        gati_api,
        Publisher(gati_connection),
        kv,
        "t0",
        js=gati_connection.js,
        metrics_stream="GATI_METRICS_GONE",
        decommissioned_retention=1,
    )
    due = datetime.now(UTC)
    timescape.wakes[ns] = due
    with structlog.testing.capture_logs() as logs:
        await timescape.reconcile_due(ns)
    assert timescape.wakes[ns] == due
    failed = [entry for entry in logs if entry["event"] == "tick failed, retried next tick"]
    assert [(entry["log_level"], entry["namespace"]) for entry in failed] == [("warning", ns)]


async def test_main_has_ended_its_tick_when_it_returns_even_after_a_lost_cancel(
    service_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`main` stops its tick with a cancel, which a nats-py `wait_for` can drop (gh-86296):
    the tick's work must still be over when `main` returns, not run on while the service
    drains and closes its NATS connection."""
    ticks: list[asyncio.Event] = []

    async def deaf_once(self: Timescape, stop: asyncio.Event) -> None:
        ended = asyncio.Event()
        ticks.append(ended)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # a request of the tick's pass: the cancel, lost
            await asyncio.Event().wait()  # the pass's next step
        finally:
            ended.set()

    monkeypatch.setattr(Timescape, "tick", deaf_once)
    service_context.stop.set()  # the loops drain at once, and main stops the tick
    running = asyncio.ensure_future(main(service_context))
    await asyncio.wait({running}, timeout=WAIT)  # a timeout that cancels would mask a hang
    assert running.done(), "main did not return"
    running.result()
    assert [ended.is_set() for ended in ticks] == [True], "the tick outlived main"


async def test_main_ends_its_other_loop_when_one_fails_and_logs_why(
    service_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One consumer loop failing fails `main`; the other, which may lose a cancel as any loop
    inside a nats-py request can (gh-86296), must have ended by then, not consume on while
    the service drains and closes its NATS connection."""
    ended = asyncio.Event()

    class Loop:
        def __init__(self, durable: str) -> None:
            self.durable = durable

        async def run(self, stop: asyncio.Event) -> None:
            if self.durable == TRAFFIC_CONSUMER.durable:
                try:
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()  # the cancel, lost
                    await asyncio.Event().wait()  # the loop's next pull
                finally:
                    ended.set()
            await asyncio.sleep(0)
            raise RuntimeError("the change loop broke")

    async def idle_tick(self: Timescape, stop: asyncio.Event) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(Timescape, "tick", idle_tick)
    monkeypatch.setattr(ServiceContext, "consumer", lambda self, spec, **_: Loop(spec.durable))
    error, why = await failed_main(main, service_context)
    assert repr(error) == repr(RuntimeError("the change loop broke"))
    assert ended.is_set(), "the traffic loop outlived main"
    assert (why["log_level"], why["failed"], why["ending"]) == ("error", "changes", ["traffic"])
