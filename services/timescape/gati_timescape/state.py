"""The durable life of one `GatiVersion` as the pure timescape functions see it.

Every timescape decision is `(state, spec, observations, now) -> Decision`, so a replica that
restarts, or another replica taking over, resumes from the object alone. Most fields are the
`GatiVersion.status` fields of the same name; `last_check_at`, `paused`, `handled_action` and
`last_sample_at` have no status field yet (the contracts engineer is asked for them), and until
they do the service must not drop them between evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gati_contracts.events import OutcomeReport
from gati_contracts.version import VersionPhase

IN_FLIGHT = frozenset({VersionPhase.PENDING, VersionPhase.PROGRESSING})
"""Phases of a version still on its way to `Active`: the rollout target."""


@dataclass(frozen=True)
class VersionState:
    phase: VersionPhase = VersionPhase.PENDING
    current_step: int = 0
    current_weight: int = 0
    step_started_at: datetime | None = None
    """Start of the step in progress; with the step's pause it is the durable deadline."""
    last_check_at: datetime | None = None
    """The health-check boundary last counted; checks fall due every analysis interval after."""
    failed_checks: int = 0
    paused: bool = False
    """Held by `pause`: the step deadline does not pass, health checks continue."""
    handled_action: str | None = None
    """Nonce of the last operator action taken, so a repeated annotation is taken once."""
    activated_at: datetime | None = None
    draining_since: datetime | None = None
    idle_samples: int = 0
    last_sample_at: datetime | None = None
    """Newest traffic sample counted, so a redelivered sample is not counted twice."""
    traffic_count: int = 0
    last_traffic_at: datetime | None = None
    decommissioned_at: datetime | None = None
    reason: str = ""
    """CamelCase reason of the latest phase change, for the version's condition."""


@dataclass(frozen=True)
class Decision:
    state: VersionState
    outcomes: tuple[OutcomeReport, ...] = ()
    wake_at: datetime | None = None
    """Evaluate again at this time even without new input; None waits for input alone. A time
    already past means "evaluate again now": each evaluation takes at most one step."""
