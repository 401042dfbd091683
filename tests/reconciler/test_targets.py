"""The gitops and dry-run targets: the same render lands in a real git repository, commit by
commit, or only in the log; a wrong target setting stops start-up with the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from gati_contracts.events import OutcomeResult
from gati_contracts.handler import GatiHandler
from gati_contracts.objects import parse_object
from gati_reconciler.manifests import render
from gati_reconciler.service import choose_target
from gati_reconciler.targets import DryRunTarget, GitOpsTarget, KubernetesTarget
from gati_runtime.kube_api import Kube
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads, handler, outcomes, running_reconciler


def git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    repo = tmp_path / "gitops"
    repo.mkdir()
    git(repo, "init", "--quiet")
    git(repo, "config", "user.email", "gati@example.com")
    git(repo, "config", "user.name", "gati-operator")
    return repo


async def test_gitops_commits_the_rendered_manifests(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
    tree: Path,
) -> None:
    ns = workloads.namespace
    async with (
        outcomes(gati_connection) as seen,
        running_reconciler(gati_api, gati_connection, target=lambda _: GitOpsTarget(tree)),
    ):
        workloads.create(handler(ns, "users", replicas=2))
        await seen.phase("users", "Progressing")
        live = parse_object(workloads.get("GatiHandler", "users"))
        assert isinstance(live, GatiHandler)
        for obj in render(live):
            path = tree / ns / obj["kind"].lower() / f"{obj['metadata']['name']}.yaml"
            assert yaml.safe_load(path.read_text()) == obj
        assert "users" not in workloads.names("Deployment"), "gitops leaves the cluster alone"
        assert f"GatiHandler {ns}/users" in git(tree, "log", "-1", "--format=%s")
        workloads.patch_spec("GatiHandler", "users", {"replicas": 1})
        await seen.wait_for(
            lambda events: any(e.name == "users" and e.observed_generation == 2 for e in events)
        )
        assert not list((tree / ns).glob("poddisruptionbudget/*.yaml"))
        workloads.delete("GatiHandler", "users")
        await seen.wait_for(
            lambda events: any(
                e.action == "deleted" and e.result is OutcomeResult.SUCCEEDED for e in events
            )
        )
    assert not list((tree / ns).glob("*/*.yaml"))
    assert git(tree, "status", "--porcelain") == ""
    messages = git(tree, "log", "--format=%s").splitlines()
    # created; generation 2 applied, then its PodDisruptionBudget pruned; deleted
    assert len(messages) == 4
    assert all(f"GatiHandler {ns}/users" in message for message in messages)
    assert messages[0].startswith("DELETED")


async def test_dry_run_changes_nothing(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    ns = workloads.namespace
    async with (
        outcomes(gati_connection) as seen,
        running_reconciler(gati_api, gati_connection, target=DryRunTarget),
    ):
        workloads.create(handler(ns, "users"))
        await seen.phase("users", "Progressing")
    assert workloads.names("Deployment") == set()
    assert "status" not in workloads.get("GatiHandler", "users")


def test_target_choice(gati_api: client.ApiClient, tree: Path, tmp_path: Path) -> None:
    kube = Kube(gati_api)
    try:
        assert isinstance(choose_target(kube, {}), KubernetesTarget)
        assert isinstance(choose_target(kube, {"GATI_RECONCILER_TARGET": "dry-run"}), DryRunTarget)
        gitops = {"GATI_RECONCILER_TARGET": "gitops", "GATI_GITOPS_TREE": str(tree)}
        assert isinstance(choose_target(kube, gitops), GitOpsTarget)
        with pytest.raises(ValueError, match="choose one of kubernetes, gitops, dry-run"):
            choose_target(kube, {"GATI_RECONCILER_TARGET": "argo"})
        with pytest.raises(ValueError, match="GATI_GITOPS_TREE"):
            choose_target(kube, {"GATI_RECONCILER_TARGET": "gitops"})
        not_a_tree = {"GATI_RECONCILER_TARGET": "gitops", "GATI_GITOPS_TREE": str(tmp_path)}
        with pytest.raises(ValueError, match="not a git working tree"):
            choose_target(kube, not_a_tree)
    finally:
        kube.close()
