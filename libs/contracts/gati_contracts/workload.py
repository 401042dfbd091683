"""What handlers and modules share: their pod template fields and the status of their workload.

Handlers and modules both become one Deployment and one Service; keeping the common fields here
lets the reconciler treat them alike.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from gati_contracts.conditions import Conditions
from gati_contracts.env import EnvValue
from gati_contracts.fieldtypes import EnvVarName, Image, Port, Replicas, Timestamp
from gati_contracts.resources import DEFAULT_RESOURCES, ResourceRequirements
from gati_contracts.wire import ObservedModel, WireModel


class WorkloadPhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    RUNNING = "Running"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class WorkloadSpec(WireModel):
    image: Image
    replicas: Replicas = 1
    """Desired replicas; with scaling enabled the scaler owns it (via the scale subresource)."""
    port: Port = 8080
    resources: ResourceRequirements = Field(default_factory=lambda: DEFAULT_RESOURCES)
    env: dict[EnvVarName, EnvValue] = Field(default_factory=dict)


class WorkloadStatus(ObservedModel):
    phase: WorkloadPhase = WorkloadPhase.PENDING
    replicas: Replicas = 0
    ready_replicas: Replicas = 0
    selector: str | None = None
    """Label selector of the pods, in string form, for the scale subresource and HPAs."""
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: Conditions = Field(default_factory=list)
    last_updated: Timestamp | None = None
