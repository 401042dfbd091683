"""`gati-operator kubesim`: a local Kubernetes API server for development, until Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kubesim",
        help="serve the kubesim Kubernetes API server until Ctrl-C",
        description="Serve kubesim, a Kubernetes API server for development and tests, that "
        "kubectl and Kubernetes clients use unchanged.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: any free)")
    parser.add_argument(
        "--kubeconfig-out", type=Path, default=None, help="write a kubeconfig for kubectl here"
    )
    parser.add_argument("--token", default=None, help="require this bearer token on requests")
    parser.add_argument(
        "--ready-after",
        type=float,
        default=1.0,
        help="seconds until a Deployment's simulated pods are ready (default 1.0)",
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="load state from and save it to this directory"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from gati_kubesim.server import KubeSim
    from gati_runtime.service import event_loop_factory

    if args.port < 0 or args.port > 65535:
        print(f"gati-operator kubesim: --port must be 0-65535, got {args.port}")
        return 2
    if args.ready_after < 0:
        print(f"gati-operator kubesim: --ready-after must be >= 0, got {args.ready_after}")
        return 2

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with KubeSim(
            host=args.host,
            port=args.port,
            token=args.token,
            ready_after=args.ready_after,
            state_dir=args.state,
            owns_process=True,
        ) as sim:
            if args.kubeconfig_out is not None:
                sim.write_kubeconfig(args.kubeconfig_out)
                print(f"kubeconfig written to {args.kubeconfig_out}", flush=True)
            print(f"kubesim serving at {sim.url}; Ctrl-C stops", flush=True)
            await stop.wait()

    # The services' loop (uvloop where it installs): the same server costs less per request.
    loop_factory, _ = event_loop_factory()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve())
    except OSError as error:
        print(f"gati-operator kubesim: cannot serve on {args.host}:{args.port}: {error}")
        return 1
    return 0
