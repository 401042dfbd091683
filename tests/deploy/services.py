"""Operator services run as `gati-operator run <service>` processes, each with its own identity.

Each process gets a kubeconfig holding only its service account's bearer token, so kubesim
(`KubeSim(users=...)`) can tell whose request it served, as the real API server tells service
accounts apart before RBAC judges them. Logs go to a file per service, read when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from gati_kubesim.server import KubeSim

NAMESPACE = "gati-system"
STOP_TIMEOUT = 30.0


def service_account(service: str) -> str:
    """The user name a pod of `service` authenticates as (its Deployment's serviceAccountName)."""
    return f"system:serviceaccount:{NAMESPACE}:gati-{service}"


def token(service: str) -> str:
    return f"token-{service}"


def identities(services: Sequence[str]) -> dict[str, str]:
    """The `users` map kubesim authenticates: one bearer token per service account."""
    return {token(s): service_account(s) for s in services}


@contextlib.contextmanager
def running_services(
    sim: KubeSim, services: Sequence[str], nats_url: str, workdir: Path
) -> Iterator[dict[str, Path]]:
    """Every service as its own process until the block ends (SIGTERM, as the kubelet stops a
    pod); yields each service's log file."""
    processes: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}
    try:
        for service in services:
            kubeconfig = workdir / f"{service}.kubeconfig"
            kubeconfig.write_text(yaml.safe_dump(sim.kubeconfig(user_token=token(service))))
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("GATI_", "KUBERNETES_"))
            }
            env |= {
                "KUBECONFIG": str(kubeconfig),
                "GATI_NATS_URL": nats_url,
                "GATI_HTTP_PORT": "0",
                "GATI_INSTANCE_ID": f"{service}-0",
                "GATI_LOG_FORMAT": "json",
            }
            logs[service] = workdir / f"{service}.log"
            with logs[service].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "gati_cli", "run", service],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield logs
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
