"""`GatiHandler`: one version of one HTTP path of a Gati application."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from gati_contracts.fieldtypes import HandlerPath, LabelValue, Weight
from gati_contracts.meta import CustomResource
from gati_contracts.rollout import DEFAULT_ROLLOUT, RolloutSpec
from gati_contracts.scaling import DEFAULT_SCALING, ScalingRecord, ScalingSpec
from gati_contracts.wire import WireModel
from gati_contracts.workload import WorkloadSpec, WorkloadStatus


class TimescapeSpec(WireModel):
    # Frozen, so the default can be built once and shared by every handler that leaves
    # `timescape` out (building it, with its rollout, was a third of validating such a handler).
    model_config = ConfigDict(frozen=True)

    breaking: bool = False
    """The version changes the API incompatibly; routers keep old clients on older versions."""
    routing_weight: Weight | None = None
    """A fixed share of traffic; absent lets the rollout decide."""
    rollout: RolloutSpec = Field(default_factory=lambda: DEFAULT_ROLLOUT)


DEFAULT_TIMESCAPE: Final = TimescapeSpec()
"""Shared by every handler that leaves `timescape` out (frozen, so no parse can change it)."""


class GatiHandlerSpec(WorkloadSpec):
    handler_path: HandlerPath
    version: LabelValue
    timescape: TimescapeSpec = Field(default_factory=lambda: DEFAULT_TIMESCAPE)
    scaling: ScalingSpec = Field(default_factory=lambda: DEFAULT_SCALING)


class GatiHandlerStatus(WorkloadStatus):
    last_scaling: ScalingRecord | None = None
    """The scaler's (mode events) alone: a status writer that rebuilds status must carry it."""


class GatiHandler(CustomResource):
    kind: Literal["GatiHandler"] = "GatiHandler"
    spec: GatiHandlerSpec
    status: GatiHandlerStatus | None = None
