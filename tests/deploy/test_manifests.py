"""Both overlays render with the real kubectl, and every object is valid Kubernetes 1.32.

Rendering is what a user runs (`kubectl apply -k`), so a kustomize mistake, a schema typo or a
setting the services would reject fails here instead of in someone's cluster.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from deploy.rendering import find, needs_kubectl, render
from gati_runtime.settings import Settings

SERVICES = ("watcher", "reconciler", "scaler", "timescape")
OVERLAYS = ("dev", "production")
K8S_VERSION = "1.32"


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_strictly(overlay: str) -> None:
    docs = render(overlay)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@needs_kubectl
@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ("dev", dict.fromkeys(SERVICES, 1)),
        ("production", {"watcher": 2, "reconciler": 3, "scaler": 2, "timescape": 2}),
    ],
)
def test_each_service_runs_as_itself_with_its_replicas(
    overlay: str, expected: dict[str, int]
) -> None:
    docs = render(overlay)
    for service, replicas in expected.items():
        deployment = find(docs, "Deployment", f"gati-{service}")
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] == replicas
        assert pod["serviceAccountName"] == f"gati-{service}"
        assert pod["containers"][0]["args"] == ["run", service]
        assert pod["securityContext"]["runAsNonRoot"] is True
        binding = find(docs, "ClusterRoleBinding", f"gati-{service}")
        assert binding["subjects"][0]["name"] == f"gati-{service}"
        assert binding["roleRef"]["name"] == f"gati-{service}"
        find(docs, "PodDisruptionBudget", f"gati-{service}")


@needs_kubectl
@pytest.mark.parametrize(
    ("overlay", "nodes", "config", "stream_replicas"),
    [
        ("dev", 1, "/etc/nats/nats-single.conf", 1),
        ("production", 3, "/etc/nats/nats.conf", 3),
    ],
)
def test_nats_nodes_match_stream_replicas(
    overlay: str, nodes: int, config: str, stream_replicas: int
) -> None:
    docs = render(overlay)
    nats = find(docs, "StatefulSet", "gati-nats")
    assert nats["spec"]["replicas"] == nodes
    assert nats["spec"]["template"]["spec"]["containers"][0]["args"][-1] == config
    settings = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("gati-settings")
    )
    assert int(settings["data"]["GATI_STREAM_REPLICAS"]) == stream_replicas


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_configmap_is_accepted_by_the_services(overlay: str) -> None:
    """Only `GATI_*` names Settings knows, with values it accepts: a typo would crash every pod."""
    docs = render(overlay)
    data = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("gati-settings")
    )["data"]
    Settings.model_validate(data)
