"""Labels, annotations and the field manager the operator writes: one spelling for every service,
for kubectl users and for the CLI.

The Deployment selector is immutable once created, so `selector_labels` holds only what never
changes for an object (its kind and name); everything else goes in `workload_labels`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from gati_contracts.kinds import GROUP, KindInfo

FIELD_MANAGER: Final = "gati-operator"
"""Server-side apply field manager of every write the services make."""

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
NAME_LABEL: Final = "app.kubernetes.io/name"
VERSION_LABEL: Final = "app.kubernetes.io/version"
KIND_LABEL: Final = f"{GROUP}/kind"
OWNER_LABEL: Final = f"{GROUP}/owner"
"""Name of the GatiHandler or GatiModule a Deployment, Service or pod belongs to."""

ROLLOUT_ACTION_ANNOTATION: Final = f"{GROUP}/rollout-action"
"""Set on a GatiVersion (by `gati-operator rollout …` or kubectl) to steer its rollout."""


class RolloutAction(StrEnum):
    PROMOTE = "promote"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"


def selector_labels(kind: KindInfo, name: str) -> dict[str, str]:
    """The pod selector of the workload of one object: stable for the object's whole life."""
    return {KIND_LABEL: kind.singular, OWNER_LABEL: name}


def workload_labels(kind: KindInfo, name: str, version: str | None = None) -> dict[str, str]:
    """Labels of everything made for one object: selector labels plus the recommended ones."""
    labels = {MANAGED_BY_LABEL: FIELD_MANAGER, NAME_LABEL: name, **selector_labels(kind, name)}
    if version is not None:
        labels[VERSION_LABEL] = version
    return labels


def selector_string(labels: Mapping[str, str]) -> str:
    """`k1=v1,k2=v2`, the string form `status.selector` (scale subresource, HPA) expects."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
