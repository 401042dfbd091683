"""Operator services run as `gati-operator run <service>` processes, each with its own identity.

Each process gets a kubeconfig holding only its service account's bearer token, so kubesim
(`KubeSim(users=...)`) can tell whose request it served, as the real API server tells service
accounts apart before RBAC judges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from fixtures.service_processes import ServiceGroup
from gati_kubesim.server import KubeSim

NAMESPACE = "gati-system"


def service_account(service: str) -> str:
    """The user name a pod of `service` authenticates as (its Deployment's serviceAccountName)."""
    return f"system:serviceaccount:{NAMESPACE}:gati-{service}"


def token(service: str) -> str:
    return f"token-{service}"


def identities(services: Sequence[str]) -> dict[str, str]:
    """The `users` map kubesim authenticates: one bearer token per service account."""
    return {token(s): service_account(s) for s in services}


def running_services(
    sim: KubeSim, services: Sequence[str], nats_url: str, workdir: Path
) -> ServiceGroup:
    """Every service as its own process, each with a kubeconfig holding only its token."""
    settings: dict[str, dict[str, str]] = {}
    for service in services:
        kubeconfig = workdir / f"{service}.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(sim.kubeconfig(user_token=token(service))))
        settings[service] = {"KUBECONFIG": str(kubeconfig), "GATI_NATS_URL": nats_url}
    return ServiceGroup(workdir, settings)
