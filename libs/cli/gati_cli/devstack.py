"""The processes of a local operator: `nats-server`, kubesim and every built service.

Each runs as its own OS process, as in a cluster, so `--replicas N` shows real multi-replica
behaviour (shared durable consumers, de-duplicated publishes) and one crash takes down only
itself. The state directory keeps the NATS store and kubesim's snapshot, so a second run with
the same `--state` resumes where the last one stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gati_cli.commands.run import SERVICES, ServiceNotBuiltError, load_service
from gati_cli.service_process import start_service, wait_or_kill
from gati_kubesim.process import KubeSimProcess
from gati_runtime.embedded_nats import EmbeddedNats


def built_services() -> tuple[list[str], dict[str, str]]:
    """Services that can run, and why each of the others cannot (yet)."""
    ready: list[str] = []
    missing: dict[str, str] = {}
    for name in SERVICES:
        try:
            load_service(name)
        except ServiceNotBuiltError as error:
            missing[name] = str(error)
        else:
            ready.append(name)
    return ready, missing


@dataclass
class ServiceProcess:
    name: str
    replica: int
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def label(self) -> str:
        return f"{self.name}-{self.replica}"


@dataclass
class DevStack:
    """Everything `gati-operator dev` runs; `with stack.running():` starts and always stops it."""

    state_dir: Path
    replicas: int = 1
    ready_after: float = 2.0
    nats: EmbeddedNats | None = None
    kubesim: KubeSimProcess | None = None
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def reset(self) -> None:
        """Start fresh: forget the stream and the cluster of the previous run."""
        shutil.rmtree(self.state_dir, ignore_errors=True)

    @contextmanager
    def running(self, services: list[str]) -> Iterator[DevStack]:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            self.nats = EmbeddedNats(self.state_dir / "nats")
            stack.enter_context(self.nats)
            self.kubesim = KubeSimProcess(
                "--state",
                str(self.state_dir / "kubesim"),
                "--kubeconfig-out",
                str(self.kubeconfig),
                "--ready-after",
                str(self.ready_after),
            )
            stack.enter_context(self.kubesim)
            stack.callback(self._stop_services)
            for name in services:
                for replica in range(1, self.replicas + 1):
                    self.services.append(self._start_service(name, replica))
            yield self

    def _service_env(self, name: str, replica: int) -> dict[str, str]:
        assert self.nats is not None
        env = dict(os.environ)
        env.update(
            {
                "GATI_NATS_URL": self.nats.url,
                "KUBECONFIG": str(self.kubeconfig),
                "GATI_INSTANCE_ID": f"{name}-{replica}",
                "GATI_HTTP_PORT": "0",
                "GATI_LOG_FORMAT": "json",
            }
        )
        return env

    def _start_service(self, name: str, replica: int) -> ServiceProcess:
        log_file = self.logs_dir / f"{name}-{replica}.log"
        process = start_service(name, self._service_env(name, replica), log_file)
        return ServiceProcess(name, replica, process, log_file)

    def restart_exited(self) -> list[str]:
        """Bring back services that died, as a Deployment would; returns who was restarted."""
        restarted: list[str] = []
        for index, service in enumerate(self.services):
            if service.process.poll() is not None:
                self.services[index] = self._start_service(service.name, service.replica)
                restarted.append(service.label)
        return restarted

    def _stop_services(self) -> None:
        # SIGTERM everyone first so they drain in parallel, then wait for each.
        for service in self.services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services:
            wait_or_kill(service.process)
        self.services.clear()
