"""Replaying timescape: its pure rollout, succession, decommission and routing functions run
over recorded events, with time taken from the stream instead of a clock.

The service is level-triggered per namespace: every handler, version or Deployment change, and
every traffic sample, re-reads the namespace and decides from it; a tick re-reads it at the
earliest deadline a pass found. This replay keeps what those reads would have returned (the
latest recorded handlers, versions and Deployments, the samples of `GATI_METRICS`) and runs a
pass at each recorded event's stream time, and at each deadline that falls before the next
event, as the tick would have.

The version states are the replay's own, seeded from the first recorded status of each
version (as a restarted service resumes from the object) and then carried from pass to pass:
what it prints is what today's code decides, not a re-telling of the recorded status. So a
replay reproduces the rollout steps, rollbacks, decommissions and routing tables the service
published; where readiness changed between a Deployment's change and its event, a health check
may be counted at a slightly different instant.

The glue between the pure functions follows `Timescape._path` in the service, which does I/O
in between; the two must change together until that glue moves into a pure module of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    OutcomeResult,
    RoutesEvent,
    TrafficSample,
)
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_VERSION
from gati_contracts.labels import selector_labels
from gati_contracts.routing import table_json
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, TRAFFIC_ROOT, object_filter
from gati_contracts.version import GatiVersion, VersionPhase
from gati_streamtools.records import Record
from gati_streamtools.replay import Decision, decided_after
from gati_timescape.actions import ActionAnnotationError, requested_action
from gati_timescape.decommission import observe_traffic
from gati_timescape.health import read_health
from gati_timescape.rollout import check_interval, evaluate, refuse_action
from gati_timescape.routing import RoutedVersion, RoutingError, build_table
from gati_timescape.state import IN_FLIGHT, VersionState
from gati_timescape.state import Decision as StepDecision
from gati_timescape.state import Outcome as StepOutcome
from gati_timescape.status import from_status
from gati_timescape.succession import settle, stable, target

MOVING: Final = IN_FLIGHT | {VersionPhase.DRAINING}
MAX_TICK: Final = timedelta(seconds=30)
"""The service re-reads a namespace with a version still moving at least this often."""
MIN_TICK: Final = timedelta(milliseconds=50)
"""The service's shortest wait between two ticks: a deadline already past is retried after it."""
SAMPLES_KEPT: Final = timedelta(hours=1)
"""Samples older than this are dropped (the metrics stream's default retention): no analysis
interval reaches that far back."""
SAMPLE_LOOKBACK: Final = timedelta(minutes=10)
"""How far before the first replayed event the traffic samples are read, so the first health
checks of the range see the same window the service saw."""


@dataclass
class _Deployment:
    labels: dict[str, str]
    desired: int
    ready: int


@dataclass
class _Namespace:
    handlers: dict[str, GatiHandler]
    versions: dict[str, GatiVersion]
    deployments: dict[str, _Deployment]


def _deployment(obj: Mapping[str, Any]) -> _Deployment:
    metadata, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    return _Deployment(
        labels=dict(metadata.get("labels") or {}),
        desired=int(spec.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
    )


class TimescapeReplay:
    service = "timescape"

    def __init__(self) -> None:
        self._namespaces: dict[str, _Namespace] = {}
        self._states: dict[tuple[str, str], VersionState] = {}
        self._samples: dict[tuple[str, str, str], list[TrafficSample]] = {}
        self._tables: dict[tuple[str, str], RoutesEvent] = {}
        self._wakes: dict[str, datetime] = {}
        self._asked: set[tuple[str, str]] = set()
        self._last: Record | None = None

    @property
    def filters(self) -> tuple[str, ...]:
        return (
            object_filter(CR_ROOT, GATI_HANDLER.kind),
            object_filter(CR_ROOT, GATI_VERSION.kind),
            object_filter(OWNED_ROOT, DEPLOYMENT.kind),
        )

    @property
    def traffic_filters(self) -> tuple[str, ...]:
        return (f"{TRAFFIC_ROOT}.>",)

    def decide(self, record: Record) -> list[Decision]:
        """Deadlines due before the record first, then the pass the record triggers."""
        now = record.message.time
        decided = self._due(now)
        self._last = record
        event = record.event
        if isinstance(event, TrafficSample):
            self._keep_sample(event, now)
            return decided + self._pass(event.namespace, now, (event,))
        if not isinstance(event, ChangeEvent):
            return decided
        namespace = self._namespace(event.namespace)
        gone = event.type is ChangeType.DELETED
        try:
            if event.kind == GATI_HANDLER.kind:
                if gone:
                    namespace.handlers.pop(event.name, None)
                else:
                    namespace.handlers[event.name] = GatiHandler.from_wire(event.obj)
            elif event.kind == GATI_VERSION.kind:
                if gone:
                    namespace.versions.pop(event.name, None)
                    self._states.pop((event.namespace, event.name), None)
                else:
                    namespace.versions[event.name] = GatiVersion.from_wire(event.obj)
            elif event.kind == DEPLOYMENT.kind:
                if gone:
                    namespace.deployments.pop(event.name, None)
                else:
                    namespace.deployments[event.name] = _deployment(event.obj)
            else:
                return decided
        except ValueError as error:
            # The service skips an object it cannot read, and so does its replay; say so.
            skipped = self._decision(
                f"{event.kind} {event.namespace}/{event.name}", "skipped", now, str(error)
            )
            return [*decided, skipped]
        return decided + self._pass(event.namespace, now)

    def finish(self) -> list[Decision]:
        """The deadlines that fell between the last event and the end of the range."""
        return [] if self._last is None else self._due(self._last.message.time)

    def _namespace(self, name: str) -> _Namespace:
        return self._namespaces.setdefault(name, _Namespace({}, {}, {}))

    def _keep_sample(self, sample: TrafficSample, now: datetime) -> None:
        key = (sample.namespace, sample.handler, sample.version)
        kept = self._samples.setdefault(key, [])
        kept.append(sample)
        if kept[0].observed_at < now - SAMPLES_KEPT:
            kept[:] = [s for s in kept if s.observed_at >= now - SAMPLES_KEPT]

    def _due(self, until: datetime) -> list[Decision]:
        decided: list[Decision] = []
        while self._wakes:
            namespace, wake = min(self._wakes.items(), key=lambda item: item[1])
            if wake > until:
                break
            decided += self._pass(namespace, wake)
            later = self._wakes.get(namespace)
            if later is not None and later <= wake:
                self._wakes[namespace] = wake + MIN_TICK
        return decided

    def _decision(
        self,
        target: str,
        action: str,
        now: datetime,
        *changes: str,
        details: dict[str, Any] | None = None,
    ) -> Decision:
        return decided_after(
            self._last, self.service, target, action, now, *changes, details=details
        )

    def _pass(
        self, name: str, now: datetime, traffic: Sequence[TrafficSample] = ()
    ) -> list[Decision]:
        namespace = self._namespace(name)
        decided: list[Decision] = []
        known = {v.spec.handler_ref.name for v in namespace.versions.values()}
        for handler in namespace.handlers.values():
            key = (name, handler.metadata.name)
            if handler.metadata.name not in known and key not in self._asked:
                self._asked.add(key)
                decided.append(
                    self._decision(
                        f"GatiVersion {name}/{handler.metadata.name}",
                        "create",
                        now,
                        f"versionId {handler.spec.version} for the handler of the same name",
                    )
                )
        paths: dict[str, list[GatiVersion]] = {}
        for version in namespace.versions.values():
            path = self._path_of(namespace, version)
            if path is not None:
                paths.setdefault(path, []).append(version)
        wake: datetime | None = None
        for path, group in sorted(paths.items()):
            group.sort(key=lambda v: (v.metadata.creation_timestamp or now, v.metadata.name))
            samples: dict[str, list[TrafficSample]] = {}
            for sample in traffic:
                if sample.handler == path:
                    samples.setdefault(sample.version, []).append(sample)
            path_wake, path_decided = self._path(namespace, name, path, group, now, samples)
            decided += path_decided
            if path_wake is not None:
                wake = path_wake if wake is None else min(wake, path_wake)
        if wake is None:
            self._wakes.pop(name, None)
        else:
            self._wakes[name] = wake
        return decided

    @staticmethod
    def _path_of(namespace: _Namespace, version: GatiVersion) -> str | None:
        handler = namespace.handlers.get(version.spec.handler_ref.name)
        if handler is not None:
            return handler.spec.handler_path
        return version.status.handler_path if version.status else None

    def _path(
        self,
        namespace: _Namespace,
        name: str,
        path: str,
        group: Sequence[GatiVersion],
        now: datetime,
        samples: Mapping[str, Sequence[TrafficSample]],
    ) -> tuple[datetime | None, list[Decision]]:
        """One path's pass, in the service's order: settle, evaluate the target, count the
        others' traffic, settle again, then the routing table."""
        states = {
            v.metadata.name: self._states.get((name, v.metadata.name)) or from_status(v.status)
            for v in group
        }

        def ordered() -> list[tuple[str, VersionState]]:
            return [(v.metadata.name, states[v.metadata.name]) for v in group]

        decisions: dict[str, StepDecision] = settle(ordered(), now)
        for version_name, step in decisions.items():
            states[version_name] = step.state
        wake: datetime | None = None
        goal = target(ordered())
        for version in group:
            version_name = version.metadata.name
            seen = samples.get(version.spec.version_id, ())
            if version_name == goal:
                counted = observe_traffic(
                    states[version_name],
                    version.spec.decommission,
                    seen,
                    unavailable_replicas=0,
                    now=now,
                ).state
                step = self._evaluate(namespace, name, version, path, counted, now, ordered())
            elif seen or states[version_name].phase is VersionPhase.DRAINING:
                ready, desired = self._readiness(namespace, version)
                step = observe_traffic(
                    states[version_name],
                    version.spec.decommission,
                    seen,
                    unavailable_replicas=max(desired - ready, 0),
                    now=now,
                )
            else:
                continue
            earlier = decisions.get(version_name)
            outcomes = (earlier.outcomes if earlier else ()) + step.outcomes
            decisions[version_name] = replace(step, outcomes=outcomes)
            states[version_name] = step.state
            if step.wake_at is not None:
                wake = step.wake_at if wake is None else min(wake, step.wake_at)
        for version_name, later in settle(ordered(), now).items():
            earlier = decisions.get(version_name)
            outcomes = (earlier.outcomes if earlier else ()) + later.outcomes
            decisions[version_name] = replace(later, outcomes=outcomes)
            states[version_name] = later.state
        if any(s.phase in MOVING for s in states.values()) and wake is None:
            wake = now + MAX_TICK
        decided: list[Decision] = []
        for version in group:
            version_name = version.metadata.name
            self._states[(name, version_name)] = states[version_name]
            taken = decisions.get(version_name)
            for outcome in taken.outcomes if taken else ():
                decided.append(self._outcome(name, version_name, outcome, now))
        decided += self._table(namespace, name, path, group, states, now)
        return wake, decided

    def _evaluate(
        self,
        namespace: _Namespace,
        name: str,
        version: GatiVersion,
        path: str,
        state: VersionState,
        now: datetime,
        ordered: Sequence[tuple[str, VersionState]],
    ) -> StepDecision:
        handler = namespace.handlers.get(version.spec.handler_ref.name)
        try:
            action = requested_action(version.metadata.annotations or {}, state.handled_action)
        except ActionAnnotationError as error:
            return refuse_action(state, error)
        spec = version.spec.rollout or (handler.spec.timescape.rollout if handler else None)
        if spec is None:
            return StepDecision(state)
        try:
            since = now - check_interval(spec)
            ready, desired = self._readiness(namespace, version)
            key = (name, path, version.spec.version_id)
            health = read_health(
                self._samples.get(key, ()),
                ready_replicas=ready,
                desired_replicas=desired,
                since=since,
                until=now,
            )
            return evaluate(
                state, spec, health, now, has_stable=stable(ordered) is not None, action=action
            )
        except ValueError as error:
            failed = StepOutcome("rollout", OutcomeResult.FAILED, "InvalidRollout", str(error))
            return StepDecision(state, (failed,))

    @staticmethod
    def _readiness(namespace: _Namespace, version: GatiVersion) -> tuple[int, int]:
        """Ready and desired replicas of the handler's Deployments, as last recorded."""
        handler_name = version.spec.handler_ref.name
        wanted = selector_labels(GATI_HANDLER, handler_name).items()
        owned = [d for d in namespace.deployments.values() if wanted <= d.labels.items()]
        if not owned:
            handler = namespace.handlers.get(handler_name)
            return 0, handler.spec.replicas if handler else 0
        return sum(d.ready for d in owned), sum(d.desired for d in owned)

    def _outcome(self, namespace: str, name: str, outcome: StepOutcome, now: datetime) -> Decision:
        return self._decision(
            f"{GATI_VERSION.kind} {namespace}/{name}",
            outcome.action,
            now,
            f"{outcome.result.value} {outcome.reason}: {outcome.message}",
            details={
                "result": outcome.result.value,
                "reason": outcome.reason,
                "message": outcome.message,
                **outcome.details,
            },
        )

    def _table(
        self,
        namespace: _Namespace,
        name: str,
        path: str,
        group: Sequence[GatiVersion],
        states: Mapping[str, VersionState],
        now: datetime,
    ) -> list[Decision]:
        """The table, when it differs from the last one this replay decided for the path."""
        routed = []
        for version in group:
            handler = namespace.handlers.get(version.spec.handler_ref.name)
            routed.append(
                RoutedVersion(
                    version_id=version.spec.version_id,
                    state=states[version.metadata.name],
                    service=version.spec.service_name or version.spec.handler_ref.name,
                    port=handler.spec.port if handler else 8080,
                    breaking=version.spec.breaking,
                    transformers=tuple(version.spec.transformers),
                )
            )
        where = f"routes {name} {path}"
        try:
            table = build_table(name, path, routed, observed_at=now, source="replay")
        except RoutingError as error:
            return [self._decision(where, "failed", now, str(error))]
        before = self._tables.get((name, path))
        if before is not None and (before.default_version, before.versions) == (
            table.default_version,
            table.versions,
        ):
            return []
        self._tables[(name, path)] = table
        shares = [f"{v.version_id} {v.weight} %" for v in table.versions if v.weight]
        return [
            self._decision(
                where,
                "routes",
                now,
                f"default {table.default_version}: {', '.join(shares) or 'nothing serves it'}",
                details=table_json(table),
            )
        ]
