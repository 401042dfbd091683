"""`kubectl apply --server-side` for the CLI, without needing kubectl on the machine.

The dev stack installs the CRDs and the samples through the same server-side apply a user's
kubectl would send, so what `make dev` shows is what a cluster would do with those files.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

FIELD_MANAGER = "gati-operator-cli"
# Objects others live in go first, as Helm orders installs: a file's name never decides.
_FIRST = {"Namespace": 0, "CustomResourceDefinition": 1}


def documents(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every non-empty YAML document of the files, directories expanded in name order."""
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if doc:
                    yield doc


def waves(docs: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The samples in the order a person would apply them: everything with the first handler of
    each path, then each later version of a path in its own wave. Applied at once, a path's two
    versions would both be new, the older superseded before it ever served, and the newer would
    take 100 % at once as a first version: the progressive rollout would never show."""
    result: list[list[dict[str, Any]]] = [[]]
    seen: dict[str, int] = {}
    for doc in docs:
        spec = doc.get("spec") or {}
        path = spec.get("handlerPath") if doc.get("kind") == "GatiHandler" else None
        if path is None:
            result[0].append(doc)
            continue
        wave = seen.get(path, -1) + 1
        seen[path] = wave
        while len(result) <= wave:
            result.append([])
        result[wave].append(doc)
    return result


class Applier:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._dynamic = DynamicClient(api_client)

    def apply(self, doc: dict[str, Any], *, wait_for_kind: float = 10.0) -> None:
        """Apply one object; a kind whose CRD was just applied may take a moment to be served."""
        deadline = time.monotonic() + wait_for_kind
        while True:
            try:
                resource = self._dynamic.resources.get(
                    api_version=doc["apiVersion"], kind=doc["kind"]
                )
                break
            except ResourceNotFoundError:
                if time.monotonic() > deadline:
                    raise
                self._dynamic.resources.invalidate_cache()
                time.sleep(0.2)
        metadata = doc.get("metadata", {})
        resource.server_side_apply(
            body=doc,
            name=metadata.get("name"),
            namespace=metadata.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )

    def apply_all(self, docs: Iterable[dict[str, Any]]) -> list[str]:
        applied: list[str] = []
        for doc in sorted(docs, key=lambda d: _FIRST.get(d.get("kind", ""), len(_FIRST))):
            self.apply(doc)
            metadata = doc.get("metadata", {})
            where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
            applied.append(f"{doc['kind']} {where}{metadata.get('name')}")
        return applied
