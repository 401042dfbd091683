"""The record of one scaling decision: what the scaler saw, what it chose, and why.

The service writes it to the handler's status and publishes it on `gati.status.>` (as the
`details` of an outcome event), so a user can answer "why 7 replicas?" with the numbers, and a
replica that takes over can replay recent decisions to honour the scale-up rate limit.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class ScalingReason(StrEnum):
    """CamelCase, as the reason of a Kubernetes condition or event."""

    NO_FRESH_SAMPLES = "NoFreshSamples"
    """No router reported within the window: replicas stay (only the bounds are enforced)."""
    WITHIN_TOLERANCE = "WithinTolerance"
    STEADY = "Steady"
    """Outside the tolerance, yet the rate rounds up to the current count."""
    SCALED_UP = "ScaledUp"
    SCALE_UP_LIMITED = "ScaleUpLimited"
    """The rate wants more, the scale-up policy allows fewer in this period."""
    SCALED_DOWN = "ScaledDown"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    """A higher recommendation within the stabilization window holds replicas up."""
    AT_MINIMUM = "AtMinimum"
    AT_MAXIMUM = "AtMaximum"
    IDLE_SCALED_TO_ZERO = "IdleScaledToZero"
    IDLE = "Idle"
    """At zero and nothing to serve."""
    ACTIVATED = "Activated"
    """Woken from zero by requests (or requests in flight)."""


class DecisionInputs(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    request_rate: float
    """Requests per second of the handler version over the window."""
    in_flight: int
    samples: int
    """Fresh samples the rate was computed from; 0 means no data."""
    window_seconds: float
    idle_seconds: float
    target_requests_per_replica: float
    min_replicas: int
    max_replicas: int
    scale_to_zero: bool
    ratio: float | None = None
    """Rate per current replica over the target; None at zero replicas or without data."""
    recommendation: int | None = None
    """ceil(rate / target): what the rate alone asks for."""
    stabilized: int | None = None
    """The recommendation after the scale-down stabilization window, when scaling down."""
    scale_up_limit: int | None = None
    """The most replicas the scale-up policy allows now, when scaling up."""


class ScalingDecision(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    decided_at: datetime
    current_replicas: int
    desired_replicas: int
    reason: ScalingReason
    message: str
    inputs: DecisionInputs

    @property
    def changed(self) -> bool:
        return self.desired_replicas != self.current_replicas

    def to_json(self) -> dict[str, Any]:
        """camelCase builtins (RFC 3339 times), ready for a status patch or event `details`."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScalingDecision:
        """Read a record back (from an event's `details`); `msgspec.ValidationError` names the
        offending field when it is not one."""
        return msgspec.convert(data, cls)
