"""`gati-operator dev` end to end: real nats-server, kubesim and services as processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gati_cli.applier import documents, waves

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
    first, *later = waves(documents([EXAMPLES]))
    for doc in first:
        assert f"applied {doc['kind']} " in out
    for wave in later:
        for doc in wave:
            name = f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
            assert f"holding {name} back until" in out
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


def test_samples_come_in_waves_so_a_path_s_second_version_rolls_out() -> None:
    first, *later = waves(documents([EXAMPLES]))
    assert {(d["kind"], d["metadata"]["name"]) for d in first} >= {
        ("Namespace", "shop"),
        ("GatiModule", "payments"),
        ("GatiHandler", "orders-v1"),
    }
    assert [[d["metadata"]["name"] for d in wave] for wave in later] == [["orders-v2"]]


@pytest.mark.long
@pytest.mark.timeout(300)
def test_make_dev_rolls_the_example_to_100_percent_on_its_new_version(tmp_path: Path) -> None:
    """The issue's promise, with the example's own rollout (10 %, 50 %, 100 %, 20 s pauses);
    stopped with Ctrl-C (SIGINT) as soon as the view shows it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gati_cli", "dev", "--state", str(tmp_path / "state"), "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    row = re.compile(r"shop/orders-v2\s+/orders/:id\s+v2\s+(\w+)\s+(\d+)%")
    seen: list[tuple[str, int]] = []
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            match = row.search(line)
            if match:
                seen.append((match[1], int(match[2])))
                if seen[-1] == ("Active", 100):
                    process.send_signal(signal.SIGINT)
                    break
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    assert seen[-1:] == [("Active", 100)], "".join(lines[-40:])
    assert {10, 50} <= {weight for _, weight in seen}, "the rollout went through its steps"
    assert "applied GatiHandler shop/orders-v2" in "".join(lines)
