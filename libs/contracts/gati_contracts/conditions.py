"""Conditions in the shape of `metav1.Condition`, so `kubectl wait --for=condition=Ready` works."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from gati_contracts.fieldtypes import ConditionReason, ConditionType
from gati_contracts.wire import ObservedModel


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ObservedModel):
    type: ConditionType
    status: ConditionStatus
    last_transition_time: datetime
    reason: ConditionReason
    message: str = Field(default="", max_length=32768)
    observed_generation: int | None = Field(default=None, ge=0)


# Kubernetes merges condition lists by `type`, so two writers updating different conditions
# with server-side apply do not overwrite each other.
Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    ),
]
