"""A service process's log outlives it across restarts, and a drain that overruns its grace
period ends in a kill, not a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from gati_cli.service_process import start_service, wait_or_kill

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def test_a_restarted_service_appends_to_the_log_of_the_one_before(tmp_path: Path) -> None:
    log = tmp_path / "scaler.log"
    for _ in range(2):
        assert wait_or_kill(start_service("no-such-service", dict(os.environ), log)) == 2
    refusals = log.read_text().count("invalid choice: 'no-such-service'")
    assert refusals == 2, log.read_text()


def test_a_process_still_running_after_its_grace_period_is_killed() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    process.send_signal(signal.SIGTERM)
    assert wait_or_kill(process, timeout=0.2) is None
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()
