"""What the watcher lists and watches, and where each object's changes go on the bus.

One target is one kind in one namespace (or in all of them): the unit that has its own list,
its own watch and its own resourceVersion, as Kubernetes scopes them. The gati.dev kinds go to
`gati.cr.>`; Deployments go to `gati.owned.>`, and only those the operator manages, selected by
the `app.kubernetes.io/managed-by` label so the watcher never carries a whole cluster's workloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gati_contracts.kinds import GATI_KINDS, OWNED_KINDS, KindInfo
from gati_contracts.labels import FIELD_MANAGER, MANAGED_BY_LABEL
from gati_contracts.subjects import (
    CR_ROOT,
    OWNED_ROOT,
    cr_subject,
    object_filter,
    owned_subject,
)

MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={FIELD_MANAGER}"


@dataclass(frozen=True)
class WatchTarget:
    kind: KindInfo
    namespace: str | None
    """None watches every namespace."""

    @property
    def owned(self) -> bool:
        return self.kind in OWNED_KINDS

    @property
    def label_selector(self) -> str | None:
        return MANAGED_SELECTOR if self.owned else None

    @property
    def root(self) -> str:
        return OWNED_ROOT if self.owned else CR_ROOT

    @property
    def subject_filter(self) -> str:
        """The stream's subjects of exactly the objects this target lists."""
        return object_filter(self.root, self.kind.kind, self.namespace)

    def subject(self, obj: Mapping[str, Any]) -> str:
        metadata = obj.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        build = owned_subject if self.owned else cr_subject
        return build(self.kind.kind, namespace, name)

    def __str__(self) -> str:
        return f"{self.kind.plural}@{self.namespace or '*'}"


def watch_targets(namespaces: Sequence[str] = ()) -> list[WatchTarget]:
    """Every kind in every namespace, or in each configured namespace."""
    scopes: Sequence[str | None] = tuple(namespaces) or (None,)
    return [WatchTarget(kind, scope) for kind in GATI_KINDS + OWNED_KINDS for scope in scopes]
