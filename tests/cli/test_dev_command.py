"""`gati-operator dev` end to end: real nats-server, kubesim and services as processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gati_cli.applier import documents

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_dev_applies_the_samples_and_stops_cleanly(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gati_cli",
            "dev",
            "--state",
            str(tmp_path / "state"),
            "--duration",
            "6",
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"kubeconfig: {tmp_path / 'state' / 'kubeconfig'}" in out
    assert "NATS:       nats://127.0.0.1:" in out
    for doc in documents([EXAMPLES]):
        assert f"applied {doc['kind']} " in out
    assert "installed CustomResourceDefinition gatihandlers.gati.dev" in out
    assert "HANDLERS" in out
    assert out.rstrip().endswith("stopped")


def test_dev_refuses_a_bad_replica_count() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gati_cli", "dev", "--replicas", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--replicas must be at least 1" in result.stdout
