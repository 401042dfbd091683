"""`GatiModule`: a shared module (node, wasm or OCI) that handlers call, sandboxed by default.

Modules run under the Kubernetes "restricted" Pod Security profile; `capabilities` lists the
only exceptions granted, so reviewing a module's privileges means reading one short list.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from gati_contracts.fieldtypes import StringForm
from gati_contracts.meta import CustomResource
from gati_contracts.workload import WorkloadSpec, WorkloadStatus

ModuleName = Annotated[
    str,
    StringForm(
        "module_name",
        r"^[A-Za-z0-9@][-A-Za-z0-9_.@/]*$",
        "must be a module name of letters, digits and -_.@/ such as auth or @acme/payments",
        214,
    ),
]


class ModuleType(StrEnum):
    NODE = "node"
    WASM = "wasm"
    OCI = "oci"


class ModuleCapability(StrEnum):
    NETWORK_EGRESS = "network-egress"
    """Open connections outside the namespace (otherwise a NetworkPolicy denies egress)."""
    NETWORK_INGRESS = "network-ingress"
    """Accept connections from outside the namespace."""
    FILESYSTEM_WRITE = "filesystem-write"
    """Write to the root filesystem (otherwise it is mounted read-only)."""
    NET_BIND_SERVICE = "net-bind-service"
    """Bind ports below 1024: the one Linux capability the restricted profile allows."""


class GatiModuleSpec(WorkloadSpec):
    module_name: ModuleName
    module_type: ModuleType = ModuleType.NODE
    runtime: str | None = Field(default=None, max_length=253)
    """Runtime the module needs, such as node20 or wasmtime; absent means the image decides."""
    capabilities: list[ModuleCapability] = Field(
        default_factory=list, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Explicit grants; everything not listed is denied."""

    @model_validator(mode="after")
    def _capabilities_once(self) -> Self:
        if len(set(self.capabilities)) != len(self.capabilities):
            raise PydanticCustomError(
                "duplicate_capability", "capabilities must list each grant once"
            )
        return self


class GatiModule(CustomResource):
    kind: Literal["GatiModule"] = "GatiModule"
    spec: GatiModuleSpec
    status: WorkloadStatus | None = None
