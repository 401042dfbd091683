"""Starting and stopping kubesim: in an event loop (`async with KubeSim()`), or in a thread.

Also where the test hooks live as plain methods (compact history, inject faults, silence
watches), reachable over HTTP under `/kubesim/` for a server in another process, and where
state is saved to and loaded from a JSON snapshot for `gati-operator dev --state DIR`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
import structlog
import yaml

from gati_kubesim import crds
from gati_kubesim.admission import Admission
from gati_kubesim.api import CRD_KEY, Api, WriteOptions
from gati_kubesim.collector import PeriodicCollector
from gati_kubesim.controllers import Controllers
from gati_kubesim.faults import FaultRule, Faults
from gati_kubesim.http import Access, HttpApi, error_body
from gati_kubesim.httpserver import HttpServer
from gati_kubesim.metrics import Metrics
from gati_kubesim.registry import Registry
from gati_kubesim.store import Store
from gati_kubesim.tls import ServingCert, make_serving_cert
from gati_kubesim.watch import Watcher, WatchHub

log = structlog.get_logger("kubesim")
SNAPSHOT = "kubesim-state.json"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeSim:
    """A kubesim API server bound to a host and port for the lifetime of the context."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        read_only_token: str | None = None,
        ready_after: float = 1.0,
        bookmark_interval: float = 60.0,
        watch_timeout: float = 1800.0,
        max_history: int = 10_000,
        state_dir: Path | None = None,
        tls: bool | None = None,
        users: Mapping[str, str] | None = None,
        owns_process: bool = False,
    ) -> None:
        """`tls` None means HTTPS exactly when a token is required (kubectl needs both).

        `owns_process` says nothing else runs in this process, so kubesim may collect
        garbage on its own schedule (`collector`); never for an in-process test server.

        `users` maps more bearer tokens to the user each one authenticates (for example
        `system:serviceaccount:gati-system:gati-watcher`). kubesim does not authorise them; it
        appends every request they make to `access_log`, so a test can judge the calls a
        component really made against the RBAC rules it will be deployed with.
        """
        self.host = host
        self.port = port
        self.token = token
        self.read_only_token = read_only_token
        self.users = dict(users or {})
        self.access_log: list[Access] = []
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.state_dir = state_dir
        self.registry = Registry()
        self.store = Store()
        self.hub = WatchHub(max_history)
        self.store.listeners.append(lambda rt, ev: self.hub.publish(rt.storage_key, ev))
        self.api = Api(self.registry, self.store, self.hub, Admission())
        self.faults = Faults()
        self.watchers: set[Watcher] = set()
        self.metrics = Metrics(
            watchers=lambda: len(self.watchers),
            objects=lambda: sum(1 for _ in self.store.dump()),
        )
        self._ready_after = ready_after
        self.controllers: Controllers | None = None
        self._server: HttpServer | None = None
        required = token is not None or read_only_token is not None or bool(self.users)
        self.tls = required if tls is None else tls
        self.cert: ServingCert | None = None
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self.collector = PeriodicCollector() if owns_process else None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The certificate clients must trust when serving HTTPS (None over plain HTTP)."""
        return self.cert.cert_file if self.cert is not None else None

    async def start(self) -> None:
        self.controllers = Controllers(self.store, self.registry, self._ready_after)
        self.controllers.start()
        if self.state_dir is not None and (self.state_dir / SNAPSHOT).exists():
            self._load(self.state_dir / SNAPSHOT)
        ns_rt = self.api.resource("", "v1", "namespaces")
        for name in DEFAULT_NAMESPACES:
            if self.store.find(ns_rt, "", name) is None:
                self.api.create(ns_rt, "", {"metadata": {"name": name}}, WriteOptions("kubesim"))
        ssl_context = None
        if self.tls:
            self._cert_dir = tempfile.TemporaryDirectory(prefix="kubesim-tls-")
            self.cert = make_serving_cert(Path(self._cert_dir.name), self.host)
            ssl_context = self.cert.context()
        self._server = HttpServer(HttpApi(self).handle, error_body)
        self.port = await self._server.start(self.host, self.port, ssl_context)
        if self.collector is not None:
            self.collector.start()
        log.info("kubesim.started", url=self.url)

    async def stop(self) -> None:
        for w in list(self.watchers):
            w.close()
        self.hub.close_all()
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
        if self.controllers is not None:
            await self.controllers.stop()
        if self.collector is not None:
            await self.collector.stop()
        if self.state_dir is not None:
            self.save(self.state_dir / SNAPSHOT)
        if self._cert_dir is not None:
            self._cert_dir.cleanup()
            self._cert_dir = None
        log.info("kubesim.stopped", url=self.url)

    async def __aenter__(self) -> KubeSim:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- test hooks ------------------------------------------------------------------------

    def _keys(self, resource: str | None) -> list[tuple[str, str]] | None:
        if resource is None:
            return None
        plural, _, group = resource.partition(".")
        return [(group, plural)]

    def compact(self, resource: str | None = None) -> int:
        """Forget watch history (of `plural[.group]`, or all): older versions now get 410."""
        rv = self.store.resource_version
        self.hub.compact(self._keys(resource), rv)
        return rv

    def inject_fault(self, rule: FaultRule) -> None:
        self.faults.add(rule)

    def clear_faults(self) -> None:
        self.faults.clear()

    def silence_watches(self, resource: str | None = None) -> int:
        """Open watches (of `plural[.group]`, or all) stay connected but deliver nothing."""
        return self.hub.silence(self._keys(resource))

    def kubeconfig(self, user_token: str | None = None) -> dict[str, Any]:
        token = user_token if user_token is not None else self.token
        user: dict[str, Any] = {"token": token} if token else {}
        cluster: dict[str, Any] = {"server": self.url}
        if self.cert is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.cert.pem()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": cluster}],
            "users": [{"name": "kubesim", "user": user}],
            "contexts": [
                {
                    "name": "kubesim",
                    "context": {"cluster": "kubesim", "user": "kubesim", "namespace": "default"},
                }
            ],
            "current-context": "kubesim",
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        path.chmod(0o600)
        return path

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write every object, CRDs first, so a later start serves the same cluster."""
        objects = sorted(self.store.dump(), key=lambda kv: kv[0] != CRD_KEY)
        data = {
            "resourceVersion": self.store.resource_version,
            "objects": [obj for _, obj in objects],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(data))
        tmp.replace(path)

    def _load(self, path: Path) -> None:
        data = msgspec.json.decode(path.read_bytes())
        for obj in data.get("objects", []):
            rt = self.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            if rt is None:
                log.warning(
                    "kubesim.snapshot_skip",
                    kind=obj.get("kind"),
                    name=obj.get("metadata", {}).get("name"),
                )
                continue
            self.store.restore(rt, obj)
            if rt.storage_key == CRD_KEY:
                self.registry.register_crd(obj["metadata"]["name"], crds.resource_types(obj))
        self.store.restore_rv(int(data.get("resourceVersion", 1)))
        # Watch history is not saved: resuming from before the restart must get 410.
        self.hub.compact(None, self.store.resource_version)


class ThreadedKubeSim:
    """KubeSim on its own event loop in a thread, for synchronous code and tests."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sim: KubeSim | None = None

    @property
    def sim(self) -> KubeSim:
        if self._sim is None:
            raise RuntimeError("ThreadedKubeSim is not started; use it as a context manager")
        return self._sim

    @property
    def url(self) -> str:
        return self.sim.url

    def call(self, fn: Any, *args: Any) -> Any:
        """Run a plain function on the server's loop (hooks must not race its handlers)."""
        if self._loop is None:
            raise RuntimeError("ThreadedKubeSim is not started")

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._sim = KubeSim(**self._kwargs)
                loop.run_until_complete(self._sim.start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._sim.stop())
            loop.close()

        self._thread = threading.Thread(target=main, name="kubesim", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)
        if errors:
            raise errors[0]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop = None
        self._thread = None

    def __enter__(self) -> ThreadedKubeSim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
