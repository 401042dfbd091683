"""The operator as a cluster runs it, for fault tests: kubesim and every service in its own OS
process, so a SIGKILL, a lost NATS node or an API outage hits exactly what it would in
production, and "the service never exited" is a fact about a real process.

Each service gets a fixed health port, so its `/readyz` stays reachable at the same address
across restarts, and a JSON log file that survives the process for the post-mortem.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from fixtures.kubesim_server import api_client, install_gati_crds
from gati_cli.devstack import built_services
from gati_kubesim.process import KubeSimProcess
from gati_runtime.embedded_nats import LOOPBACK, free_port

STOP_TIMEOUT = 30.0
PROBE_TIMEOUT = 2.0


@dataclass
class ServiceProcess:
    """One replica of one service; `kill` is a crash, `stop` the orderly SIGTERM drain."""

    name: str
    env: dict[str, str]
    log_file: Path
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    terminating: bool = False
    unexpected_exits: list[int] = field(default_factory=list)
    """Exit codes of deaths nobody asked for: a fault test asserts this stays empty."""

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gati_cli", "run", self.name],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def check_alive(self) -> None:
        """Record an exit we did not cause (the process is then gone for good)."""
        if self.process is not None and (code := self.process.poll()) is not None:
            self.unexpected_exits.append(code)
            self.process = None

    def kill(self) -> None:
        self.check_alive()
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None
            self.kills += 1

    def terminate(self) -> None:
        """SIGTERM once: the drain starts; `stop` waits for it (a second signal would cut the
        drain short)."""
        self.check_alive()
        if self.process is not None and not self.terminating:
            self.process.send_signal(signal.SIGTERM)
            self.terminating = True

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code, or None when it was not running."""
        self.terminate()
        process, self.process = self.process, None
        self.terminating = False
        if process is None:
            return None
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def readiness(self) -> bool | None:
        """`/readyz`: True (200), False (503), None while the health server is not up."""
        conn = http.client.HTTPConnection(LOOPBACK, self.http_port, timeout=PROBE_TIMEOUT)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except OSError:
            return None
        finally:
            conn.close()


class Operator:
    """Every built service as a process against `nats_url` and the kubeconfig's cluster."""

    def __init__(
        self,
        workdir: Path,
        *,
        nats_url: str,
        kubeconfig: Path,
        env: Mapping[str, str] | None = None,
        services: Sequence[str] | None = None,
    ) -> None:
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        names = list(services) if services is not None else built_services()[0]
        self.services: dict[str, ServiceProcess] = {}
        for name in names:
            port = free_port()
            self.services[name] = ServiceProcess(
                name,
                env={
                    **os.environ,
                    "GATI_NATS_URL": nats_url,
                    "KUBECONFIG": str(kubeconfig),
                    "GATI_INSTANCE_ID": f"{name}-fault",
                    "GATI_LOG_FORMAT": "json",
                    "GATI_HTTP_PORT": str(port),
                    **(env or {}),
                },
                log_file=self.logs / f"{name}.log",
                http_port=port,
            )

    def __enter__(self) -> Operator:
        for service in self.services.values():
            service.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Every service drains at once, as pods of a deleted Deployment would.
        for service in self.services.values():
            service.terminate()
        for service in self.services.values():
            service.stop()

    def unexpected_exits(self) -> dict[str, list[int]]:
        for service in self.services.values():
            service.check_alive()
        return {
            name: service.unexpected_exits
            for name, service in self.services.items()
            if service.unexpected_exits
        }

    def readiness(self) -> dict[str, bool | None]:
        return {name: service.readiness() for name, service in self.services.items()}

    def await_readiness(self, wanted: bool, timeout: float) -> float:
        """Until every service's `/readyz` says `wanted`; returns the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.readiness()
            if all(state is wanted for state in states.values()):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"readiness not all {wanted} after {timeout}s: {states}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        """The end of every service's log, for an assertion message."""
        parts = []
        for name, service in self.services.items():
            text = service.log_file.read_text(errors="replace") if service.log_file.exists() else ""
            parts.append(f"--- {name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)


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
