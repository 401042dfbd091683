"""Conditions in the shape of `metav1.Condition`, so `kubectl wait --for=condition=Ready` works."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field

from gati_contracts.fieldtypes import ConditionReason, ConditionType, Timestamp
from gati_contracts.wire import ObservedModel

VERSION_DECOMMISSIONED: Final = "VersionDecommissioned"
"""The reason on a handler's conditions while timescape has retired its GatiVersion. Spelled once
here because more than the reconciler (which sets it) reads it: the scaler stands down on it, or
it would scale a retired Deployment back up."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ObservedModel):
    type: ConditionType
    status: ConditionStatus
    last_transition_time: Timestamp
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


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


def set_condition(conditions: Sequence[Condition], update: Condition) -> list[Condition]:
    """Conditions with `update` in place of the one of its type, as `meta.SetStatusCondition`.

    `lastTransitionTime` only moves when the status does: a repeated "still Ready" write must
    not look like a fresh transition to `kubectl wait` or to anyone measuring time in a state.
    """
    current = find_condition(conditions, update.type)
    if current is not None and current.status == update.status:
        update = update.model_copy(update={"last_transition_time": current.last_transition_time})
    if current is None:
        return [*conditions, update]
    return [update if c.type == update.type else c for c in conditions]
