"""The console script is the front door: it must list every subcommand."""

from __future__ import annotations

import subprocess
import sys

from gati_cli.main import COMMANDS


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gati_cli", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in COMMANDS:
        assert name in out
