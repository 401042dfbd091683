"""`gati-operator kubesim` as a process: kubeconfig for kubectl, token, state kept across runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from fixtures.kubesim_server import api_client
from gati_kubesim.process import KubeSimProcess


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={kubeconfig.parent / 'c'}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serves_writes_a_kubeconfig_and_keeps_state(tmp_path: Path) -> None:
    kubeconfig, state = tmp_path / "kubeconfig", tmp_path / "state"
    with KubeSimProcess("--kubeconfig-out", str(kubeconfig), "--state", str(state)) as proc:
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == proc.url
        if shutil.which("kubectl"):
            out = _kubectl(kubeconfig, "get", "ns", "default", "-o", "name")
            assert out.stdout.strip() == "namespace/default", out.stderr
        with api_client(proc.url) as api:
            client.CoreV1Api(api).create_namespaced_config_map(
                "default", {"metadata": {"name": "kept"}, "data": {"k": "v"}}
            )
    with KubeSimProcess("--state", str(state)) as proc, api_client(proc.url) as api:
        core = client.CoreV1Api(api)
        kept = core.read_namespaced_config_map("kept", "default")
        assert kept.data == {"k": "v"}
        again = core.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
        assert int(again.metadata.resource_version) > int(kept.metadata.resource_version)
        # History did not survive the restart, so resuming from before it is 410, not a gap.
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=str(int(kept.metadata.resource_version) - 1),
                timeout_seconds=2,
            ):
                pass
        assert err.value.status == 410


def test_a_token_makes_it_serve_https_that_kubectl_accepts(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with KubeSimProcess("--kubeconfig-out", str(kubeconfig), "--token", "t0k") as proc:
        assert proc.url.startswith("https://")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["users"][0]["user"] == {"token": "t0k"}
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
        if shutil.which("kubectl"):
            out = _kubectl(kubeconfig, "get", "ns", "default", "-o", "name")
            assert out.stdout.strip() == "namespace/default", out.stderr
            refused = _kubectl(kubeconfig, "--token=wrong", "get", "ns")
            assert refused.returncode != 0
            assert "Unauthorized" in refused.stderr or "credentials" in refused.stderr


@pytest.mark.parametrize(("flag", "value"), [("--port", "70000"), ("--ready-after", "-1")])
def test_bad_arguments_are_refused_with_the_reason(flag: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gati_cli", "kubesim", flag, value],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert flag in done.stdout
