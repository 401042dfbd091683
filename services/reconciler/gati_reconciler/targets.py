"""Where rendered objects go: the cluster (`kubernetes`), git (`gitops`) or a log (`dry-run`).

The reconciler decides *what* the objects are and reads status from the cluster; a target only
realizes them. Three verbs cover every target: apply the render, prune owned objects the render
no longer holds, and report what of a deleted owner is still around. `GATI_RECONCILER_TARGET`
(or `--target`) picks one.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

import structlog
import yaml

from gati_contracts.kinds import KindInfo
from gati_contracts.labels import selector_labels, selector_string
from gati_reconciler.diff import object_changes
from gati_reconciler.manifests import KINDS_OWNED_BY
from gati_reconciler.status import DEPLOYMENT_READING
from gati_runtime.kube_api import Kube, KubeError, collection_path

log = structlog.get_logger(__name__)

TARGET_ENV: Final = "GATI_RECONCILER_TARGET"
_OWNED_INFO: Final = {info.kind: info for infos in KINDS_OWNED_BY.values() for info in infos}


class TargetName(StrEnum):
    KUBERNETES = "kubernetes"
    GITOPS = "gitops"
    DRY_RUN = "dry-run"


class PermanentError(Exception):
    """Retrying cannot help; `reason` is CamelCase and the message names the field to fix."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Owner:
    """The handler or module whose objects a call is about."""

    kind: KindInfo
    namespace: str
    name: str

    @property
    def path(self) -> str:
        base = collection_path(self.kind.api_version, self.kind.plural, self.namespace)
        return f"{base}/{self.name}"

    @property
    def selector(self) -> str:
        return selector_string(selector_labels(self.kind, self.name))


def object_path(obj: Mapping[str, Any]) -> str:
    """The URL of a rendered (or listed) object of a kind the reconciler owns."""
    info = _OWNED_INFO[obj["kind"]]
    metadata = obj["metadata"]
    collection = collection_path(info.api_version, info.plural, metadata["namespace"])
    return f"{collection}/{metadata['name']}"


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(reference.get("uid") == uid for reference in references)


class Target(Protocol):
    writes: bool
    """False for a target that only reports: the reconciler then writes no status or Events."""

    async def apply(
        self, objects: Sequence[dict[str, Any]], *, cause: str
    ) -> dict[str, Any] | None:
        """Realize `objects`; the Deployment as the cluster now has it, if this target knows
        (at least what `status.read_deployment` reads of it)."""
        ...

    async def prune(
        self, owner: Owner, uid: str, keep: set[tuple[str, str]], *, cause: str
    ) -> None:
        """Remove objects of `owner` (incarnation `uid`) whose (kind, name) is not in `keep`."""
        ...

    async def leftovers(self, owner: Owner, uid: str, *, cause: str) -> list[str]:
        """After `owner` was deleted: what of it remains (empty once it is all gone)."""
        ...


class KubernetesTarget:
    """Server-side apply into the cluster; deletions are left to ownerReference GC."""

    writes = True

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    async def apply(
        self, objects: Sequence[dict[str, Any]], *, cause: str
    ) -> dict[str, Any] | None:
        deployment: dict[str, Any] | None = None
        for obj in objects:
            # Only the Deployment's answer is read, and of it only what `read_deployment` reads;
            # the others are not decoded.
            wanted = obj["kind"] == "Deployment"
            try:
                applied = await self._kube.apply(
                    object_path(obj), obj, answer=DEPLOYMENT_READING if wanted else False
                )
            except KubeError as error:
                if error.code in (400, 422):
                    name = f"{obj['kind']} {obj['metadata']['name']}"
                    raise PermanentError("ApiRejected", f"{name}: {error.message}") from error
                raise
            if wanted:
                deployment = applied.as_object()
        return deployment

    async def _owned(
        self, owner: Owner, uid: str, skip: frozenset[str] = frozenset()
    ) -> list[tuple[str, dict[str, Any]]]:
        """Objects of `owner` of every kind it may own but those in `skip`."""
        found = []
        for info in KINDS_OWNED_BY[owner.kind.kind]:
            if info.kind in skip:
                continue
            collection = collection_path(info.api_version, info.plural, owner.namespace)
            for item in await self._kube.list(collection, owner.selector):
                if _owned_by(item, uid):
                    found.append((info.kind, item))
        return found

    async def prune(
        self, owner: Owner, uid: str, keep: set[tuple[str, str]], *, cause: str
    ) -> None:
        """Lists only the kinds the render dropped: a kind it holds is named by
        `gati_contracts.ownership.owned_name` from the owner's name alone, so no other object
        of that kind can be the owner's, and listing it would cost a scan of every object of the
        kind in the namespace for nothing."""
        kept_kinds = frozenset(kind for kind, _ in keep)
        for kind, item in await self._owned(owner, uid, skip=kept_kinds):
            metadata = item["metadata"]
            if (kind, metadata["name"]) not in keep:
                await self._kube.delete(object_path(item | {"kind": kind}), uid=metadata["uid"])

    async def leftovers(self, owner: Owner, uid: str, *, cause: str) -> list[str]:
        return [
            f"{kind} {item['metadata']['name']}" for kind, item in await self._owned(owner, uid)
        ]


class DryRunTarget:
    """Writes nothing: logs what each apply would change, as the server computes it (`dryRun=All`
    shows removals too, which a client-side comparison cannot know)."""

    writes = False

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    async def apply(
        self, objects: Sequence[dict[str, Any]], *, cause: str
    ) -> dict[str, Any] | None:
        for obj in objects:
            path = object_path(obj)
            live = await self._kube.get(path)
            answer = await self._kube.apply(path, obj, dry_run=True)
            changes = object_changes(live, answer)
            if changes:
                log.info(
                    "dry_run_diff",
                    cause=cause,
                    object=path,
                    changes=[str(change) for change in changes],
                )
        return None

    async def prune(
        self, owner: Owner, uid: str, keep: set[tuple[str, str]], *, cause: str
    ) -> None:
        log.info("dry_run_prune", cause=cause, owner=owner.name, keep=sorted(map(str, keep)))

    async def leftovers(self, owner: Owner, uid: str, *, cause: str) -> list[str]:
        return []


class GitOpsTarget:
    """Manifests as files `<namespace>/<kind>/<name>.yaml` in a git working tree, one commit per
    change naming its cause, for Argo CD or Flux to sync. Git runs in a thread, one at a time:
    the index is a single file that concurrent commits would fight over."""

    writes = True

    def __init__(self, tree: Path) -> None:
        self._tree = tree
        self._lock = asyncio.Lock()
        if not (tree / ".git").exists():
            raise ValueError(
                f"{TARGET_ENV}=gitops: {tree} is not a git working tree; "
                "set GATI_GITOPS_TREE to a clone"
            )

    def file(self, obj: Mapping[str, Any]) -> Path:
        namespace, name = str(obj["metadata"]["namespace"]), str(obj["metadata"]["name"])
        return self._tree / namespace / str(obj["kind"]).lower() / f"{name}.yaml"

    async def apply(
        self, objects: Sequence[dict[str, Any]], *, cause: str
    ) -> dict[str, Any] | None:
        async with self._lock:
            await asyncio.to_thread(self._write, objects, cause)
        return None

    def _write(self, objects: Sequence[dict[str, Any]], cause: str) -> None:
        paths = []
        for obj in objects:
            path = self.file(obj)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(obj, sort_keys=True))
            paths.append(path)
        self._commit(paths, cause)

    def _owned_files(self, owner: Owner) -> list[Path]:
        labels = selector_labels(owner.kind, owner.name)
        found = []
        for path in sorted((self._tree / owner.namespace).glob("*/*.yaml")):
            obj = yaml.safe_load(path.read_text()) or {}
            obj_labels = (obj.get("metadata") or {}).get("labels") or {}
            if all(obj_labels.get(key) == value for key, value in labels.items()):
                found.append(path)
        return found

    async def prune(
        self, owner: Owner, uid: str, keep: set[tuple[str, str]], *, cause: str
    ) -> None:
        kept = {self._tree / owner.namespace / kind.lower() / f"{name}.yaml" for kind, name in keep}
        async with self._lock:
            await asyncio.to_thread(self._remove, owner, kept, cause)

    async def leftovers(self, owner: Owner, uid: str, *, cause: str) -> list[str]:
        async with self._lock:
            await asyncio.to_thread(self._remove, owner, set(), cause)
        return []

    def _remove(self, owner: Owner, kept: set[Path], cause: str) -> None:
        doomed = [path for path in self._owned_files(owner) if path not in kept]
        for path in doomed:
            path.unlink()
        self._commit(doomed, cause)

    def _commit(self, paths: Sequence[Path], cause: str) -> None:
        if not paths:
            return
        relative = [str(path.relative_to(self._tree)) for path in paths]
        self._git("add", "--all", "--", *relative)
        if self._git("status", "--porcelain", "--", *relative).strip():
            self._git("commit", "--quiet", "-m", cause, "--", *relative)

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(self._tree), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {args[0]} in {self._tree}: {result.stderr.strip()}")
        return result.stdout
