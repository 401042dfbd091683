"""Compute resources of a container, in the shape of Kubernetes `ResourceRequirements`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from gati_contracts.fieldtypes import QUALIFIED_NAME_PATTERN, Quantity, StringForm
from gati_contracts.quantities import parse_quantity
from gati_contracts.wire import WireModel

ResourceName = Annotated[
    str,
    StringForm(
        "resource_name",
        QUALIFIED_NAME_PATTERN,
        "must be a resource name such as cpu, memory, ephemeral-storage or nvidia.com/gpu",
        316,
    ),
]


class ResourceRequirements(WireModel):
    # Frozen, and its maps read-only to the type checker (pydantic still validates and dumps
    # them as dicts), so the default can be built once and shared by every workload that leaves
    # `resources` out instead of being validated anew on each parse.
    model_config = ConfigDict(frozen=True)

    requests: Mapping[ResourceName, Quantity] = Field(default_factory=dict)
    limits: Mapping[ResourceName, Quantity] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        # Kubernetes refuses such a pod only when the Deployment is created; say it up front.
        for name in sorted(self.requests.keys() & self.limits.keys()):
            request, limit = self.requests[name], self.limits[name]
            if parse_quantity(request) > parse_quantity(limit):
                raise PydanticCustomError(
                    "request_above_limit",
                    "requests.{name} ({request}) must not exceed limits.{name} ({limit}); "
                    "lower the request or raise the limit",
                    {"name": name, "request": request, "limit": limit},
                )
        return self


DEFAULT_RESOURCES: Final = ResourceRequirements()
"""Shared by every workload that leaves `resources` out (frozen, so no parse can change it)."""
