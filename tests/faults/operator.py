"""The operator as a cluster runs it, for fault tests: kubesim and every service in its own OS
process, so a SIGKILL, a lost NATS node or an API outage hits exactly what it would in
production, and "the service never exited" is a fact about a real process.

Each service gets a fixed health port, so its `/readyz` stays reachable at the same address
across restarts, and a JSON log file that survives the process for the post-mortem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kubernetes import client

from fixtures.kubesim_server import api_client, install_gati_crds
from fixtures.service_processes import ServiceGroup
from gati_cli.devstack import built_services
from gati_kubesim.process import KubeSimProcess
from gati_runtime.embedded_nats import EmbeddedNats, free_port


def operator_group(
    workdir: Path,
    *,
    nats_url: str,
    kubeconfig: Path,
    env: Mapping[str, str] | None = None,
) -> ServiceGroup:
    """Every built service as a process against `nats_url` and the kubeconfig's cluster."""
    return ServiceGroup(
        workdir / "logs",
        {
            name: {
                "GATI_NATS_URL": nats_url,
                "KUBECONFIG": str(kubeconfig),
                "GATI_HTTP_PORT": str(free_port()),
                **(env or {}),
            }
            for name in built_services()[0]
        },
    )


@dataclass(frozen=True)
class Cluster:
    """kubesim in its own process, with the gati.dev CRDs installed."""

    url: str
    kubeconfig: Path


@contextmanager
def kubesim_cluster(workdir: Path, *, ready_after: float = 0.05) -> Iterator[Cluster]:
    kubeconfig = workdir / "kubeconfig"
    with KubeSimProcess(
        "--kubeconfig-out", str(kubeconfig), "--ready-after", str(ready_after)
    ) as process:
        with api_client(process.url) as api:
            install_gati_crds(api)
        yield Cluster(process.url, kubeconfig)


class Stack(NamedTuple):
    server: EmbeddedNats
    cluster: Cluster
    api: client.ApiClient
    operator: ServiceGroup


@contextmanager
def single_node_stack(workdir: Path, name: str) -> Iterator[Stack]:
    """One NATS server, kubesim and every service, all ready: where the faults that do not
    need a JetStream cluster land."""
    with (
        EmbeddedNats(workdir / "nats", name=name) as server,
        kubesim_cluster(workdir) as cluster,
        api_client(cluster.url) as api,
        operator_group(workdir, nats_url=server.url, kubeconfig=cluster.kubeconfig) as operator,
    ):
        operator.await_readiness(True, timeout=60)
        yield Stack(server, cluster, api, operator)
