"""What the watcher lists and watches, and where each object's changes go on the bus.

One target is one kind in one namespace (or in all of them): the unit that has its own list,
its own watch and its own resourceVersion, as Kubernetes scopes them. The gati.dev kinds go to
`gati.cr.>`; Deployments go to `gati.owned.>`, and only those the operator manages, selected by
the `app.kubernetes.io/managed-by` label so the watcher never carries a whole cluster's workloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
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

    @cached_property
    def owned(self) -> bool:
        """Read for every change (`subject`); kinds compare field by field, so once."""
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
        return _subject(self.owned, self.kind.kind, namespace, name)

    def __str__(self) -> str:
        return f"{self.kind.plural}@{self.namespace or '*'}"


SUBJECTS_KEPT = 16_384
"""Objects whose subject is remembered. Every change of an object is published on its subject,
and building it (kind checks, two token encodings) was the watcher's most frequent small cost
after the envelope; a bounded cache keeps the memory of a large cluster's churn fixed."""


@lru_cache(maxsize=SUBJECTS_KEPT)
def _subject(owned: bool, kind: str, namespace: str, name: str) -> str:
    return (owned_subject if owned else cr_subject)(kind, namespace, name)


def watch_targets(namespaces: Sequence[str] = ()) -> list[WatchTarget]:
    """Every kind in every namespace, or in each configured namespace."""
    scopes: Sequence[str | None] = tuple(namespaces) or (None,)
    return [WatchTarget(kind, scope) for kind in GATI_KINDS + OWNED_KINDS for scope in scopes]
