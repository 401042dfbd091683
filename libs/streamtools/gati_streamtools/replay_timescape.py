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

A pass is the service's own `pass_plan.plan_namespace`, so replay and service cannot drift
apart: this module only keeps what the service would have read, and prints what a pass decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    OutcomeReport,
    RoutesEvent,
    TrafficSample,
)
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_VERSION
from gati_contracts.routing import table_json
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, object_filter
from gati_contracts.version import GatiVersion
from gati_streamtools.replay import Decision, TimedReplay
from gati_timescape.pass_plan import (
    MIN_TICK,
    DeploymentReplicas,
    PassVersion,
    PathPlan,
    plan_namespace,
)
from gati_timescape.routing import RoutingError
from gati_timescape.state import VersionState
from gati_timescape.status import from_status

SAMPLES_KEPT: Final = timedelta(hours=1)
"""Samples older than this are dropped (the metrics stream's default retention): no analysis
interval reaches that far back."""
SAMPLE_LOOKBACK: Final = timedelta(minutes=10)
"""How far before the first replayed event the traffic samples are read, so the first health
checks of the range see the same window the service saw."""


@dataclass
class _Namespace:
    handlers: dict[str, GatiHandler]
    versions: dict[str, GatiVersion]
    deployments: dict[str, DeploymentReplicas]


class TimescapeReplay(TimedReplay):
    service = "timescape"

    def __init__(self) -> None:
        super().__init__()
        self._namespaces: dict[str, _Namespace] = {}
        self._states: dict[tuple[str, str], VersionState] = {}
        self._samples: dict[tuple[str, str, str], list[TrafficSample]] = {}
        self._tables: dict[tuple[str, str], RoutesEvent] = {}
        self._wakes: dict[str, datetime] = {}
        self._asked: set[tuple[str, str]] = set()

    @property
    def filters(self) -> tuple[str, ...]:
        return (
            object_filter(CR_ROOT, GATI_HANDLER.kind),
            object_filter(CR_ROOT, GATI_VERSION.kind),
            object_filter(OWNED_ROOT, DEPLOYMENT.kind),
        )

    def _sample(self, sample: TrafficSample, now: datetime) -> list[Decision]:
        key = (sample.namespace, sample.handler, sample.version)
        kept = self._samples.setdefault(key, [])
        kept.append(sample)
        if kept[0].observed_at < now - SAMPLES_KEPT:
            kept[:] = [s for s in kept if s.observed_at >= now - SAMPLES_KEPT]
        return self._pass(sample.namespace, now, (sample,))

    def _change(self, event: ChangeEvent, now: datetime) -> list[Decision]:
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
                    namespace.deployments[event.name] = DeploymentReplicas.from_wire(event.obj)
            else:
                return []
        except ValueError as error:
            # The service skips an object it cannot read, and so does its replay; say so.
            where = f"{event.kind} {event.namespace}/{event.name}"
            return [self._decided(where, "skipped", now, str(error))]
        return self._pass(event.namespace, now)

    def _namespace(self, name: str) -> _Namespace:
        return self._namespaces.setdefault(name, _Namespace({}, {}, {}))

    def _until(self, until: datetime) -> list[Decision]:
        """The deadlines the service's tick would have taken, each at its own instant."""
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
                    self._decided(
                        f"GatiVersion {name}/{handler.metadata.name}",
                        "create",
                        now,
                        f"versionId {handler.spec.version} for the handler of the same name",
                    )
                )
        read = [
            PassVersion(
                version,
                namespace.handlers.get(version.spec.handler_ref.name),
                self._states.get((name, version.metadata.name)) or from_status(version.status),
            )
            for version in namespace.versions.values()
        ]
        plan = plan_namespace(
            name,
            read,
            now,
            deployments=namespace.deployments.values(),
            samples={
                v.name: self._samples.get((name, v.path or "", v.obj.spec.version_id), ())
                for v in read
            },
            arrived=traffic,
            source="replay",
        )
        for path in plan.paths:
            for version in path.versions:
                self._states[(name, version.name)] = version.state
                decided += [self._outcome(name, version.name, o, now) for o in version.outcomes]
            decided += self._table(name, path, now)
        if plan.wake is None:
            self._wakes.pop(name, None)
        else:
            self._wakes[name] = plan.wake
        return decided

    def _outcome(
        self, namespace: str, name: str, outcome: OutcomeReport, now: datetime
    ) -> Decision:
        return self._decided(
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

    def _table(self, name: str, plan: PathPlan, now: datetime) -> list[Decision]:
        """The table, when it differs from the last one this replay decided for the path."""
        where = f"routes {name} {plan.path}"
        table = plan.table
        if isinstance(table, RoutingError):
            return [self._decided(where, "failed", now, str(table))]
        before = self._tables.get((name, plan.path))
        if before is not None and (before.default_version, before.versions) == (
            table.default_version,
            table.versions,
        ):
            return []
        self._tables[(name, plan.path)] = table
        shares = [f"{v.version_id} {v.weight} %" for v in table.versions if v.weight]
        return [
            self._decided(
                where,
                "routes",
                now,
                f"default {table.default_version}: {', '.join(shares) or 'nothing serves it'}",
                details=table_json(table),
            )
        ]
