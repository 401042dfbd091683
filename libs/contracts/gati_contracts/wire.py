"""The base every resource model shares: camelCase on the wire, snake_case in Python.

Specs forbid unknown fields so a typo (`handlerpath`) is reported instead of silently dropped;
status and metadata ignore them, because the API server and newer operator versions add fields
an older reader must tolerate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A model read from and written to Kubernetes JSON."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict Kubernetes expects; unset optional fields are left out, not null."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Self:
        return cls.model_validate(data)


class ObservedModel(WireModel):
    """Written by the API server or by services, so unknown fields are tolerated, not errors."""

    model_config = ConfigDict(extra="ignore")
