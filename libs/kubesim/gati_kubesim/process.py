"""kubesim as a child process (`gati-operator kubesim`), for end-to-end tests and benchmarks.

A server in its own process has its own memory and CPU accounting and can be killed like a
real API server; this is the one place that knows how to start it and learn its URL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import TracebackType

READY_PREFIX = "kubesim serving at "


class KubeSimProcess:
    """Start with `with KubeSimProcess("--token", "t") as proc:`; `proc.url` is then set."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the kubesim process is not running")
        return self._proc.pid

    def start(self) -> str:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "gati_cli", "kubesim", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX) :].split(";")[0].strip()
                return self.url
        code = self._proc.wait(10)
        raise RuntimeError(f"gati-operator kubesim exited with {code} before serving")

    def stop(self, timeout: float = 15.0) -> int:
        """Stop as Ctrl-C would (state is saved); returns the exit code."""
        if self._proc is None:
            return 0
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout)
        finally:
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> KubeSimProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
