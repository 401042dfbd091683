"""Replaying the scaler: its pure `decide` over traffic windows folded from the recorded samples,
with time taken from the stream instead of a clock.

The service (the replica holding a handler's lease) folds every sample of a handler version in
mode `events` into a `TrafficWindow`, with the stream's receipt time, and decides on each sample
and on every tick (`GATI_SCALER_TICK_SECONDS`), so idleness and stabilization are noticed
without new samples. It writes `/scale` when the decision changes replicas and records a
decision whose replicas or reason changed. This replay does the same over the recorded range:
handlers and their Deployments from `GATI`, samples from `GATI_METRICS`, a decision at each
sample's stream time and at each tick between events, the current replicas those decisions
leave behind (seeded from the Deployment's first recorded `spec.replicas`). Mode `hpa` shows
the HorizontalPodAutoscaler the scaler would apply for each generation.

A window that starts mid-range is seeded, as the service's tail is, with the samples of the
last `replay_seconds` before it (as far as the range's samples reach back). The service's tick
phase is not recorded: a replay ticks from the first event, so a decision that waits on time
(idleness, a stabilization window) is taken up to one tick apart from the recorded one.
What the holder does about a handler (the mode in effect, when to write and record a decision,
an HPA per generation) is the service's own `gati_scaler.plan`, so replay and service cannot
drift; this module only keeps what the service would have read.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gati_contracts.events import ChangeEvent, ChangeType, OutcomeReport, TrafficSample
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER
from gati_contracts.labels import selector_labels
from gati_contracts.scaling import ScalingMode
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, object_filter
from gati_scaler.decision import replay_seconds
from gati_scaler.options import ScalerOptions
from gati_scaler.plan import (
    Holding,
    hpa_deleted,
    hpa_due,
    plan_hpa,
    plan_mode,
    plan_scale,
    scaled,
    seed,
)
from gati_scaler.windows import HISTORY_SECONDS, TrafficWindow
from gati_streamtools.replay import Decision, TimedReplay

Key = tuple[str, str]
"""(namespace, name) of a GatiHandler."""
SAMPLES_KEPT: Final = timedelta(seconds=HISTORY_SECONDS + 120)
"""The longest a window can look back (stabilization plus two rate windows)."""


@dataclass
class _Deployment:
    name: str
    labels: dict[str, str]
    controllers: set[str]
    """uids of its controller owners."""


@dataclass
class _Held:
    """What the holder of a handler's lease keeps; dropped when the handler needs no scaler."""

    holding: Holding
    window: TrafficWindow | None = None
    """The version's window while in mode events (the service's tail)."""


class ScalerReplay(TimedReplay):
    service = "scaler"

    def __init__(self, options: ScalerOptions | None = None) -> None:
        super().__init__()
        self._options = options or ScalerOptions()
        self._handlers: dict[Key, GatiHandler] = {}
        self._deployments: dict[Key, _Deployment] = {}
        """By (namespace, Deployment name)."""
        self._replicas: dict[Key, int] = {}
        """Replicas of each Deployment as the replay's decisions leave them."""
        self._held: dict[Key, _Held] = {}
        self._samples: dict[tuple[str, str, str], deque[tuple[datetime, TrafficSample]]] = {}
        self._next_tick: datetime | None = None

    @property
    def filters(self) -> tuple[str, ...]:
        return (
            object_filter(CR_ROOT, GATI_HANDLER.kind),
            object_filter(OWNED_ROOT, DEPLOYMENT.kind),
        )

    def _change(self, event: ChangeEvent, now: datetime) -> list[Decision]:
        key = (event.namespace, event.name)
        if event.kind == DEPLOYMENT.kind:
            self._deployment(key, event)
            return [d for k in list(self._handlers) for d in self._act(k, now)]
        if event.kind != GATI_HANDLER.kind:
            return []
        if event.type is ChangeType.DELETED:
            self._handlers.pop(key, None)
            self._held.pop(key, None)
            return []
        try:
            self._handlers[key] = GatiHandler.from_wire(event.obj)
        except ValueError:
            return []  # the reconciler reports a bad spec on the object; so the scaler
        return self._act(key, now)

    def _until(self, until: datetime) -> list[Decision]:
        """The service's tick: every held handler re-decided every `tick_seconds`."""
        step = timedelta(seconds=self._options.tick_seconds)
        if self._next_tick is None:
            self._next_tick = until + step
            return []
        decided: list[Decision] = []
        while self._next_tick <= until:
            for key in list(self._handlers):
                decided += self._act(key, self._next_tick)
            self._next_tick += step
        return decided

    def _deployment(self, key: Key, event: ChangeEvent) -> None:
        if event.type is ChangeType.DELETED:
            self._deployments.pop(key, None)
            self._replicas.pop(key, None)
            return
        metadata: Mapping[str, Any] = event.obj.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        self._deployments[key] = _Deployment(
            name=event.name,
            labels=dict(metadata.get("labels") or {}),
            controllers={str(o.get("uid")) for o in owners if o.get("controller")},
        )
        # The replay's own writes stand from here on; a first sight says where they start.
        self._replicas.setdefault(key, int((event.obj.get("spec") or {}).get("replicas") or 0))

    def _sample(self, sample: TrafficSample, now: datetime) -> list[Decision]:
        kept = self._samples.setdefault((sample.namespace, sample.handler, sample.version), deque())
        kept.append((now, sample))
        while kept and kept[0][0] < now - SAMPLES_KEPT:
            kept.popleft()
        decided: list[Decision] = []
        for key, held in list(self._held.items()):
            window = held.window
            if window is not None and (window.namespace, window.handler, window.version) == (
                sample.namespace,
                sample.handler,
                sample.version,
            ):
                _fold(window, sample, now)
                decided += self._act(key, now)
        return decided

    def _owned(self, handler: GatiHandler) -> _Deployment | None:
        namespace = handler.metadata.namespace or ""
        wanted = selector_labels(GATI_HANDLER, handler.metadata.name).items()
        for (where, _), deployment in self._deployments.items():
            if (
                where == namespace
                and wanted <= deployment.labels.items()
                and handler.metadata.uid in deployment.controllers
            ):
                return deployment
        return None

    def _act(self, key: Key, now: datetime) -> list[Decision]:
        """`Scaler._settle` and `_act`, the lease always granted: a holder takes the handler
        over from what its status recorded last, and lets it go when it needs no scaler."""
        handler = self._handlers[key]
        held = self._held.get(key)
        if held is None:
            if not scaled(handler):
                return []
            status = handler.status
            held = _Held(seed(status.last_scaling if status is not None else None))
            self._held[key] = held
        plan = plan_mode(handler, held.holding)
        decided: list[Decision] = []
        if plan.mode is not ScalingMode.EVENTS:
            held.window = None
        applied = held.holding.hpa_name
        if plan.clear_hpa and applied is not None:
            decided.append(self._report(key, hpa_deleted(handler, applied), now))
        held.holding = plan.holding
        if plan.mode is ScalingMode.HPA:
            decided += self._apply_hpa(key, handler, held, now)
        elif plan.mode is ScalingMode.EVENTS:
            decided += self._decide(key, handler, held, now)
        else:
            del self._held[key]
        return decided

    def _apply_hpa(
        self, key: Key, handler: GatiHandler, held: _Held, now: datetime
    ) -> list[Decision]:
        if not hpa_due(handler, held.holding):
            return []
        deployment = self._owned(handler)
        if deployment is None:
            return []
        plan = plan_hpa(handler, deployment.name, held.holding)
        held.holding = plan.holding
        return [self._report(key, plan.report, now)]

    def _decide(self, key: Key, handler: GatiHandler, held: _Held, now: datetime) -> list[Decision]:
        deployment = self._owned(handler)
        if deployment is None:
            return []
        window = self._window(key, handler, held, now)
        where = (key[0], deployment.name)
        try:
            plan = plan_scale(
                handler.spec.scaling, self._replicas.get(where, 0), window, now, held.holding
            )
        except ValueError as error:
            return [self._decided(_target(key), "failed", now, str(error))]
        held.holding = plan.holding
        decision = plan.decision
        if plan.write:
            self._replicas[where] = decision.desired_replicas
        if plan.report is None:
            return []
        change = (
            f"{decision.current_replicas} -> {decision.desired_replicas} replicas, "
            f"{decision.reason.value}: {decision.message}"
        )
        return [self._report(key, plan.report, now, change)]

    def _window(self, key: Key, handler: GatiHandler, held: _Held, now: datetime) -> TrafficWindow:
        """The handler version's window, made as the service's tail makes it: seeded with the
        samples of the last `replay_seconds`."""
        namespace, spec = key[0], handler.spec
        window = held.window
        if window is not None and (window.handler, window.version) == (
            spec.handler_path,
            spec.version,
        ):
            return window
        window = TrafficWindow(
            namespace, spec.handler_path, spec.version, self._options.window_seconds
        )
        since = now - timedelta(seconds=replay_seconds(spec.scaling, self._options.window_seconds))
        for received_at, sample in self._samples.get(
            (namespace, spec.handler_path, spec.version), ()
        ):
            if received_at >= since:
                _fold(window, sample, received_at)
        held.window = window
        return window

    def _report(self, key: Key, report: OutcomeReport, now: datetime, change: str = "") -> Decision:
        """The outcome the service would publish; its `details` as the service's."""
        change = change or f"{report.result.value} {report.reason}: {report.message}"
        return self._decided(_target(key), report.action, now, change, details=report.details)


def _target(key: Key) -> str:
    return f"{GATI_HANDLER.kind} {key[0]}/{key[1]}"


def _fold(window: TrafficWindow, sample: TrafficSample, received_at: datetime) -> None:
    """A sample the service's window refuses (a router's clock) is skipped, as the tail does."""
    with contextlib.suppress(ValueError):
        window.add(sample, received_at)
