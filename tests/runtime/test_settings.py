"""Settings come from `GATI_*` variables and flags; a bad value names the variable to fix."""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from structlog.testing import capture_logs

from fixtures.service_processes import running_service
from gati_kubesim.faults import FaultRule
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.embedded_nats import LOOPBACK, free_port
from gati_runtime.kube_config import KubeConfigError, kube_configuration
from gati_runtime.settings import (
    Settings,
    SettingsError,
    UnknownVariable,
    add_settings_arguments,
    unknown_variables,
)

WARNING_WAIT = 60.0
"""Seconds a started service may take to log its settings warning (import time under load)."""


def test_defaults_need_no_environment() -> None:
    settings = Settings.load(environ={})
    assert settings.nats_servers == ["nats://127.0.0.1:4222"]
    assert settings.stream == "GATI"
    assert settings.duplicate_window == timedelta(minutes=2)
    assert settings.namespaces == ()


def test_reads_every_kind_of_value_from_the_environment(tmp_path: Path) -> None:
    creds = tmp_path / "user.creds"
    creds.write_text("not checked here, only that it exists")
    settings = Settings.load(
        environ={
            "GATI_NATS_URL": "nats://a:4222, nats://b:4222",
            "GATI_NATS_CREDS": str(creds),
            "GATI_STREAM_MAX_AGE": "24h",
            "GATI_STREAM_MAX_BYTES": "1Gi",
            "GATI_STREAM_REPLICAS": "3",
            "GATI_DUPLICATE_WINDOW": "5m",
            "GATI_NAMESPACES": "team-a, team-b",
            "GATI_HTTP_PORT": "9090",
            "GATI_LOG_FORMAT": "json",
            "GATI_INSTANCE_ID": "reconciler-7d9f",
            "UNRELATED": "ignored",
        }
    )
    assert settings.nats_servers == ["nats://a:4222", "nats://b:4222"]
    assert settings.nats_creds == creds
    assert settings.stream_limits.max_age == timedelta(hours=24)
    assert settings.stream_limits.max_bytes == 2**30
    assert settings.stream_limits.replicas == 3
    assert settings.duplicate_window == timedelta(minutes=5)
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.http_port == 9090
    assert settings.log_format == "json"
    assert settings.instance_id == "reconciler-7d9f"


def test_unknown_variables_name_the_setting_probably_meant() -> None:
    environ = {
        "GATI_NATS_ULR": "nats://typo:4222",
        "GATI_LOGFORMAT": "json",
        "GATI_SCALER_TICK_SECOND": "1",
        "GATI_SCALER_TICK_SECONDS": "1",
        "GATI_FAULT_FIGURES": "/tmp/figures.jsonl",
        "GATI_NATS_URL": "nats://right:4222",
        "HOME": "/root",
    }
    assert unknown_variables(environ, also_known=["GATI_SCALER_TICK_SECONDS"]) == (
        UnknownVariable("GATI_FAULT_FIGURES", None),
        UnknownVariable("GATI_LOGFORMAT", "GATI_LOG_FORMAT"),
        UnknownVariable("GATI_NATS_ULR", "GATI_NATS_URL"),
        UnknownVariable("GATI_SCALER_TICK_SECOND", "GATI_SCALER_TICK_SECONDS"),
    )


def test_an_unknown_variable_is_warned_about_never_refused() -> None:
    settings = Settings.load(
        environ={"GATI_NATS_ULR": "nats://typo:4222", "GATI_WATCH_CAPACITY": "64"},
        also_known=["GATI_WATCH_CAPACITY"],
    )
    assert settings.nats_servers == ["nats://127.0.0.1:4222"]  # the typo sets nothing
    with capture_logs() as logs:
        settings.log_unknown_variables()
    assert logs == [
        {
            "event": "unknown_setting",
            "log_level": "warning",
            "variable": "GATI_NATS_ULR",
            "closest": "GATI_NATS_URL",
        }
    ]
    assert Settings.load(environ={"GATI_NATS_URL": "nats://a:4222"}).unknown_variables == ()


def test_a_service_logs_unknown_variables_but_not_those_another_service_reads(
    tmp_path: Path,
) -> None:
    """One ConfigMap feeds every service, so the watcher's own variable is known to the
    scaler too; the typo is reported in the service's JSON log, and the service starts."""
    settings = {
        "GATI_NATS_URL": f"nats://{LOOPBACK}:{free_port()}",  # nothing listens: never ready
        "GATI_SHUTDOWN_GRACE": "1s",
        "GATI_WATCH_CAPACITY": "64",
        "GATI_SCALER_TICK_SECONDS": "1",
        "GATI_STREAM_REPLICA": "3",
    }
    with running_service("scaler", tmp_path, settings) as scaler:
        deadline = time.monotonic() + WARNING_WAIT
        while not (warnings := _warnings(scaler.log())) and time.monotonic() < deadline:
            time.sleep(0.1)  # the log is a file: nothing to await
        scaler.check_alive()
        assert not scaler.unexpected_exits, scaler.log()
    assert warnings == [("GATI_STREAM_REPLICA", "GATI_STREAM_REPLICAS")], scaler.log()


def _warnings(log: str) -> list[tuple[str, str | None]]:
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [(e["variable"], e["closest"]) for e in entries if e["event"] == "unknown_setting"]


def test_flags_override_the_environment() -> None:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    args = parser.parse_args(["--nats-url", "nats://flag:4222", "--http-port", "0"])
    settings = Settings.load(environ={"GATI_NATS_URL": "nats://env:4222"}, args=args)
    assert settings.nats_url == "nats://flag:4222"
    assert settings.http_port == 0


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GATI_STREAM_MAX_AGE", "a week", "GATI_STREAM_MAX_AGE.*duration such as 30s"),
        ("GATI_STREAM_MAX_BYTES", "lots", "GATI_STREAM_MAX_BYTES.*quantity such as 128Mi"),
        ("GATI_STREAM_MAX_BYTES", "1.5", "whole number of bytes"),
        ("GATI_STREAM_REPLICAS", "7", "GATI_STREAM_REPLICAS.*less than or equal to 5"),
        ("GATI_HTTP_PORT", "http", "GATI_HTTP_PORT.*integer"),
        ("GATI_LOG_FORMAT", "xml", "GATI_LOG_FORMAT.*'json'"),
        ("GATI_DUPLICATE_WINDOW", "30s", "GATI_DUPLICATE_WINDOW must be at least 2m"),
        ("GATI_NATS_CREDS", "/no/such.creds", "GATI_NATS_CREDS.*does not point to a file"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.load(environ={name: value})


def test_tls_certificate_without_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----")
    with pytest.raises(SettingsError, match="must be set together"):
        Settings.load(environ={"GATI_NATS_TLS_CERT": str(cert)})


def test_retention_shorter_than_dedup_window_is_refused() -> None:
    with pytest.raises(SettingsError, match="GATI_STREAM_MAX_AGE must not be shorter"):
        Settings.load(environ={"GATI_STREAM_MAX_AGE": "1m"})


KUBECONFIG_TEXT = """
apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster: {server: "http://127.0.0.1:18080"}
- name: other
  cluster: {server: "http://127.0.0.1:18081"}
users:
- name: dev
  user: {token: "t0ken"}
contexts:
- name: sim
  context: {cluster: sim, user: dev}
- name: other
  context: {cluster: other, user: dev}
current-context: sim
"""


def test_kubeconfig_from_the_environment_and_context(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG_TEXT)
    env = {"KUBECONFIG": str(path), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert kube_configuration(environ=env).host == "http://127.0.0.1:18080"
    assert kube_configuration("other", environ=env).host == "http://127.0.0.1:18081"


def test_kubeconfig_defaults_to_home(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(KUBECONFIG_TEXT)
    assert kube_configuration(environ={"HOME": str(tmp_path)}).host == "http://127.0.0.1:18080"


def test_no_kubeconfig_anywhere_says_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="set KUBECONFIG"):
        kube_configuration(environ={"HOME": str(tmp_path)})


def test_transient_api_answers_are_retried_only_for_verbs_safe_to_repeat(
    tmp_path: Path, kubesim_fresh: ThreadedKubeSim
) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG_TEXT.replace("http://127.0.0.1:18080", kubesim_fresh.url))
    with client.ApiClient(kube_configuration(environ={"KUBECONFIG": str(path)})) as api:
        core = client.CoreV1Api(api)
        kubesim_fresh.call(kubesim_fresh.sim.inject_fault, FaultRule(verb="get", code=503, times=2))
        read = core.read_namespace("default").metadata
        assert read is not None
        assert read.name == "default"
        kubesim_fresh.call(
            kubesim_fresh.sim.inject_fault, FaultRule(verb="create", code=500, times=1)
        )
        with pytest.raises(ApiException) as refused:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="x")))
        assert refused.value.status == 500
        made = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="x")))
        assert made.metadata is not None
        assert made.metadata.name == "x"
