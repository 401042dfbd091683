"""A service as its own `gati-operator run <service>` OS process, as a pod runs it: what
`gati-operator dev` starts for each replica and what the tests that need a real process (a
SIGKILL, an exit code, an identity only that process holds) wrap.

Output goes to a log file opened for appending, so a restarted replica's log keeps what its
previous incarnation said before it died.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

STOP_TIMEOUT = 30.0
"""Seconds a SIGTERMed service may drain before it is killed (a pod's grace period)."""


def start_service(name: str, env: Mapping[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """`name` running under this interpreter with exactly `env`, stdout and stderr in
    `log_file`."""
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gati_cli", "run", name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
        )


def wait_or_kill(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int | None:
    """Wait for a process already sent SIGTERM to finish draining; past `timeout` it is
    killed. Its exit code, or None when it had to be killed."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
