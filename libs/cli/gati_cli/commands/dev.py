"""`gati-operator dev`: the whole operator on one machine, with the samples applied.

Starts the embedded `nats-server` and kubesim, installs the CRDs, runs every built service as
its own process (`--replicas N` of each), applies `examples/`, plays a router publishing traffic
samples, and redraws a live view until Ctrl-C, which stops everything cleanly.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[4]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="run NATS, kubesim and all services locally with the sample resources",
        description="Run the operator locally: embedded nats-server, kubesim, CRDs, every "
        "service, the samples in examples/, and a live view. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(".state/dev"),
        help="directory for the NATS store, kubesim snapshot, kubeconfig and logs "
        "(default .state/dev)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete the state directory first and start over"
    )
    parser.add_argument("--replicas", type=int, default=1, help="processes per service")
    parser.add_argument(
        "--examples",
        type=Path,
        default=REPO_ROOT / "examples",
        help="directory of resources to apply (default: the repository's examples/)",
    )
    parser.add_argument(
        "--crds", type=Path, default=REPO_ROOT / "deploy" / "crds", help="CRD directory to install"
    )
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=120.0,
        help="synthetic traffic per handler path (default 120; 0 publishes no samples)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop by itself after this many seconds (default 0: until Ctrl-C)",
    )
    parser.add_argument(
        "--once", action="store_true", help="print the view as lines instead of redrawing it"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from gati_cli.devloop import DevOptions, run_dev

    if args.replicas < 1:
        print(f"gati-operator dev: --replicas must be at least 1, got {args.replicas}")
        return 2
    for flag, path in (("--examples", args.examples), ("--crds", args.crds)):
        if not path.is_dir():
            print(f"gati-operator dev: {flag} {path} is not a directory")
            return 2
    options = DevOptions(
        state_dir=args.state.resolve(),
        fresh=args.fresh,
        replicas=args.replicas,
        examples=args.examples,
        crds=args.crds,
        requests_per_second=args.requests_per_second,
        duration=args.duration,
        redraw=not args.once,
    )
    try:
        return asyncio.run(run_dev(options))
    except KeyboardInterrupt:
        return 0
