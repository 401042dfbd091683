"""`gati-operator kubesim` as a process: kubeconfig for kubectl, token, state kept across runs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from fixtures.kubesim_server import api_client


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gati_cli", "kubesim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("kubesim serving at "):
            return proc, line.split()[3].rstrip(";")
    raise AssertionError(f"kubesim did not start (exit {proc.wait(5)})")


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(15)


def test_serves_writes_a_kubeconfig_and_keeps_state(tmp_path: Path) -> None:
    kubeconfig, state = tmp_path / "kubeconfig", tmp_path / "state"
    proc, url = _start("--kubeconfig-out", str(kubeconfig), "--state", str(state))
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        if shutil.which("kubectl"):
            out = subprocess.run(
                [
                    "kubectl",
                    f"--kubeconfig={kubeconfig}",
                    f"--cache-dir={tmp_path / 'c'}",
                    "get",
                    "ns",
                    "default",
                    "-o",
                    "name",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            assert out.strip() == "namespace/default"
        with api_client(url) as api:
            client.CoreV1Api(api).create_namespaced_config_map(
                "default", {"metadata": {"name": "kept"}, "data": {"k": "v"}}
            )
    finally:
        assert _stop(proc) == 0
    proc, url = _start("--state", str(state))
    try:
        with api_client(url) as api:
            kept = client.CoreV1Api(api).read_namespaced_config_map("kept", "default")
            assert kept.data == {"k": "v"}
            again = client.CoreV1Api(api).create_namespaced_config_map(
                "default", {"metadata": {"name": "new"}}
            )
            assert int(again.metadata.resource_version) > int(kept.metadata.resource_version)
    finally:
        assert _stop(proc) == 0


def test_a_token_makes_it_serve_https_that_kubectl_accepts(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc, url = _start("--kubeconfig-out", str(kubeconfig), "--token", "t0k")
    try:
        assert url.startswith("https://")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["users"][0]["user"] == {"token": "t0k"}
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
        if shutil.which("kubectl"):
            out = subprocess.run(
                [
                    "kubectl",
                    f"--kubeconfig={kubeconfig}",
                    f"--cache-dir={tmp_path / 'c'}",
                    "get",
                    "ns",
                    "default",
                    "-o",
                    "name",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            assert out.strip() == "namespace/default"
            refused = subprocess.run(
                [
                    "kubectl",
                    f"--kubeconfig={kubeconfig}",
                    f"--cache-dir={tmp_path / 'c'}",
                    "--token=wrong",
                    "get",
                    "ns",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert refused.returncode != 0
            assert "Unauthorized" in refused.stderr or "credentials" in refused.stderr
    finally:
        assert _stop(proc) == 0


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
