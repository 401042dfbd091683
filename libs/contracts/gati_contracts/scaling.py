"""How many replicas a handler runs: fixed, by a HorizontalPodAutoscaler, or by traffic events."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from gati_contracts.fieldtypes import Replicas, Timestamp
from gati_contracts.wire import ObservedModel, WireModel


class ScalingMode(StrEnum):
    NONE = "none"
    """`spec.replicas` is used as written."""
    HPA = "hpa"
    """A HorizontalPodAutoscaler follows CPU/memory targets (80 % CPU when none is set)."""
    EVENTS = "events"
    """The scaler follows request rates from traffic samples, and can scale to zero."""


class ScalingSpec(WireModel):
    # The API server enforces the cross-field rule too, so kubectl apply fails fast. Frozen, so
    # the default can be built once and shared by every handler that leaves `scaling` out.
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || !has(self.maxReplicas)"
                    " || self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                }
            ]
        },
    )

    mode: ScalingMode = ScalingMode.NONE
    min_replicas: Replicas = 1
    max_replicas: int = Field(default=10, ge=1)
    target_cpu_utilization: int | None = Field(
        default=None, ge=1, le=1000, alias="targetCPUUtilization"
    )
    """Percent of the CPU request, as in a HorizontalPodAutoscaler."""
    target_memory_utilization: int | None = Field(default=None, ge=1, le=1000)
    """Percent of the memory request."""
    target_requests_per_replica: float | None = Field(default=None, gt=0)
    """Requests per second one replica should serve; required by mode `events`."""
    scale_to_zero: bool = False
    """Remove every replica after `idleSeconds` without requests (mode `events` only)."""
    idle_seconds: int = Field(default=300, ge=1)
    scale_down_stabilization_seconds: int = Field(default=300, ge=0, le=3600)
    """Highest recommendation over this window wins, as the HPA's downscale stabilization."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise PydanticCustomError(
                "replica_bounds",
                "minReplicas ({min}) must not exceed maxReplicas ({max}); "
                "raise maxReplicas or lower minReplicas",
                {"min": self.min_replicas, "max": self.max_replicas},
            )
        if self.mode is ScalingMode.EVENTS and self.target_requests_per_replica is None:
            raise PydanticCustomError(
                "events_target",
                "mode events needs targetRequestsPerReplica, such as targetRequestsPerReplica: 50",
            )
        if self.scale_to_zero and self.mode is not ScalingMode.EVENTS:
            raise PydanticCustomError(
                "scale_to_zero_mode",
                "scaleToZero needs mode events (an HPA cannot scale to zero); "
                "set mode: events or scaleToZero: false",
            )
        return self


DEFAULT_SCALING: Final = ScalingSpec()
"""Shared by every handler that leaves `scaling` out (frozen, so no parse can change it)."""


class ScalingInputs(ObservedModel):
    """What the scaler saw when it decided: enough to redo the arithmetic by hand."""

    request_rate: float = Field(ge=0)
    """Requests per second of the handler version over the rate window."""
    in_flight: int = Field(ge=0)
    samples: int = Field(ge=0)
    """Fresh samples the rate came from; 0 means no router reported (replicas are kept)."""
    window_seconds: float = Field(gt=0)
    idle_seconds: float = Field(ge=0)
    target_requests_per_replica: float = Field(gt=0)
    min_replicas: int = Field(ge=0)
    max_replicas: int = Field(ge=1)
    scale_to_zero: bool
    ratio: float | None = None
    """Rate per current replica over the target."""
    recommendation: int | None = None
    """ceil(rate / target): what the rate alone asks for."""
    stabilized: int | None = None
    """The recommendation after the scale-down stabilization window."""
    scale_up_limit: int | None = None
    """The most replicas the scale-up policy allowed at that moment."""


class ScalingRecord(ObservedModel):
    """The scaler's latest decision in mode `events`, so `kubectl get -o yaml` answers
    "why this many replicas?" with the numbers (every decision is also on `gati.status.>`)."""

    decided_at: Timestamp
    current_replicas: int = Field(ge=0)
    desired_replicas: int = Field(ge=0)
    reason: str
    """CamelCase, such as ScaledUp, ScaleDownStabilized, IdleScaledToZero, NoFreshSamples."""
    message: str
    inputs: ScalingInputs
