"""`GatiVersion`: the record of one handler version's life — rollout, traffic, decommission.

Timescape creates one per `GatiHandler` unless the user did; its status holds every durable
piece of the rollout state machine (step, deadlines, failed checks), so a restarted timescape
resumes from the object and never from memory.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field

from gati_contracts.conditions import Conditions
from gati_contracts.fieldtypes import (
    DNSLabel,
    DNSSubdomain,
    HandlerPath,
    LabelValue,
    Timestamp,
    Weight,
)
from gati_contracts.meta import CustomResource
from gati_contracts.rollout import RolloutSpec
from gati_contracts.wire import ObservedModel, WireModel


class VersionPhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    ACTIVE = "Active"
    DRAINING = "Draining"
    DECOMMISSIONED = "Decommissioned"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class DecommissionAction(StrEnum):
    DELETE = "delete"
    SCALE_TO_ZERO = "scaleToZero"


class HandlerReference(WireModel):
    name: DNSSubdomain
    """Name of the `GatiHandler` in the same namespace."""


class DecommissionSpec(WireModel):
    # Frozen, so the default can be built once and shared by every version that leaves
    # `decommission` out instead of being validated anew on each parse.
    model_config = ConfigDict(frozen=True)

    grace_seconds: int = Field(default=300, ge=0)
    """Time at weight 0 before an idle version is removed."""
    idle_samples: int = Field(default=5, ge=1)
    """Consecutive traffic samples without requests needed to call the version idle."""
    action: DecommissionAction = DecommissionAction.DELETE


DEFAULT_DECOMMISSION: Final = DecommissionSpec()
"""Shared by every version that leaves `decommission` out (frozen, so no parse can change it)."""


class GatiVersionSpec(WireModel):
    version_id: LabelValue
    handler_ref: HandlerReference
    breaking: bool = False
    routing_weight: Weight | None = None
    """A fixed share of traffic; absent lets the rollout decide."""
    transformers: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list
    )
    """Transformers the router applies between this version and its neighbours, in order."""
    deployment_name: DNSLabel | None = None
    service_name: DNSLabel | None = None
    rollout: RolloutSpec | None = None
    """Overrides the handler's rollout for this version only."""
    decommission: DecommissionSpec = Field(default_factory=lambda: DEFAULT_DECOMMISSION)


class GatiVersionStatus(ObservedModel):
    phase: VersionPhase = VersionPhase.PENDING
    handler_path: HandlerPath | None = None
    """Copied from the handler, so `kubectl get gv` can show it."""
    current_weight: Weight = 0
    current_step: int = Field(default=0, ge=0)
    """Index into the rollout steps of the step in progress."""
    step_started_at: Timestamp | None = None
    """When the current step began; with its pause this is the durable step deadline."""
    failed_checks: int = Field(default=0, ge=0)
    """Consecutive failed health checks; reaching `failureThreshold` rolls back."""
    last_check_at: Timestamp | None = None
    """The health-check boundary last counted, so a restarted timescape neither skips a due
    check nor counts the same interval twice."""
    paused: bool = False
    """Held by `rollout pause`; kept here because the annotation that asked for it is taken once
    and the hold must outlive the process that took it."""
    last_rollout_action: str | None = Field(default=None, max_length=253)
    """Nonce of the rollout-action annotation last taken, so a re-sent or redelivered annotation
    acts once."""
    idle_samples: int = Field(default=0, ge=0)
    """Consecutive traffic samples without requests, counted toward decommission."""
    last_sample_at: Timestamp | None = None
    """Time of the newest traffic sample counted, so a redelivered sample never counts twice."""
    draining_since: Timestamp | None = None
    traffic_count: int = Field(default=0, ge=0)
    last_traffic_timestamp: Timestamp | None = None
    activated_at: Timestamp | None = None
    decommissioned_at: Timestamp | None = None
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: Conditions = Field(default_factory=list)


class GatiVersion(CustomResource):
    kind: Literal["GatiVersion"] = "GatiVersion"
    spec: GatiVersionSpec
    status: GatiVersionStatus | None = None
