"""What each `GatiModule` capability grants, as one table; everything not granted is denied.

Kept apart from the manifests so the table can be read (and reviewed against
`docs/capabilities.md`) without reading any Kubernetes object, and so a capability added to the
contracts fails a test until someone decides what it grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gati_contracts.module import ModuleCapability


@dataclass(frozen=True)
class Grants:
    """The sandbox exceptions of one module; the default (no capability) denies all of them."""

    open_egress: bool = False
    """Any egress; without it a NetworkPolicy allows DNS lookups only."""
    open_ingress: bool = False
    """Ingress on the module's port from any namespace; without it only from its own."""
    writable_root: bool = False
    """A writable root filesystem; without it only the `/tmp` emptyDir is writable."""
    linux_capabilities: tuple[str, ...] = ()
    """Linux capabilities added back after dropping ALL (restricted allows NET_BIND_SERVICE)."""

    def __or__(self, other: Grants) -> Grants:
        return Grants(
            open_egress=self.open_egress or other.open_egress,
            open_ingress=self.open_ingress or other.open_ingress,
            writable_root=self.writable_root or other.writable_root,
            linux_capabilities=tuple(sorted({*self.linux_capabilities, *other.linux_capabilities})),
        )


GRANTS: Final[dict[ModuleCapability, Grants]] = {
    ModuleCapability.NETWORK_EGRESS: Grants(open_egress=True),
    ModuleCapability.NETWORK_INGRESS: Grants(open_ingress=True),
    ModuleCapability.FILESYSTEM_WRITE: Grants(writable_root=True),
    ModuleCapability.NET_BIND_SERVICE: Grants(linux_capabilities=("NET_BIND_SERVICE",)),
}


def grants_for(capabilities: Iterable[ModuleCapability]) -> Grants:
    result = Grants()
    for capability in capabilities:
        result |= GRANTS[capability]
    return result
