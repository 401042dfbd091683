"""Which version of a path is the rollout target, and what becomes of the ones it replaces.

Rules, over the versions of one namespace and path, oldest first (creation order):
- The newest in-flight version (`Pending`/`Progressing`) is the target. Any older in-flight
  version is superseded: it goes to `Draining` at weight 0 with reason `Superseded`, so its
  share returns to the stable version at once and the new target starts from its own first step
  against the stable version (as Argo Rollouts aborts an in-flight update for a newer one). It
  was never activated, so "as of" a date never answers it; decommission then removes it once
  idle.
- Only the most recently activated `Active` version stays `Active`; older ones go to `Draining`
  at weight 0 with reason `Replaced`, starting their decommission grace.
The stable version, the one a target shares traffic with, is that newest `Active` one.
`settle` is idempotent: settled versions come back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from gati_contracts.events import OutcomeReport, OutcomeResult
from gati_contracts.version import VersionPhase
from gati_timescape.state import IN_FLIGHT, Decision, VersionState


def target(versions: Sequence[tuple[str, VersionState]]) -> str | None:
    return next((name for name, s in reversed(versions) if s.phase in IN_FLIGHT), None)


def stable(versions: Sequence[tuple[str, VersionState]]) -> str | None:
    """The newest `Active` version: the one a target shares traffic with."""
    active = [
        (s.activated_at is not None, s.activated_at, index, name)
        for index, (name, s) in enumerate(versions)
        if s.phase is VersionPhase.ACTIVE
    ]
    return max(active)[3] if active else None


def settle(versions: Sequence[tuple[str, VersionState]], now: datetime) -> dict[str, Decision]:
    """The versions that must change, by name, with why."""
    keep = {target(versions), stable(versions)}
    changes: dict[str, Decision] = {}
    for name, state in versions:
        if name in keep:
            continue
        if state.phase in IN_FLIGHT:
            changes[name] = _drain(state, now, "Superseded", "a newer version is the target now")
        elif state.phase is VersionPhase.ACTIVE:
            changes[name] = _drain(state, now, "Replaced", "a newer version is active")
    return changes


def _drain(state: VersionState, now: datetime, reason: str, message: str) -> Decision:
    drained = replace(
        state,
        phase=VersionPhase.DRAINING,
        current_weight=0,
        paused=False,
        draining_since=now,
        idle_samples=0,
        reason=reason,
    )
    return Decision(drained, (OutcomeReport("draining", OutcomeResult.SUCCEEDED, reason, message),))
