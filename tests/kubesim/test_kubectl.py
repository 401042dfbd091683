"""The real kubectl against kubesim: the generated CRDs, apply (client and server side),
printer columns, watch and delete, exactly as a developer would use them."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gati_kubesim.server import ThreadedKubeSim

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine"),
]


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.base = [str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}"]

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
        return done.stdout


@pytest.fixture
def kubectl(kubesim_fresh: ThreadedKubeSim, tmp_path: Path) -> Iterator[Kubectl]:
    kubeconfig = kubesim_fresh.sim.write_kubeconfig(tmp_path / "kubeconfig")
    k = Kubectl(kubeconfig, tmp_path / "cache")
    k("apply", "-f", str(REPO / "deploy" / "crds"))
    k("apply", "-f", str(REPO / "examples" / "namespace.yaml"))
    return k


def test_apply_crds_and_get_shows_printer_columns(kubectl: Kubectl) -> None:
    crds = kubectl("get", "crd", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/gatihandlers.gati.dev" in crds
    out = kubectl("apply", "-f", str(REPO / "examples" / "handler-orders-v1.yaml"))
    assert out.strip() == "gatihandler.gati.dev/orders-v1 created"
    again = kubectl("apply", "-f", str(REPO / "examples" / "handler-orders-v1.yaml"))
    assert again.strip() == "gatihandler.gati.dev/orders-v1 unchanged"
    table = kubectl("get", "gh", "-n", "shop").splitlines()
    assert table[0].split() == ["NAME", "PATH", "VERSION", "PHASE", "READY", "AGE"]
    assert table[1].split()[:3] == ["orders-v1", "/orders/:id", "v1"]
    wide = kubectl("get", "gh", "-n", "shop", "-o", "wide").splitlines()
    assert "SCALING" in wide[0].split()


def test_server_side_apply_and_conflicting_managers(kubectl: Kubectl, tmp_path: Path) -> None:
    sample = REPO / "examples" / "handler-orders-v2.yaml"
    out = kubectl("apply", "--server-side", "-f", str(sample))
    assert out.strip() == "gatihandler.gati.dev/orders-v2 serverside-applied"
    changed = tmp_path / "v2.yaml"
    changed.write_text(sample.read_text().replace("replicas: 1", "replicas: 4"))
    conflict = subprocess.run(
        [*kubectl.base, "apply", "--server-side", "--field-manager=other", "-f", str(changed)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    kubectl(
        "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", str(changed)
    )
    assert kubectl("get", "gh", "orders-v2", "-n", "shop", "-o", "jsonpath={.spec.replicas}") == "4"


def test_get_watch_sees_an_update(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(REPO / "examples" / "handler-orders-v1.yaml"))
    proc = subprocess.Popen(
        [*kubectl.base, "get", "gh", "-n", "shop", "-w", "--request-timeout=20s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        first = proc.stdout.readline()
        assert "PHASE" in header
        assert first.startswith("orders-v1")
        kubectl(
            "patch",
            "gh",
            "orders-v1",
            "-n",
            "shop",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"phase":"Running","readyReplicas":2}}',
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(15)
        assert line
        assert line[0].split()[3:5] == ["Running", "2"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_delete(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(REPO / "examples" / "handler-orders-v1.yaml"))
    assert kubectl("delete", "gh", "orders-v1", "-n", "shop").strip() == (
        'gatihandler.gati.dev "orders-v1" deleted'
    )
    missing = subprocess.run(
        [*kubectl.base, "get", "gh", "orders-v1", "-n", "shop"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_builtin_deployment_apply_scale_and_rollout_status(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: main, image: 'nginx:1.27'}]}\n"
    )
    kubectl("apply", "-f", str(manifest))
    kubectl("scale", "deployment/web", "-n", "shop", "--replicas=3")
    out = kubectl("rollout", "status", "deployment/web", "-n", "shop", "--timeout=20s")
    assert "successfully rolled out" in out
    assert (
        kubectl("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.status.readyReplicas}")
        == "3"
    )


def test_create_commands_that_send_protobuf(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "demo")
    kubectl("create", "configmap", "cfg", "-n", "demo", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "sec", "-n", "demo", "--from-literal=pw=hunter2")
    assert kubectl("get", "cm", "cfg", "-n", "demo", "-o", "jsonpath={.data.a}") == "b"
    assert kubectl("get", "secret", "sec", "-n", "demo", "-o", "jsonpath={.data.pw}") == (
        "aHVudGVyMg=="
    )
    refused = subprocess.run(
        [*kubectl.base, "create", "deployment", "web", "--image=nginx", "-n", "demo"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0
    assert "send JSON" in refused.stderr


def test_wide_output_of_a_builtin_kind(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: main, image: 'nginx:1.27'}]}\n"
    )
    kubectl("apply", "-f", str(manifest))
    wide = kubectl("get", "deploy", "web", "-n", "shop", "-o", "wide").splitlines()
    assert wide[0].split() == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert wide[1].split()[5:] == ["main", "nginx:1.27", "app=web"]


def test_the_shared_kubeconfig_fixture_works_for_kubectl(
    kubesim_kubeconfig: Path, kube_namespace: str
) -> None:
    k = Kubectl(kubesim_kubeconfig, kubesim_kubeconfig.parent / "cache")
    assert k("get", "ns", kube_namespace, "-o", "name").strip() == f"namespace/{kube_namespace}"


def test_client_side_validation_is_on_and_reports_an_unknown_field(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    """kubectl validates by default (no --validate=false): it reads /openapi/v3, sees that
    the server takes `fieldValidation` and asks it to refuse unknown fields strictly."""
    sample = REPO / "examples" / "handler-orders-v1.yaml"
    assert kubectl("apply", "-f", str(sample)).strip() == "gatihandler.gati.dev/orders-v1 created"
    bad = tmp_path / "bad.yaml"
    bad.write_text(sample.read_text().replace("spec:\n", "spec:\n  bogusField: 1\n", 1))
    done = subprocess.run(
        [*kubectl.base, "apply", "-f", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogusField"' in done.stderr
    explained = kubectl("explain", "gatihandlers.spec.handlerPath")
    assert "KIND:       GatiHandler" in explained
    assert "must be a URL path" in explained
