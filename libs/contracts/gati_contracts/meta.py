"""The object envelope: `apiVersion`, `kind` and the subset of `ObjectMeta` services use.

Only what the operator acts on is typed; anything else the API server adds (managedFields…) is
ignored on read, and services patch objects rather than replace them, so nothing is lost.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from gati_contracts.fieldtypes import DNSLabel, ObjectName, Timestamp
from gati_contracts.kinds import API_VERSION
from gati_contracts.wire import ObservedModel, WireModel


class OwnerReference(ObservedModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(ObservedModel):
    name: ObjectName
    namespace: DNSLabel | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = Field(default=None, ge=0)
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner_references: list[OwnerReference] = Field(default_factory=list)
    finalizers: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_empty_collections(self, handler: SerializerFunctionWrapHandler) -> Any:
        # An empty `finalizers: []` in an apply would claim fields this writer never meant to.
        data = handler(self)
        return {key: value for key, value in data.items() if value not in ({}, [])}


class CustomResource(WireModel):
    """Fields every gati.dev object has, whatever its kind."""

    api_version: str = API_VERSION
    kind: str
    metadata: ObjectMeta
