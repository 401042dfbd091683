"""Environment of a handler or module: a plain string map, with Secret and ConfigMap references.

`env: {LOG_LEVEL: debug}` stays the short form users write; a value may instead be
`{valueFrom: {secretKeyRef: {name, key}}}` so secrets reach the pod through Kubernetes and never
travel in the spec (and so never on the bus). A CRD schema cannot say "string or object", so the
values are schemaless there and these models do the checking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import (
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from gati_contracts.fieldtypes import DNSSubdomain
from gati_contracts.wire import WireModel


class KeySelector(WireModel):
    """One key of a Secret or ConfigMap in the object's namespace."""

    name: DNSSubdomain
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    optional: bool | None = None


class EnvValueSource(WireModel):
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise PydanticCustomError(
                "env_source",
                "set exactly one of secretKeyRef or configMapKeyRef, "
                "such as {secretKeyRef: {name: db, key: password}}",
            )
        return self


_ENV_VALUE_HINT = (
    "must be a string, or an object with exactly one of value or valueFrom, "
    "such as {valueFrom: {secretKeyRef: {name: db, key: password}}}"
)


class EnvValue(WireModel):
    value: str | None = None
    value_from: EnvValueSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"value": data}
        if not isinstance(data, Mapping | EnvValue):
            raise PydanticCustomError("env_value", _ENV_VALUE_HINT)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.value is None) == (self.value_from is None):
            raise PydanticCustomError("env_value", _ENV_VALUE_HINT)
        return self

    @model_serializer(mode="wrap")
    def _short_form(self, handler: SerializerFunctionWrapHandler) -> Any:
        return self.value if self.value_from is None else handler(self)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "description": "A string, or {valueFrom: {secretKeyRef|configMapKeyRef: {name, key}}}",
            "x-kubernetes-preserve-unknown-fields": True,
        }


def container_env(env: Mapping[str, EnvValue]) -> list[dict[str, Any]]:
    """The `env` list of a Kubernetes container, in the order the user wrote the map."""
    result: list[dict[str, Any]] = []
    for name, entry in env.items():
        if entry.value_from is None:
            result.append({"name": name, "value": entry.value})
        else:
            result.append({"name": name, "valueFrom": entry.value_from.to_wire()})
    return result
