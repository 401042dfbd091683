"""The routing table of one namespace and path, built from its versions' states.

The target's share is its rollout weight; the stable version (see `succession.stable`) takes
the rest, so a rolled-back or superseded target hands its share back by reaching weight 0 and
weights always sum to 100. Versions that may still be asked for by id or date stay in the table
at weight 0 (in flight before their first step, and draining); rolled-back, failed and
decommissioned ones leave it, so the resolver never sends a request to them. A path with no
active version yet has no default and an empty table: nothing serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gati_contracts.events import RoutesEvent, RouteVersion
from gati_contracts.version import VersionPhase
from gati_timescape.state import IN_FLIGHT, VersionState
from gati_timescape.succession import stable

ROUTABLE = IN_FLIGHT | {VersionPhase.ACTIVE, VersionPhase.DRAINING}


@dataclass(frozen=True)
class RoutedVersion:
    """What the table says about a version besides its state, from its spec and Service."""

    version_id: str
    state: VersionState
    service: str
    port: int
    breaking: bool = False
    transformers: tuple[str, ...] = ()


class RoutingError(ValueError):
    """The versions claim more than 100 % between them: two targets in flight at once."""


def build_table(
    namespace: str,
    path: str,
    versions: Sequence[RoutedVersion],
    *,
    observed_at: datetime,
    source: str = "",
) -> RoutesEvent:
    """`versions` oldest first, as `succession` expects them, after `settle`."""
    default = stable([(v.version_id, v.state) for v in versions])
    if default is None:
        return RoutesEvent(namespace=namespace, path=path, observed_at=observed_at, source=source)
    routed = [v for v in versions if v.state.phase in ROUTABLE]
    others = sum(v.state.current_weight for v in routed if v.version_id != default)
    if others > 100:
        raise RoutingError(
            f"versions of {namespace}{path} other than {default} claim {others} %; settle the "
            "path first so a single version is in flight"
        )
    return RoutesEvent(
        namespace=namespace,
        path=path,
        default_version=default,
        versions=[
            RouteVersion(
                version_id=v.version_id,
                weight=100 - others if v.version_id == default else v.state.current_weight,
                activated_at=v.state.activated_at,
                service=v.service,
                port=v.port,
                breaking=v.breaking,
                transformers=list(v.transformers),
            )
            for v in routed
        ],
        observed_at=observed_at,
        source=source,
    )
