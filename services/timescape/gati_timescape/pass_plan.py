"""One timescape pass over a namespace, decided from what the pass read: no I/O.

The service reads a namespace (handlers, versions, Deployments, traffic samples), calls
`plan_namespace`, and then writes what it returns (statuses, outcomes, routing tables); the
replay tool calls the same function over what the stream recorded. So the order of the pure
steps (settle, evaluate the target, count the others' traffic, settle again, build the table)
lives once, and a replay decides what the service would have.

The traffic window of a health check is read only for the versions a pass judges, and which
those are is known only midway through a pass (after the first settle); `health_windows` finds
them by running the same pass with a reading that records what it was asked, so the service
reads exactly the samples the real pass will judge and never decides twice how to pick them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from gati_contracts.events import OutcomeReport, OutcomeResult, RoutesEvent, TrafficSample
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.labels import OWNER_LABEL, selector_labels
from gati_contracts.ownership import owned_name
from gati_contracts.rollout import RolloutSpec
from gati_contracts.version import GatiVersion, VersionPhase
from gati_timescape.actions import ActionAnnotationError, requested_action
from gati_timescape.decommission import observe_traffic
from gati_timescape.health import HealthReading, read_health
from gati_timescape.rollout import check_interval, evaluate, refuse_action
from gati_timescape.routing import RoutedVersion, RoutingError, build_table
from gati_timescape.state import IN_FLIGHT, Decision, VersionState
from gati_timescape.succession import settle, stable, target

MOVING: Final = IN_FLIGHT | {VersionPhase.DRAINING}
"""Phases that still change with time alone, so their namespace is re-read on a tick."""
MAX_TICK: Final = timedelta(seconds=30)
"""Upper bound between re-reads even without deadlines, so a lost event heals."""
MIN_TICK: Final = timedelta(milliseconds=50)
"""The tick waits at least this long, so a deadline that keeps failing cannot spin the loop."""
DEFAULT_PORT: Final = 8080
"""The port a table names for a version whose GatiHandler is gone (the handler's default)."""

Health = Callable[["PassVersion", datetime], HealthReading]
"""The reading of a version over its analysis window, which starts at the given time."""


@dataclass(frozen=True)
class PassVersion:
    """A version as a pass reads it, with the state the pass starts from: the service's is its
    status; the replay's, the one its previous pass decided."""

    obj: GatiVersion
    handler: GatiHandler | None
    state: VersionState

    @property
    def name(self) -> str:
        return self.obj.metadata.name

    @property
    def path(self) -> str | None:
        """The handler's path, or the one status recorded once its handler is gone."""
        if self.handler is not None:
            return self.handler.spec.handler_path
        return self.obj.status.handler_path if self.obj.status else None


@dataclass(frozen=True)
class DeploymentReplicas:
    """What readiness needs of a Deployment."""

    labels: Mapping[str, str]
    desired: int
    ready: int

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> DeploymentReplicas:
        metadata, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
        return cls(
            labels=dict(metadata.get("labels") or {}),
            desired=int(spec.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
        )


def by_owner(deployments: Iterable[DeploymentReplicas]) -> dict[str, list[DeploymentReplicas]]:
    """Deployments by the object their owner label names, so a pass finds each version's in
    one look-up instead of scanning all of them per version (a namespace of 2,500 handlers
    made that the larger part of a pass)."""
    owned: dict[str, list[DeploymentReplicas]] = {}
    for deployment in deployments:
        owner = deployment.labels.get(OWNER_LABEL)
        if owner is not None:
            owned.setdefault(owner, []).append(deployment)
    return owned


def readiness(deployments: Iterable[DeploymentReplicas], version: PassVersion) -> tuple[int, int]:
    """Ready and desired replicas of the Deployments of the version's handler. None rendered
    yet: what the handler asks for, none ready, so a version whose pods do not exist cannot pass
    the readiness gate (an empty ratio counts as ready)."""
    wanted = selector_labels(GATI_HANDLER, version.obj.spec.handler_ref.name).items()
    owned = [d for d in deployments if wanted <= d.labels.items()]
    if not owned:
        return 0, version.handler.spec.replicas if version.handler else 0
    return sum(d.ready for d in owned), sum(d.desired for d in owned)


@dataclass(frozen=True)
class VersionPlan:
    name: str
    state: VersionState
    """Every version's, decided or not, so a spec edit alone still moves observedGeneration."""
    outcomes: tuple[OutcomeReport, ...] = ()
    decommission: bool = False
    """Decommissioned in this pass: its objects go (before the status says so)."""


@dataclass(frozen=True)
class PathPlan:
    path: str
    versions: tuple[VersionPlan, ...]
    """Oldest first (creation time, then name)."""
    table: RoutesEvent | RoutingError
    """The error when the versions claim more than 100 %: the service writes the statuses
    first and then fails the pass; the replay reports it."""
    wake: datetime | None


@dataclass(frozen=True)
class NamespacePlan:
    paths: tuple[PathPlan, ...] = ()
    """In path order."""
    wake: datetime | None = None
    """The earliest deadline of any path: when the namespace is to be re-read."""


def plan_namespace(
    namespace: str,
    versions: Iterable[PassVersion],
    now: datetime,
    *,
    deployments: Iterable[DeploymentReplicas] = (),
    samples: Mapping[str, Sequence[TrafficSample]] | None = None,
    arrived: Sequence[TrafficSample] = (),
    source: str = "",
) -> NamespacePlan:
    """Decide a pass at `now`. `samples`: each judged version's traffic by version name (any
    that covers its `health_windows` entry; `read_health` keeps the window); `arrived`: the
    samples that triggered the pass, counted toward decommission; `source` stamps the tables."""
    owned = by_owner(deployments)
    stored = samples or {}

    def replicas_of(version: PassVersion) -> tuple[int, int]:
        return readiness(owned.get(version.obj.spec.handler_ref.name, ()), version)

    def health(version: PassVersion, since: datetime) -> HealthReading:
        ready, desired = replicas_of(version)
        return read_health(
            stored.get(version.name, ()),
            ready_replicas=ready,
            desired_replicas=desired,
            since=since,
            until=now,
        )

    plans = tuple(
        _plan_path(
            namespace,
            path,
            group,
            now,
            health=health,
            replicas_of=replicas_of,
            arrived=[s for s in arrived if s.handler == path],
            source=source,
        )
        for path, group in by_path(versions, now).items()
    )
    wakes = [p.wake for p in plans if p.wake is not None]
    return NamespacePlan(plans, min(wakes, default=None))


def health_windows(
    namespace: str, versions: Iterable[PassVersion], now: datetime
) -> dict[str, datetime]:
    """The versions a pass at `now` judges, by name, and where each's analysis window starts.
    Which ones does not depend on readings (the target and any version asked an action are
    known after the first settle), so a pass with made-up readings names the same ones."""
    wanted: dict[str, datetime] = {}

    def record(version: PassVersion, since: datetime) -> HealthReading:
        wanted[version.name] = since
        return HealthReading(ready_replicas=0, desired_replicas=0)

    for path, group in by_path(versions, now).items():
        _plan_path(
            namespace, path, group, now, health=record, replicas_of=lambda _: (0, 0), arrived=[]
        )
    return wanted


def by_path(versions: Iterable[PassVersion], now: datetime) -> dict[str, list[PassVersion]]:
    """Versions with a path, by path in path order, each path's oldest first as `succession`
    expects them (a version not yet stamped with a creation time counts as created now)."""
    paths: dict[str, list[PassVersion]] = {}
    for version in versions:
        if version.path is not None:
            paths.setdefault(version.path, []).append(version)
    for group in paths.values():
        group.sort(key=lambda v: (v.obj.metadata.creation_timestamp or now, v.name))
    return dict(sorted(paths.items()))


@dataclass
class _Pass:
    """What one path's pass has decided so far."""

    states: dict[str, VersionState]
    decisions: dict[str, Decision] = field(default_factory=dict)
    wake: datetime | None = None

    def take(self, name: str, decision: Decision) -> None:
        earlier = self.decisions.get(name)
        outcomes = (earlier.outcomes if earlier else ()) + decision.outcomes
        self.decisions[name] = replace(decision, outcomes=outcomes)
        self.states[name] = decision.state
        if decision.wake_at is not None:
            self.wake = decision.wake_at if self.wake is None else min(self.wake, decision.wake_at)


def _plan_path(
    namespace: str,
    path: str,
    group: Sequence[PassVersion],
    now: datetime,
    *,
    health: Health,
    replicas_of: Callable[[PassVersion], tuple[int, int]],
    arrived: Sequence[TrafficSample],
    source: str = "",
) -> PathPlan:
    """Settle, evaluate the target (and any version asked an action), count the others'
    traffic, settle again, then the table."""
    taken = _Pass({v.name: v.state for v in group})

    def ordered() -> list[tuple[str, VersionState]]:
        return [(v.name, taken.states[v.name]) for v in group]

    for name, decision in settle(ordered(), now).items():
        taken.decisions[name] = decision
        taken.states[name] = decision.state
    seen_by_id: dict[str, list[TrafficSample]] = {}
    for sample in arrived:
        seen_by_id.setdefault(sample.version, []).append(sample)
    goal = target(ordered())
    for version in group:
        name = version.name
        seen = seen_by_id.get(version.obj.spec.version_id, ())
        if name != goal and _asks(version, taken.states[name]):
            # An action on a version that is not the target: `retry` of a rolled-back one,
            # or one that does not apply, answered rather than left pending for ever.
            taken.take(name, _evaluate(version, taken.states[name], now, ordered(), health))
        if name == goal:
            # The target's traffic is counted too; in flight, it is never decommissioned.
            counted = observe_traffic(
                taken.states[name],
                version.obj.spec.decommission,
                seen,
                unavailable_replicas=0,
                now=now,
            ).state
            taken.take(name, _evaluate(version, counted, now, ordered(), health))
        elif seen or taken.states[name].phase is VersionPhase.DRAINING:
            ready, desired = replicas_of(version)
            decision = observe_traffic(
                taken.states[name],
                version.obj.spec.decommission,
                seen,
                unavailable_replicas=max(desired - ready, 0),
                now=now,
            )
            taken.take(name, decision)
    # Settled again: a target that completed in this pass replaces the stable version now,
    # or the table would give the old version its 100 % for one more round.
    for name, later in settle(ordered(), now).items():
        taken.take(name, later)
    wake = taken.wake
    if wake is None and any(s.phase in MOVING for s in taken.states.values()):
        wake = now + MAX_TICK
    plans = []
    for version in group:
        decided = taken.decisions.get(version.name)
        state = taken.states[version.name]
        plans.append(
            VersionPlan(
                version.name,
                state,
                decided.outcomes if decided else (),
                decommission=decided is not None and state.phase is VersionPhase.DECOMMISSIONED,
            )
        )
    routed = [
        RoutedVersion(
            version_id=v.obj.spec.version_id,
            state=taken.states[v.name],
            service=v.obj.spec.service_name or owned_name(v.obj.spec.handler_ref.name),
            port=v.handler.spec.port if v.handler else DEFAULT_PORT,
            breaking=v.obj.spec.breaking,
            transformers=tuple(v.obj.spec.transformers),
        )
        for v in group
    ]
    table: RoutesEvent | RoutingError
    try:
        table = build_table(namespace, path, routed, observed_at=now, source=source)
    except RoutingError as error:
        table = error
    return PathPlan(path, tuple(plans), table, wake)


def _evaluate(
    version: PassVersion,
    state: VersionState,
    now: datetime,
    ordered: Sequence[tuple[str, VersionState]],
    health: Health,
) -> Decision:
    annotations = version.obj.metadata.annotations or {}
    try:
        action = requested_action(annotations, state.handled_action)
    except ActionAnnotationError as error:
        return refuse_action(state, error)
    spec: RolloutSpec | None = version.obj.spec.rollout or (
        version.handler.spec.timescape.rollout if version.handler else None
    )
    if spec is None:
        # No handler and no rollout of its own: the version holds, and a request is answered
        # rather than left pending for ever.
        if action is None:
            return Decision(state)
        skipped = OutcomeReport(
            "rollout-action",
            OutcomeResult.SKIPPED,
            "ActionNotApplicable",
            f"{action.action.value} needs the version's GatiHandler "
            f"{version.obj.spec.handler_ref.name!r} or a spec.rollout of its own",
        )
        return Decision(replace(state, handled_action=action.nonce), (skipped,))
    try:
        reading = health(version, now - check_interval(spec))
        return evaluate(
            state, spec, reading, now, has_stable=stable(ordered) is not None, action=action
        )
    except ValueError as error:
        # The version holds still and says why; the other paths of the namespace go on.
        failed = OutcomeReport("rollout", OutcomeResult.FAILED, "InvalidRollout", str(error))
        return Decision(state, (failed,))


def _asks(version: PassVersion, state: VersionState) -> bool:
    """Whether the version's annotations hold a request not taken yet (a malformed one too:
    its refusal is recorded like an action)."""
    try:
        return (
            requested_action(version.obj.metadata.annotations or {}, state.handled_action)
            is not None
        )
    except ActionAnnotationError:
        return True
